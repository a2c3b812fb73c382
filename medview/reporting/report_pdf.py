"""The one-page report as PDF (fpdf2). Everything fits one A4 page: long tables are cut with a
line saying how many rows were left out (the SR and the CSV hold them all)."""

from __future__ import annotations

from pathlib import Path

from medview.reporting.report_content import ReportContent

_BOTTOM = 297 - 18  # mm: the footer's top edge
_W = 210 - 2 * 12


def _latin1(text: str) -> str:
    """The PDF core fonts are Latin-1: other characters become '?' rather than failing."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def write_pdf(content: ReportContent, out_path: str | Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(12, 12, 12)
    pdf.add_page()
    pdf.set_title(content.title)
    pdf.set_creator("MedView")

    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(_W * 0.55, 9, _latin1(content.title))
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_text_color(180, 0, 0)
    pdf.cell(_W * 0.45, 9, _latin1(content.disclaimer.upper()), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(120, 120, 120)
    pdf.line(12, pdf.get_y(), 198, pdf.get_y())
    pdf.ln(2)

    pdf.set_font("Helvetica", "", 8.5)
    half = _W / 2
    for i, (k, v) in enumerate(content.header):
        x = 12 + (i % 2) * half
        if i % 2 == 0 and i:
            pdf.ln(4.6)
        pdf.set_xy(x, pdf.get_y())
        pdf.set_font("Helvetica", "B", 8.5)
        pdf.cell(24, 4.6, _latin1(k))
        pdf.set_font("Helvetica", "", 8.5)
        pdf.cell(half - 24, 4.6, _latin1(v)[:70])
    pdf.ln(7)

    if content.key_images:
        n = min(3, len(content.key_images))
        gap = 4
        w = (_W - gap * (n - 1)) / n
        top = pdf.get_y()
        tallest = 0.0
        for i, (img, cap) in enumerate(zip(content.key_images[:n], content.key_captions[:n], strict=False)):
            h = min(w * img.height / img.width, 70)
            iw = h * img.width / img.height
            x = 12 + i * (w + gap) + (w - iw) / 2
            pdf.image(img, x=x, y=top, w=iw, h=h)
            pdf.set_xy(12 + i * (w + gap), top + h + 0.5)
            pdf.set_font("Helvetica", "I", 7.5)
            pdf.cell(w, 4, _latin1(cap), align="C")
            tallest = max(tallest, h)
        pdf.set_y(top + tallest + 6)

    _table(pdf, "AI findings", ("Model", "Result", "Probabilities"), content.findings, (40, 35, _W - 75))
    _table(pdf, "Volumes", ("Structure", "Volume"), content.volumes, (90, _W - 90))
    _table(pdf, "Measurements", ("Measurement", "Where", "Value"), content.measurements, (45, 45, _W - 90))
    _table(pdf, "Provenance", ("", ""), content.provenance, (35, _W - 35), header_row=False)
    for note in content.notes:
        if pdf.get_y() > _BOTTOM - 5:
            break
        pdf.set_font("Helvetica", "I", 7.5)
        pdf.multi_cell(_W, 3.8, _latin1("Note: " + note), new_x="LMARGIN", new_y="NEXT")

    pdf.set_y(_BOTTOM + 4)
    pdf.line(12, _BOTTOM + 3, 198, _BOTTOM + 3)
    pdf.set_font("Helvetica", "B", 8.5)
    pdf.set_text_color(180, 0, 0)
    pdf.cell(_W, 5, _latin1(f"{content.disclaimer} Findings from AI models must be confirmed by a qualified reader."),
             align="C")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out_path))
    return out_path


def _table(pdf, title: str, columns, rows, widths, header_row: bool = True) -> None:
    if not rows or pdf.get_y() > _BOTTOM - 12:
        return
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(_W, 6, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    if header_row:
        pdf.set_font("Helvetica", "B", 8)
        pdf.set_fill_color(230, 230, 230)
        for c, w in zip(columns, widths, strict=True):
            pdf.cell(w, 4.6, _latin1(c), fill=True)
        pdf.ln(4.6)
    pdf.set_font("Helvetica", "", 8)
    for i, row in enumerate(rows):
        if pdf.get_y() > _BOTTOM - 10 and i < len(rows) - 1:
            pdf.set_font("Helvetica", "I", 7.5)
            pdf.cell(_W, 4.2, f"... {len(rows) - i} more row(s): see the DICOM SR / CSV export",
                     new_x="LMARGIN", new_y="NEXT")
            break
        for v, w in zip(row, widths, strict=True):
            text = _latin1(v)
            while text and pdf.get_string_width(text) > w - 1:
                text = text[:-1]
            pdf.cell(w, 4.2, text)
        pdf.ln(4.2)
    pdf.ln(2)
