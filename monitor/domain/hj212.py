"""HJ 212 (HJ 212-2017, HJ 212-2025, HJ/T 212-2005): frames, data segments, split packets and replies.

Pure: bytes in, values out, no I/O, so the TCP server, the MQTT decoder and the simulator share one codec and
every rule of it can be fuzzed. What the standard fixes and what riverwatch decided:

- A frame is `##` + 4 decimal digits (the data segment's length in bytes) + the data segment + its CRC16 as
  4 hex digits (either case accepted, upper case sent) + CR LF. The CRC covers the data segment only.
- Segments are parsed by key, never by position: loggers reorder fields, HJ/T 212-2005 has no QN, and some
  send non-standard Flag values (a Flag that is not a number is kept as None and counts as "wants an ack":
  answering costs a line, not answering makes the logger re-send forever).
- Flag = V5..V0 D A: A (bit 0) asks for a reply, D (bit 1) says PNUM/PNO are present, V the version:
  0 = HJ/T 212-2005, 1 = HJ 212-2017, 2 = HJ 212-2025. A 2017-shaped packet (it has a QN) with version
  bits 0 is read as 2017; so is one with version bits riverwatch does not know.
- A CP that is not `key=value` fields (HJ 212-2025's optional encryption: a hex or base64 body) is marked
  `encrypted`; the decoder rejects it as "hj212_encrypted" until keys are supported.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from monitor.domain.hj212_frame import FRAME, MAX_FRAME, Frame, FrameError, FrameReader, crc16, frame, unframe

__all__ = [
    "CRC",
    "FRAME",
    "MAX_FRAME",
    "Frame",
    "FrameError",
    "FrameReader",
    "HJ212Error",
    "Packet",
    "Reassembler",
    "crc16",
    "frame",
    "packet_segment",
    "parse_segment",
    "reply_data_ack",
    "reply_request",
    "unframe",
]


# QnRtn, the standard's "request reply" table (CN=9011).
QNRTN_READY = 1
QNRTN_REFUSED = 2
QNRTN_PW = 3
QNRTN_MN = 4
QNRTN_ST = 5
QNRTN_FLAG = 6
QNRTN_QN = 7
QNRTN_CN = 8
QNRTN_CRC = 9
QNRTN_UNKNOWN = 100

# Rejection reasons of HJ 212 (also in monitor.domain.rejection.REASONS).
CRC = "hj212_crc"  # a frame whose CRC does not match its data segment
MALFORMED = "hj212_malformed"  # a segment without ST, CN or MN, or with a field that is not key=value
ENCRYPTED = "hj212_encrypted"  # an encrypted CP (HJ 212-2025), not decodable without keys
SPLIT = "hj212_split"  # a split packet (PNUM/PNO) whose parts did not all arrive in time
COMMAND = "hj212_command"  # a CN that carries no readings where readings were expected
PASSWORD = "hj212_password"  # a PW that is not the station's (the server's check; QnRtn 3)
UNKNOWN_MN = "hj212_unknown_mn"  # an MN no station file maps (the server's check; QnRtn 4)
VERSION = "hj212_version"  # a version [hj212].versions does not accept (the server's check)

VERSIONS = ("2017", "2025", "2005")
_VERSION_BITS = {0: "2005", 1: "2017", 2: "2025"}
FLAG_BITS = {"2005": 0, "2017": 1, "2025": 2}


class HJ212Error(Exception):
    """A segment riverwatch cannot use; `fields` holds the header fields read before the problem (QN, MN...),
    so that a reply can still name the upload."""

    def __init__(self, reason: str, detail: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.fields = fields or {}


@dataclass(frozen=True, slots=True)
class Packet:
    """A parsed data segment. `cp` is the CP text between `&&` and `&&`; `groups` its `;` groups of `,`
    fields as key -> value, in the order sent. `fields` are every header field as sent (RF and any
    non-standard key included)."""

    qn: str | None
    st: str
    cn: str
    pw: str
    mn: str
    flag: int | None
    pnum: int | None
    pno: int | None
    cp: str
    groups: list[dict[str, str]]
    version: str
    wants_ack: bool
    encrypted: bool = False
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def split(self) -> bool:
        """Part of a packet sent in several (PNUM > 1)."""
        return self.pnum is not None and self.pnum > 1


_CP_OPEN = "CP=&&"
_DIGITS = re.compile(r"\d{1,20}")
_MN = re.compile(r"[0-9A-Za-z_\-.]{1,64}")
_STANDARD_KEYS = {
    "QN": "QN",
    "ST": "ST",
    "CN": "CN",
    "PW": "PW",
    "MN": "MN",
    "FLAG": "Flag",
    "PNUM": "PNUM",
    "PNO": "PNO",
}


def parse_segment(segment: str) -> Packet:
    """The data segment of a frame, by key. Raises HJ212Error(MALFORMED, ...) naming the field at fault."""
    at = segment.find(_CP_OPEN)
    if at < 0:
        raise HJ212Error(MALFORMED, "no CP=&&...&& in the data segment", _header(segment, {}))
    fields: dict[str, str] = {}
    rest = segment[at + len(_CP_OPEN) :]
    close = rest.rfind("&&")
    if close < 0:
        raise HJ212Error(MALFORMED, "CP=&& is not closed by &&", _header(segment[:at], fields))
    cp = rest[:close]
    _header(segment[:at], fields, strict=True)
    _header(rest[close + 2 :], fields, strict=True)  # fields a logger put after CP
    for key in ("ST", "CN", "MN"):
        if not fields.get(key):
            raise HJ212Error(MALFORMED, f"no {key} in the data segment", fields)
    st, cn, mn = fields["ST"], fields["CN"], fields["MN"]
    if not _DIGITS.fullmatch(st):
        raise HJ212Error(MALFORMED, f"ST={st[:32]!r} is not a number", fields)
    if not _DIGITS.fullmatch(cn):
        raise HJ212Error(MALFORMED, f"CN={cn[:32]!r} is not a number", fields)
    if not _MN.fullmatch(mn):
        raise HJ212Error(MALFORMED, f"MN={mn[:70]!r} is not 1-64 letters and digits", fields)
    qn = fields.get("QN")
    if qn is not None and not _DIGITS.fullmatch(qn):
        raise HJ212Error(MALFORMED, f"QN={qn[:32]!r} is not a number of at most 20 digits", fields)
    flag_text = fields.get("Flag")
    flag = int(flag_text) if flag_text is not None and flag_text.isdigit() and len(flag_text) <= 3 else None
    pnum = _count(fields, "PNUM")
    pno = _count(fields, "PNO")
    if pnum is not None and (pno is None or not 1 <= pno <= pnum):
        raise HJ212Error(MALFORMED, f"PNO={fields.get('PNO')!r} is not between 1 and PNUM={pnum}", fields)
    bits = flag >> 2 if flag is not None else 0
    version = _VERSION_BITS.get(bits, "2017")
    if version == "2005" and qn is not None:
        version = "2017"  # a 2017 packet with an old-style Flag, common in the field
    wants_ack = bool(flag & 1) if flag is not None else flag_text is not None
    body = cp.strip()
    encrypted = bool(body) and "=" not in body.rstrip("=")  # hex or base64 (its padding at most at the end)
    groups = [] if encrypted else _groups(cp)
    return Packet(
        qn, st, cn, fields.get("PW", ""), mn, flag, pnum, pno, cp, groups, version, wants_ack, encrypted, fields
    )


def _header(text: str, fields: dict[str, str], strict: bool = False) -> dict[str, str]:
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            if strict:
                raise HJ212Error(MALFORMED, f"header field {part[:40]!r} is not key=value", fields)
            continue
        key = _STANDARD_KEYS.get(key.upper(), key)
        value = value.strip()
        if key in fields and fields[key] != value:
            if strict:
                raise HJ212Error(MALFORMED, f"{key} twice, {fields[key][:32]!r} and {value[:32]!r}", fields)
            continue
        fields[key] = value
    return fields


def _count(fields: dict[str, str], key: str) -> int | None:
    text = fields.get(key)
    if text is None or text == "":
        return None
    if not text.isdigit() or len(text) > 4:
        raise HJ212Error(MALFORMED, f"{key}={text[:32]!r} is not a number of at most 4 digits", fields)
    return int(text)


def _groups(cp: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for group in cp.split(";"):
        fields: dict[str, str] = {}
        for part in group.split(","):
            part = part.strip()
            if not part:
                continue
            key, _, value = part.partition("=")
            fields.setdefault(key.strip(), value.strip())
        if fields:
            out.append(fields)
    return out


def _segment(qn: str | None, st: str, cn: str, pw: str, mn: str, flag: int, cp: str) -> str:
    qn_part = f"QN={qn};" if qn else ""
    return f"{qn_part}ST={st};CN={cn};PW={pw};MN={mn};Flag={flag};CP=&&{cp}&&"


def reply_data_ack(qn: str | None, mn: str, pw: str, st: str = "91", *, version: str = "2017") -> bytes:
    """CN=9014, the data reply: the upload's QN back, no reply wanted (A = 0)."""
    return frame(_segment(qn, st, "9014", pw, mn, FLAG_BITS.get(version, 1) << 2, ""))


def reply_request(qn: str | None, mn: str, pw: str, qn_rtn: int, *, version: str = "2017") -> bytes:
    """CN=9011, the request reply with its QnRtn (QNRTN_*: 1 ready, 3 PW, 4 MN, 9 CRC...)."""
    return frame(_segment(qn, "91", "9011", pw, mn, FLAG_BITS.get(version, 1) << 2, f"QnRtn={qn_rtn}"))


def packet_segment(
    *,
    qn: str | None,
    st: str,
    cn: str,
    pw: str,
    mn: str,
    cp: str,
    version: str = "2017",
    ack: bool = True,
    pnum: int | None = None,
    pno: int | None = None,
) -> str:
    """A data segment as a logger sends it (the simulator's and the tests')."""
    flag = (FLAG_BITS.get(version, 1) << 2) | (2 if pnum is not None else 0) | (1 if ack else 0)
    qn_part = f"QN={qn};" if qn and version != "2005" else ""
    split = f"PNUM={pnum};PNO={pno};" if pnum is not None else ""
    return f"{qn_part}ST={st};CN={cn};PW={pw};MN={mn};Flag={flag};{split}CP=&&{cp}&&"


@dataclass
class _Held:
    pnum: int
    first_ns: int
    parts: dict[int, Packet | None] = field(default_factory=dict)  # None: handed on already
    time_group: dict[str, str] | None = None


class Reassembler:
    """Split packets (PNUM/PNO), keyed by (MN, QN, CN). Two ways to use it:

    - `add`: the whole upload, once every part arrived (parts merged in PNO order), else None. The caller
      holds the parts' 9014s until the whole is journaled.
    - `release`: parts as soon as they are usable. A part with its own DataTime is decodable alone and is
      handed on at once; one without gets the DataTime of a part of the same upload already seen, and is
      held only until such a part arrives. A logger that waits for each part's 9014 before sending the
      next is never stalled this way.

    An upload is remembered until it is older than `max_age_ns` (a re-sent part still finds its DataTime).
    Bounded: at most `per_mn` split uploads per MN and `max_uploads` in all (the oldest goes first), each
    part at most PNUM <= 9999 of one upload; `expire` reports, once each, the uploads dropped with parts
    still waiting."""

    def __init__(self, per_mn: int = 4, max_uploads: int = 1024, max_age_ns: int = 600 * 10**9) -> None:
        self.per_mn = max(1, per_mn)
        self.max_uploads = max(1, max_uploads)
        self.max_age_ns = max_age_ns
        self._held: OrderedDict[tuple[str, str, str], _Held] = OrderedDict()
        self._dropped: list[HJ212Error] = []

    def __len__(self) -> int:
        return len(self._held)

    def waiting(self) -> int:
        """Parts held (not handed on yet)."""
        return sum(1 for h in self._held.values() for p in h.parts.values() if p is not None)

    def _entry(self, packet: Packet, now_ns: int) -> tuple[tuple[str, str, str], _Held]:
        key = (packet.mn, packet.qn or "", packet.cn)
        held = self._held.get(key)
        if held is None or held.pnum != packet.pnum:
            if held is not None:
                self._drop(key, f"PNUM changed from {held.pnum} to {packet.pnum}")
            held = _Held(packet.pnum or 1, now_ns)
            self._admit(key, held, now_ns)
        return key, held

    def add(self, packet: Packet, now_ns: int | None = None) -> Packet | None:
        """The whole upload once its last part arrived; the packet itself when it is not split; else None."""
        if not packet.split or packet.pno is None:
            return packet
        now = time.time_ns() if now_ns is None else now_ns
        key, held = self._entry(packet, now)
        held.parts[packet.pno] = packet
        if len(held.parts) < held.pnum or any(p is None for p in held.parts.values()):
            return None
        del self._held[key]
        parts = [held.parts[i] for i in sorted(held.parts)]
        whole = [p for p in parts if p is not None]
        return replace(
            whole[0],
            pnum=None,
            pno=None,
            cp=";".join(p.cp for p in whole),
            groups=[g for p in whole for g in p.groups],
            encrypted=any(p.encrypted for p in whole),
        )

    def release(self, packet: Packet, now_ns: int | None = None) -> list[Packet]:
        """The packets ready to decode: usually [packet]; [] while a part waits for its DataTime."""
        if not packet.split or packet.pno is None:
            return [packet]
        now = time.time_ns() if now_ns is None else now_ns
        _, held = self._entry(packet, now)
        own = _time_group(packet)
        if own is not None and held.time_group is None:
            held.time_group = own
        if held.time_group is None:
            held.parts[packet.pno] = packet
            return []
        ready = [packet if own is not None else _with_time(packet, held.time_group)]
        held.parts[packet.pno] = None
        for pno, part in sorted(held.parts.items()):
            if part is not None:
                ready.append(_with_time(part, held.time_group))
                held.parts[pno] = None
        return ready

    def _admit(self, key: tuple[str, str, str], held: _Held, now_ns: int) -> None:
        self.expire_only(now_ns)
        same_mn = [k for k in self._held if k[0] == key[0]]
        while len(same_mn) >= self.per_mn:
            self._drop(same_mn.pop(0), "more split uploads at once than allowed per MN")
        while len(self._held) >= self.max_uploads:
            self._drop(next(iter(self._held)), "too many split uploads held")
        self._held[key] = held

    def _drop(self, key: tuple[str, str, str], why: str) -> None:
        held = self._held.pop(key)
        waiting = sorted(p for p, part in held.parts.items() if part is not None)
        if waiting:
            self._dropped.append(
                HJ212Error(
                    SPLIT,
                    f"MN {key[0]} QN {key[1] or '-'} CN {key[2]}: parts {waiting} of {held.pnum} dropped ({why}): "
                    "no part with a DataTime arrived",
                    {"MN": key[0], "QN": key[1], "CN": key[2]},
                )
            )

    def expire_only(self, now_ns: int) -> None:
        for key in [k for k, h in self._held.items() if now_ns - h.first_ns > self.max_age_ns]:
            self._drop(key, f"older than {self.max_age_ns // 10**9} s")

    def expire(self, now_ns: int) -> list[HJ212Error]:
        """Drop uploads older than max_age_ns; every drop since the last call that lost parts, as HJ212Errors."""
        self.expire_only(now_ns)
        out, self._dropped = self._dropped, []
        return out


def _time_group(packet: Packet) -> dict[str, str] | None:
    for group in packet.groups:
        if "DataTime" in group:
            return {k: v for k, v in group.items() if k in ("DataTime", "RF")}
    return None


def _with_time(packet: Packet, time_group: dict[str, str]) -> Packet:
    return replace(packet, groups=[dict(time_group), *packet.groups])
