"""What every slice view shows on top of the image: four-corner text, a scale bar and a colour
bar for heatmaps. Texts are built from the ViewerState and the view (no drawing in the helpers);
the widgets only paint and never take mouse events."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QLinearGradient, QPainter, QPen
from PySide6.QtWidgets import QLabel, QWidget

from medview.viewing.display import nice_length

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")


def _date(d: str) -> str:
    d = str(d or "")
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def corner_texts(state, view) -> dict[str, str]:
    """Four-corner text of a SliceView: patient and study (top left, under the view title and
    slice number), series (top right), zoom (bottom left, over the W/L line), slice position
    and thickness or slab (bottom right)."""
    vol = state.volume
    g = view.geom
    if vol is None or g is None:
        return {c: "" for c in CORNERS}
    m = vol.meta
    name = str(m.get("PatientName", "") or "").replace("^", " ").strip()
    top_left = "\n".join(x for x in (
        " ".join(x for x in (name, str(m.get("PatientID", "") or "")) if x),
        " ".join(x for x in (_date(m.get("StudyDate", "")), str(m.get("StudyDescription", "") or "")) if x),
    ) if x)
    series = str(m.get("SeriesDescription", "") or "")
    if not series and m.get("source_path"):
        series = str(m["source_path"]).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    num = m.get("SeriesNumber")
    top_right = "\n".join(x for x in (
        " ".join(x for x in (vol.modality, f"#{num}" if num not in (None, "") else "", series) if x),
    ) if x)
    zoom = view.zoom_factor()  # (the W/L line under it is the view's wl_label)
    bottom_left = f"Zoom {zoom:.2f}x" if zoom else ""
    bottom_right = ""
    if vol.pixel_size_known:
        idx = view.slice_index
        axis = g.normal_axis
        ijk = np.zeros(3)
        ijk[axis] = idx
        world = vol.index_to_world(ijk)
        pat = int(np.argmax(np.abs(vol.direction[:, axis])))
        letters = "LPS"[pat]
        thick = vol.spacing[axis]
        thick_txt = f"Thick {thick:.3g} mm"
        if state.slab_mm > thick:
            thick_txt = f"Slab {state.slab_mode.upper()} {state.slab_mm:.3g} mm"
        bottom_right = f"Pos {letters} {world[pat]:.1f} mm\n{thick_txt}"
    if state.frames is not None:
        bottom_right = f"Volume {state.frame + 1}/{len(state.frames)}\n" + bottom_right
    return {"top_left": top_left, "top_right": top_right, "bottom_left": bottom_left,
            "bottom_right": bottom_right}


def elide_lines(text: str, font: QFont, max_px: int) -> str:
    """Each line cut with an ellipsis to ``max_px`` (corner text never runs into the letters)."""
    fm = QFontMetrics(font)
    return "\n".join(fm.elidedText(line, Qt.TextElideMode.ElideRight, max(max_px, 8))
                     for line in text.split("\n"))


def make_overlay_label(parent: QWidget, font: QFont, color: str, align) -> QLabel:
    lab = QLabel("", parent)
    lab.setFont(font)
    lab.setAlignment(align)
    lab.setStyleSheet(f"color: {color}; background: transparent;")
    lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    return lab


class ScaleBar(QWidget):
    """A 1/2/5 x 10^n mm bar about a fifth of the view wide, with its length written under it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.length_mm = 0.0
        self.length_px = 0
        self.unit = "mm"
        self.resize(160, 26)

    def set_scale(self, mm_per_px: float, unit: str = "mm") -> None:
        if mm_per_px <= 0 or not np.isfinite(mm_per_px):
            self.length_mm, self.length_px = 0.0, 0
        else:
            self.length_mm = nice_length(0.9 * self.width() * mm_per_px)
            self.length_px = int(round(self.length_mm / mm_per_px))
        self.unit = unit
        self.update()

    def label(self) -> str:
        if not self.length_mm:
            return ""
        v = self.length_mm
        if self.unit == "mm" and v >= 10:
            return f"{v / 10:g} cm"
        return f"{v:g} {self.unit}"

    def paintEvent(self, ev):  # noqa: N802
        if not self.length_px:
            return
        p = QPainter(self)
        p.setPen(QPen(QColor("#e0e0e0"), 2))
        x1 = self.width() - 2
        x0 = x1 - self.length_px
        y = 6
        p.drawLine(x0, y, x1, y)
        p.drawLine(x0, y - 4, x0, y + 4)
        p.drawLine(x1, y - 4, x1, y + 4)
        f = QFont()
        f.setPointSize(8)
        p.setFont(f)
        p.drawText(QRect(0, y + 4, self.width() - 2, 14), Qt.AlignmentFlag.AlignRight, self.label())
        p.end()


class ColorBar(QWidget):
    """Vertical colour bar of a heatmap layer: its colormap from vmin (bottom) to vmax (top),
    the threshold marked (transparent below it)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.layer = None
        self.resize(56, 180)
        self.hide()

    MAX_WIDTH = 130

    def set_layer(self, layer) -> None:
        self.layer = layer
        if layer is not None:  # as wide as its name needs ("AI heatmap" was cut to "AI heatma")
            need = QFontMetrics(self._font()).horizontalAdvance(layer.name) + 4
            self.resize(max(56, min(self.MAX_WIDTH, need)), self.height())
        self.setVisible(layer is not None)
        self.update()

    @staticmethod
    def _font() -> QFont:
        f = QFont()
        f.setPointSize(8)
        return f

    def title(self) -> str:
        """The layer name as drawn above the bar: whole, or elided to the widget's width."""
        if self.layer is None:
            return ""
        return QFontMetrics(self._font()).elidedText(self.layer.name, Qt.TextElideMode.ElideRight,
                                                     self.width() - 2)

    def paintEvent(self, ev):  # noqa: N802
        layer = self.layer
        if layer is None:
            return
        import pyqtgraph as pg

        p = QPainter(self)
        bar = QRect(4, 16, 12, self.height() - 32)
        grad = QLinearGradient(0, bar.bottom(), 0, bar.top())
        cmap = pg.colormap.get(layer.colormap)
        for t in np.linspace(0, 1, 9):
            c = cmap.map(float(t), mode="qcolor")
            grad.setColorAt(float(t), c)
        p.fillRect(bar, grad)
        p.setPen(QPen(QColor("#c0c0c0"), 1))
        p.drawRect(bar)
        p.setFont(self._font())
        span = max(layer.vmax - layer.vmin, 1e-12)
        p.drawText(bar.right() + 4, bar.top() + 4, f"{layer.vmax:.3g}")
        p.drawText(bar.right() + 4, bar.bottom() + 4, f"{layer.vmin:.3g}")
        if layer.threshold > layer.vmin:
            y = int(bar.bottom() - (layer.threshold - layer.vmin) / span * bar.height())
            p.setPen(QPen(QColor("#ffffff"), 2))
            p.drawLine(bar.left() - 3, y, bar.right() + 3, y)
            p.drawText(bar.right() + 4, y + 4, f"{layer.threshold:.2g}")
        p.drawText(0, 11, self.title())
        p.end()
