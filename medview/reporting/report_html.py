"""The one-page report as one self-contained HTML file (images embedded as PNG data URLs)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from medview.reporting.report_content import ReportContent

_STYLE = """body{font-family:Helvetica,Arial,sans-serif;max-width:900px;margin:20px auto;color:#111}
h1{font-size:22px;margin:0} .ruo{color:#b40000;font-weight:bold}
table{border-collapse:collapse;margin:6px 0 14px 0;font-size:13px} td,th{padding:2px 10px 2px 0;text-align:left}
th{background:#e6e6e6} .imgs{display:flex;gap:12px} figure{margin:0} figcaption{font-size:12px;text-align:center}
img{max-width:290px;max-height:290px} footer{border-top:1px solid #888;margin-top:16px;padding-top:6px}"""


def _png_data_url(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _table(title: str, columns, rows, header_row: bool = True) -> str:
    if not rows:
        return ""
    e = html.escape
    head = "<tr>" + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr>" if header_row else ""
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<h2>{e(title)}</h2><table>{head}{body}</table>"


def write_html(content: ReportContent, out_path: str | Path) -> Path:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(content.title)}</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{e(content.title)}</h1><p class='ruo'>{e(content.disclaimer)}</p>",
             "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in content.header) + "</table>"]
    if content.key_images:
        parts.append("<div class='imgs'>" + "".join(
            f"<figure><img src='{_png_data_url(img)}' alt='{e(cap)}'><figcaption>{e(cap)}</figcaption></figure>"
            for img, cap in zip(content.key_images, content.key_captions, strict=False)) + "</div>")
    parts.append(_table("AI findings", ("Model", "Result", "Probabilities"), content.findings))
    parts.append(_table("Volumes", ("Structure", "Volume"), content.volumes))
    parts.append(_table("Measurements", ("Measurement", "Where", "Value"), content.measurements))
    parts.append(_table("Provenance", ("", ""), content.provenance, header_row=False))
    parts.extend(f"<p><i>Note: {e(n)}</i></p>" for n in content.notes)
    parts.append(f"<footer class='ruo'>{e(content.disclaimer)} Findings from AI models must be confirmed by a "
                 "qualified reader.</footer></body></html>")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(p for p in parts if p), encoding="utf-8")
    return out_path
