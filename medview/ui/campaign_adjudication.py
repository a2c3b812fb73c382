"""Adjudication view: two or more readers' labels over the image, their agreement, and one
decision per region (a reader's side, union, intersection or majority), saved as the
adjudicated label map with the record of who decided what (``medview.campaign.readers``).

Drawing: the image slice in grey, each reader's outline in its own colour (first reader red,
second blue, then green, ...), the selected region's box in yellow, and after "Preview" the
decided labels filled in translucent green."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

READER_COLOURS = [(255, 60, 60), (60, 140, 255), (60, 220, 90), (240, 160, 0)]
CHOICES_AFTER_READERS = ("union", "intersection", "majority")


def _outline(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask)


class AdjudicationView(QWidget):
    saved = Signal(str)  # path of adjudicated.nii.gz

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.case_dir: Path | None = None
        self.image = None
        self.readings: dict[str, Any] = {}
        self.region_map: np.ndarray | None = None
        self.regions: list = []
        self.preview: np.ndarray | None = None
        self.info_label = QLabel("No case")
        self.info_label.setWordWrap(True)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setMinimumSize(360, 320)
        self.plot = self.view.addViewBox(lockAspect=True, invertY=True)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.item)
        self.slice_slider = QSlider(Qt.Orientation.Horizontal)
        self.slice_slider.valueChanged.connect(lambda _v: self.redraw())
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["region", "voxels", "agree", "Dice", "take"])
        self.table.currentCellChanged.connect(lambda r, *_: self._go_to_region(r))
        buttons = QHBoxLayout()
        self.all_buttons: dict[str, QPushButton] = {}
        for how in CHOICES_AFTER_READERS:
            b = QPushButton(f"All: {how}")
            b.clicked.connect(lambda _c=False, h=how: self.set_all(h))
            buttons.addWidget(b)
            self.all_buttons[how] = b
        self.preview_button = QPushButton("Preview")
        self.preview_button.clicked.connect(self.make_preview)
        self.save_button = QPushButton("Save adjudicated")
        self.save_button.clicked.connect(self.save)
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.save_button)
        self.status = QLabel("")
        lay = QVBoxLayout(self)
        lay.addWidget(self.info_label)
        lay.addWidget(self.view, 3)
        lay.addWidget(self.slice_slider)
        lay.addWidget(self.table, 2)
        lay.addLayout(buttons)
        lay.addWidget(self.status)

    # ---- data ---------------------------------------------------------------------------------------
    def set_case(self, case_dir: str | Path, image=None) -> None:
        """Show the readings of ``case_dir`` (over ``image``, a Volume, when given: they are then
        checked against it like any label import)."""
        from medview.campaign import readers

        self.case_dir = Path(case_dir)
        self.image = image
        self.readings = readers.load_readings(self.case_dir, reference=image)
        self.preview = None
        if len(self.readings) < 2:
            self.info_label.setText(f"{self.case_dir.name}: {len(self.readings)} reading(s); adjudication needs two")
            self.regions, self.region_map = [], None
            self.table.setRowCount(0)
            self.redraw()
            return
        self.region_map, self.regions = readers.regions([lm.array for lm in self.readings.values()])
        self._fill_table()
        self.info_label.setText(self._agreement_text())
        depth = next(iter(self.readings.values())).array.shape[0]
        self.slice_slider.setRange(0, depth - 1)
        self.slice_slider.setVisible(depth > 1)
        self.slice_slider.setValue(depth // 2)
        self.redraw()

    def _agreement_text(self) -> str:
        from medview.campaign import readers

        names = list(self.readings)
        colours = ", ".join(f"{n} ({['red', 'blue', 'green', 'orange'][i % 4]})" for i, n in enumerate(names))
        lines = [f"{self.case_dir.name}: readers {colours}; {len(self.regions)} regions"]
        ag = readers.case_agreement(self.case_dir)
        for pair, d in ag["dice"].items():
            lines.append(f"Dice {pair}: " + ", ".join(f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in d.items()))
        classes = readers.class_readings(self.case_dir)
        if len(classes) >= 2:
            lines.append("classes: " + ", ".join(f"{r}: {c}" for r, c in classes.items()))
            k = readers.campaign_kappa(sorted(p for p in self.case_dir.parent.iterdir() if p.is_dir()))
            lines += [f"Cohen's kappa {pair} over {v['cases']} cases: {v['kappa']:.3f}" for pair, v in k.items()]
        return "\n".join(lines)

    def _fill_table(self) -> None:
        options = list(self.readings) + list(CHOICES_AFTER_READERS)
        self.table.setRowCount(len(self.regions))
        for r, reg in enumerate(self.regions):
            for c, v in enumerate((reg.id, reg.voxels, "yes" if reg.agree else "no", f"{reg.dice:.3f}")):
                self.table.setItem(r, c, QTableWidgetItem(str(v)))
            combo = QComboBox()
            combo.addItems(options)
            combo.setCurrentText("union")
            combo.currentTextChanged.connect(lambda _t: setattr(self, "preview", None))
            self.table.setCellWidget(r, 4, combo)

    def choices(self) -> dict[int, str]:
        return {reg.id: self.table.cellWidget(r, 4).currentText() for r, reg in enumerate(self.regions)}

    def set_choice(self, region_id: int, how: str) -> None:
        for r, reg in enumerate(self.regions):
            if reg.id == region_id:
                self.table.cellWidget(r, 4).setCurrentText(how)

    def set_all(self, how: str) -> None:
        for r in range(len(self.regions)):
            self.table.cellWidget(r, 4).setCurrentText(how)

    def decide(self):
        from medview.campaign import readers

        return readers.adjudicate(self.readings, self.choices())

    def make_preview(self) -> None:
        if len(self.readings) >= 2:
            self.preview = self.decide()[0].array
            self.redraw()

    def save(self) -> str | None:
        from medview.campaign import readers

        if len(self.readings) < 2 or self.case_dir is None:
            return None
        lm, info = self.decide()
        path = str(readers.save_adjudicated(self.case_dir, lm, info))
        self.status.setText(f"saved {path} (decided by {info['adjudicator']})")
        self.saved.emit(path)
        return path

    # ---- drawing ------------------------------------------------------------------------------------
    def _go_to_region(self, row: int) -> None:
        if 0 <= row < len(self.regions):
            (k0, k1) = self.regions[row].bbox[0]
            self.slice_slider.setValue((k0 + k1 - 1) // 2)
            self.redraw()

    def rgb_slice(self) -> np.ndarray:
        """The picture drawn (H, W, 3) uint8 for the current slice."""
        if not self.readings:
            return np.zeros((1, 1, 3), np.uint8)
        k = self.slice_slider.value()
        arrays = [lm.array[k] for lm in self.readings.values()]
        if self.image is not None:
            a = np.asarray(self.image.array[k], dtype=np.float32)
            a = a.mean(-1) if a.ndim == 3 else a
            lo, hi = np.percentile(a, (1, 99)) if a.size else (0, 1)
            grey = np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        else:
            grey = np.full(arrays[0].shape, 40, np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        if self.preview is not None:
            fill = self.preview[k] > 0
            rgb[fill] = (0.6 * rgb[fill] + 0.4 * np.array([0, 255, 0])).astype(np.uint8)
        for i, arr in enumerate(arrays):
            for v in np.unique(arr):
                if v:
                    rgb[_outline(arr == v)] = READER_COLOURS[i % len(READER_COLOURS)]
        row = self.table.currentRow()
        if 0 <= row < len(self.regions):
            (k0, k1), (y0, y1), (x0, x1) = self.regions[row].bbox
            if k0 <= k < k1:
                rgb[y0, x0:x1] = rgb[y1 - 1, x0:x1] = (255, 230, 0)
                rgb[y0:y1, x0] = rgb[y0:y1, x1 - 1] = (255, 230, 0)
        return rgb

    def redraw(self) -> None:
        self.item.setImage(self.rgb_slice(), autoLevels=False, levels=(0, 255))
