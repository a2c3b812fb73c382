"""A graded result drawn on its scale: grade ticks 0..max, the argmax grade highlighted, the
continuous (expected) value marked with a triangle, and the flag's cut (e.g. KL >= 2) shaded."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget


class GradeScale(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grading: dict[str, Any] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(44)

    def set_grading(self, grading: dict[str, Any] | None) -> None:
        self.grading = grading
        self.setVisible(bool(grading))
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(220, 44)

    def marker_x(self) -> float:
        """Pixel position of the continuous value (for tests and the paint code)."""
        g = self.grading or {}
        n = max(1, int(g.get("max_grade", 1)))
        left, width = 12.0, max(10.0, self.width() - 24.0)
        return left + width * min(max(float(g.get("value", 0.0)), 0.0), n) / n

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt API
        g = self.grading
        if not g:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        n = max(1, int(g["max_grade"]))
        left, width = 12.0, max(10.0, self.width() - 24.0)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        flag = g.get("flag")
        if flag:  # shade the flagged part of the scale
            x0 = left + width * (int(flag["min_grade"]) - 0.5) / n
            p.fillRect(QRectF(x0, 14, left + width - x0, 8), QColor(230, 120, 30, 60))
        p.setPen(text)
        p.drawLine(QPointF(left, 18), QPointF(left + width, 18))
        for k in range(n + 1):
            x = left + width * k / n
            bold = k == int(g["grade"])
            p.setPen(QColor(230, 120, 30) if bold else text)
            p.drawLine(QPointF(x, 13 if bold else 15), QPointF(x, 23 if bold else 21))
            p.drawText(QRectF(x - 20, 24, 40, 18), Qt.AlignmentFlag.AlignCenter, str(k))
        x = self.marker_x()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(200, 40, 40))
        p.drawPolygon(QPolygonF([QPointF(x - 6, 2), QPointF(x + 6, 2), QPointF(x, 14)]))
        p.end()
