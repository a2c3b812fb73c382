"""DICOM tag browser (searchable) for the current slice, and the series info panel."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QLineEdit, QSizePolicy, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from medview.ui.viewer_state import ViewerState

MAX_VALUE_CHARS = 200


def _value_text(elem) -> str:
    if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
        try:
            n = len(elem.value) if elem.value is not None else 0
        except TypeError:
            n = 0
        return f"<{n} bytes>"
    s = str(elem.value) if elem.value is not None else ""
    return s if len(s) <= MAX_VALUE_CHARS else s[:MAX_VALUE_CHARS] + "..."


class DicomTagBrowser(QWidget):
    """Shows the header of ``Volume.meta['source_files'][k]`` for the slice under the cursor."""

    def __init__(self, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.path: str | None = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search tags (name, keyword, (gggg,eeee) or value)")
        self.search.setClearButtonEnabled(True)
        self.file_label = QLabel("", self)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label.setWordWrap(True)
        # a long path must not widen the dock (and so shift the views) when it changes
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.tree.setColumnWidth(0, 118)
        self.tree.setColumnWidth(1, 150)
        self.tree.setColumnWidth(2, 32)
        self.tree.setUniformRowHeights(True)
        lay.addWidget(self.search)
        lay.addWidget(self.file_label)
        lay.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(120)  # scrolling fast reads one header, not one per slice
        self._timer.timeout.connect(self.refresh)
        state.cursor_changed.connect(lambda _c: self._timer.start())
        state.volume_changed.connect(lambda _v: self._timer.start())

    def current_file(self) -> str | None:
        vol = self.state.volume
        if vol is None:
            return None
        files = vol.meta.get("source_files") or []
        if not files or vol.meta.get("format") != "dicom":
            return None
        k = self.state.cursor[2]
        planes = vol.meta.get("slice_planes")  # missing / interpolated planes have no file
        if planes:
            k = int(np.argmin(np.abs(np.asarray(planes) - k)))
        return str(files[k] if len(files) > k else files[-1])

    def refresh(self) -> None:
        if not self.isVisible():
            return  # read when shown (showEvent)
        path = self.current_file()
        if path == self.path:
            return
        self.path = path
        self.tree.clear()
        if path is None:
            self.file_label.setText("No DICOM file for this volume")
            return
        import pydicom

        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:  # noqa: BLE001 - show the reason, keep running
            self.file_label.setText(f"{path}: {exc}")
            return
        self.file_label.setText(f"slice {self.state.cursor[2] + 1}: {path}")
        self._fill(self.tree.invisibleRootItem(), ds.file_meta if hasattr(ds, "file_meta") else [])
        self._fill(self.tree.invisibleRootItem(), ds)
        self.apply_filter(self.search.text())

    def showEvent(self, ev):
        super().showEvent(ev)
        self.refresh()

    def _fill(self, parent: QTreeWidgetItem, ds) -> None:
        for elem in ds:
            tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
            if elem.VR == "SQ":
                it = QTreeWidgetItem(parent, [tag, elem.name, "SQ", f"{len(elem.value)} item(s)"])
                for n, item in enumerate(elem.value):
                    sub = QTreeWidgetItem(it, ["", f"Item {n + 1}", "", ""])
                    self._fill(sub, item)
            else:
                QTreeWidgetItem(parent, [tag, elem.name, str(elem.VR), _value_text(elem)])

    def apply_filter(self, text: str) -> None:
        needle = text.strip().lower()

        def visit(item: QTreeWidgetItem) -> bool:
            own = not needle or any(needle in item.text(c).lower() for c in range(4))
            child_match = False
            for i in range(item.childCount()):
                child_match |= visit(item.child(i))
            show = own or child_match
            item.setHidden(not show)
            if needle and child_match:
                item.setExpanded(True)
            return show

        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            visit(root.child(i))

    def visible_tags(self) -> list[str]:
        out = []
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            it = root.child(i)
            if not it.isHidden():
                out.append(it.text(0))
        return out


class SeriesInfoPanel(QTreeWidget):
    """Geometry and identification of the open volume (key/value)."""

    def __init__(self, state: ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.setHeaderLabels(["Property", "Value"])
        self.setColumnWidth(0, 170)
        self.value_range: tuple[float, float] | None = None  # set by whoever loaded the volume
        state.volume_changed.connect(self.refresh)

    def rows(self) -> list[tuple[str, str]]:
        vol = self.state.volume
        if vol is None:
            return []
        m = vol.meta
        z, y, x = vol.shape
        out = [
            ("Patient", f"{m.get('PatientName', '') or ''} {m.get('PatientID', '') or ''}".strip()),
            ("Study date", str(m.get("StudyDate", "") or "")),
            ("Study", str(m.get("StudyDescription", "") or "")),
            ("Series", " ".join(x for x in (
                f"#{m['SeriesNumber']}" if m.get("SeriesNumber") is not None else "",
                str(m.get("SeriesDescription", "") or "")) if x)),
            ("Modality", vol.modality),
            ("Size (i x j x k)", f"{x} x {y} x {z}" + ("  RGB" if vol.is_rgb else "")),
            ("Spacing (mm)", " x ".join(f"{s:.4g}" for s in vol.spacing) if vol.pixel_size_known
             else "unknown (photograph: lengths and areas in pixels)"),
            ("Field of view (mm)", " x ".join(f"{s * n:.1f}" for s, n in zip(vol.spacing, (x, y, z), strict=True))
             if vol.pixel_size_known else "-"),
            ("Orientation", vol.orientation_code()),
            ("Origin (LPS mm)", ", ".join(f"{o:.2f}" for o in vol.origin)),
            ("Direction", "; ".join(", ".join(f"{v:.3f}" for v in vol.direction[:, c]) for c in range(3))),
            ("Data type", str(vol.array.dtype)),
            ("Value range", self._range_text(vol)),
            ("Window (DICOM)", f"W {m.get('WindowWidth'):.6g} / C {m.get('WindowCenter'):.6g}"
             if isinstance(m.get("WindowWidth"), (int, float)) and isinstance(m.get("WindowCenter"), (int, float))
             else "-"),
            ("Series UID", str(m.get("SeriesInstanceUID", "") or "")),
            ("Study UID", str(m.get("StudyInstanceUID", "") or "")),
            ("Frame of reference", str(m.get("FrameOfReferenceUID", "") or "")),
            ("Source", str(m.get("source_path", "") or "")),
        ]
        for w in vol.warnings:
            out.append(("Warning", w))
        return out

    def _range_text(self, vol) -> str:
        rng = self.value_range
        if rng is None and vol.array.size <= 4_000_000:  # small: cheap enough on the GUI thread
            rng = (float(vol.array.min()), float(vol.array.max()))
        return f"{rng[0]:.6g} .. {rng[1]:.6g}" if rng is not None else "-"

    def refresh(self, *_):
        self.clear()
        for k, v in self.rows():
            it = QTreeWidgetItem(self, [k, v])
            it.setToolTip(1, v)
