"""HJ 212 frames: `##` + 4-digit length + data segment + CRC16 (4 hex digits) + CR LF, and the CRC.

The byte layer of monitor.domain.hj212 (which re-exports all of it): cutting a TCP stream into frames,
whatever arrives. Never raises on input; every problem is a FrameError with a reason and a detail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FRAME = "hj212_frame"  # not a frame: length field, missing CR LF, over max_frame, CRC field not hex

_HEX4 = re.compile(rb"[0-9A-Fa-f]{4}")
MAX_FRAME = 10_000  # bytes of data segment; the standard says at most 1024, real loggers send more
_HEADER = 6  # "##" + 4 digits
_TRAILER = 6  # 4 hex digits + CR LF


def _table() -> tuple[int, ...]:
    out = []
    for b in range(256):
        crc = b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc16(data: bytes) -> int:
    """The standard's CRC: start 0xFFFF; per byte crc = (crc >> 8) ^ byte, then 8 rounds of shift right with
    XOR 0xA001 when the low bit was set. After the first step the register is one byte wide, so the 8 rounds
    are one table look-up."""
    crc = 0xFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc >> 8) ^ b]
    return crc


def frame(segment: str) -> bytes:
    """`##` + length + segment + CRC + CR LF."""
    body = segment.encode("utf-8")
    if len(body) > 9999:
        raise ValueError(f"data segment of {len(body)} bytes does not fit the 4-digit length field")
    return b"##%04d%s%04X\r\n" % (len(body), body, crc16(body))


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame cut from the stream; `crc_ok` False is still a frame (the server answers QnRtn 9)."""

    segment: str
    crc_ok: bool
    raw: bytes


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes that are not a frame, and why; `raw` is at most the first 256 of them (for the dead letters)."""

    reason: str
    detail: str
    raw: bytes = b""


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("gbk", errors="replace")  # Chinese loggers' other encoding


class FrameReader:
    """Splits a TCP byte stream into frames. Never raises; resynchronises on the next `##` after anything
    that is not a frame. Bounded: between calls it holds at most one partial frame (max_frame + 12 bytes)."""

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max(0, min(int(max_frame), 9999))
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        buf = self._buf
        buf += data
        out: list[Frame | FrameError] = []
        pos = 0
        n = len(buf)
        while pos < n:
            start = buf.find(b"##", pos)
            if start < 0:
                keep = n - 1 if buf[n - 1 : n] == b"#" else n  # a lone '#' may begin the next frame
                if keep > pos:
                    out.append(_garbage(buf, pos, keep))
                pos = keep
                break
            if start > pos:
                out.append(_garbage(buf, pos, start))
                pos = start
            if n - pos < _HEADER:
                break
            digits = bytes(buf[pos + 2 : pos + 6])
            if not digits.isdigit():
                out.append(FrameError(FRAME, f"length field {digits!r} after ## is not 4 digits", digits))
                pos += 1  # "###0101..." resynchronises on the second '#'
                continue
            length = int(digits)
            if length > self.max_frame:
                out.append(FrameError(FRAME, f"declared length {length} is over the limit of {self.max_frame}"))
                pos += 2
                continue
            end = pos + _HEADER + length + _TRAILER
            if n < end:
                break  # wait for the rest
            if buf[end - 2 : end] != b"\r\n":
                out.append(
                    FrameError(
                        FRAME,
                        f"no CR LF after the {length}-byte data segment and its CRC (wrong length or cut short)",
                        bytes(buf[pos : min(end, pos + 256)]),
                    )
                )
                pos += 2  # the next frame may begin inside what the wrong length claimed
                continue
            raw = bytes(buf[pos:end])
            body = raw[_HEADER : _HEADER + length]
            crc_text = raw[_HEADER + length : _HEADER + length + 4]
            sent = int(crc_text, 16) if _HEX4.fullmatch(crc_text) else -1
            if sent < 0:
                out.append(FrameError(FRAME, f"CRC field {crc_text!r} is not 4 hex digits", raw[:256]))
                pos += 2
                continue
            out.append(Frame(_text(body), sent == crc16(body), raw))
            pos = end
        del buf[:pos]
        return out


def _garbage(buf: bytearray, start: int, end: int) -> FrameError:
    return FrameError(
        FRAME, f"{end - start} bytes before ## that are not a frame", bytes(buf[start : min(end, start + 256)])
    )


def unframe(data: bytes, max_frame: int = MAX_FRAME) -> Frame | FrameError:
    """One whole frame (an MQTT payload); the trailing CR LF may be missing, nothing else may follow."""
    if not data.endswith(b"\r\n"):
        data = data + b"\r\n"
    got = FrameReader(max_frame).feed(data)
    frames = [f for f in got if isinstance(f, Frame)]
    if len(got) == 1 and frames:
        return frames[0]
    errors = [f for f in got if isinstance(f, FrameError)]
    if errors:
        return errors[0]
    if not got:
        return FrameError(FRAME, f"a frame cut short ({len(data) - 2} bytes)", data[:256])
    return FrameError(FRAME, f"{len(got)} frames in one payload", data[:256])
