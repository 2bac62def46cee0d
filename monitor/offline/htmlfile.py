"""The one self-contained HTML file of backtest and report: tables, then one figure per station.

Self-contained (inline CSS, PNGs as base64 data URIs, no script, nothing fetched) so that it can be mailed
to a bureau and opened anywhere, offline.
"""

from __future__ import annotations

import base64
import html as _html
from collections.abc import Sequence
from pathlib import Path

from monitor.offline.tables import Table

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;margin:24px;color:#1b1b1b}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.r{text-align:right;font-variant-numeric:tabular-nums}
p.note{color:#555;font-size:12px;margin:2px 0 12px}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:12px;color:#555}
"""


def render_html(
    title: str, paragraphs: Sequence[str], tables: Sequence[Table], images: Sequence[tuple[str, bytes]]
) -> str:
    """The whole report as one HTML document: tables, then one figure per station (PNG as a data URI)."""
    esc = _html.escape
    parts = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    parts += [f"<p>{esc(p)}</p>" for p in paragraphs]
    for t in tables:
        parts.append(
            f"<h2>{esc(t.title)}</h2><table><thead><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in t.header)
            + "</tr></thead><tbody>"
        )
        for row in t.rows:
            parts.append(
                "<tr>"
                + "".join(
                    f'<td class="r">{esc(c)}</td>' if i in t.right else f"<td>{esc(c)}</td>" for i, c in enumerate(row)
                )
                + "</tr>"
            )
        if not t.rows:
            parts.append(f'<tr><td colspan="{len(t.header)}">(none)</td></tr>')
        parts.append("</tbody></table>")
        if t.note:
            parts.append(f'<p class="note">{esc(t.note)}</p>')
    if images:
        parts.append("<h2>plots</h2>")
    for name, png in images:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure id="plot-{esc(name)}"><img alt="{esc(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(name)}</figcaption></figure>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(
    path: Path, title: str, paragraphs: Sequence[str], tables: Sequence[Table], images: Sequence[tuple[str, bytes]]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(title, paragraphs, tables, images), encoding="utf-8")
