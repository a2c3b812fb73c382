"""Render resources/icons/medview.svg to PNG sizes (Qt's QSvgRenderer), .ico and .icns (Pillow).

    python packaging/make_icons.py        (re-run after editing the SVG; the outputs are committed)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - needed by QPainter
    renderer = QSvgRenderer(str(ICONS / "medview.svg"))
    if not renderer.isValid():
        raise SystemExit(f"cannot render {ICONS / 'medview.svg'}")
    pngs = []
    for s in SIZES:
        img = QImage(s, s, QImage.Format.Format_ARGB32)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(p)
        p.end()
        out = ICONS / f"medview-{s}.png"
        if not img.save(str(out)):
            raise SystemExit(f"cannot write {out}")
        pngs.append(out)
        print(out)
    big = Image.open(ICONS / "medview-256.png")
    big.save(ICONS / "medview.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    Image.open(ICONS / "medview-512.png").save(ICONS / "medview.icns")
    print(ICONS / "medview.ico", ICONS / "medview.icns", sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
