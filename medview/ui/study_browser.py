"""Study browser: Patient / Study / Series tree with thumbnails, from a medview.io StudyIndex."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTreeWidget, QTreeWidgetItem

from medview.ui.workers import Worker, start

THUMB = 64
MAX_FILE_FOR_THUMB = 20_000_000  # bytes: larger NIfTI/NRRD files are not read twice for a thumbnail
_ROLE = Qt.ItemDataRole.UserRole


def thumbnail_array(series_list, progress=None, cancelled=None, emit=None) -> int:
    """Core-side job: a THUMBxTHUMB uint8 preview of each series' middle image, via medview.io.

    Calls ``emit(uid, array)`` per series as soon as it is made; returns how many were made.
    """
    from medview.io import load_series

    made = 0
    for n, s in enumerate(series_list):
        if cancelled is not None and cancelled():
            break
        try:
            if s.kind == "dicom" and s.images:
                one = dataclasses.replace(s, images=[s.images[len(s.images) // 2]], n_images=1)
                vol = load_series(one)
            elif Path(s.path).is_file() and Path(s.path).stat().st_size <= MAX_FILE_FOR_THUMB:
                vol = load_series(s)
            else:
                continue  # a big volume file: its thumbnail comes from the loaded volume instead
            a = thumbnail_of(vol)
            if emit is not None:
                emit(s.uid, a)
            made += 1
        except Exception:  # noqa: BLE001, S110 - a bad series just gets no thumbnail
            pass
        if progress is not None:
            progress((n + 1) / max(1, len(series_list)), "thumbnails")
    return made


def thumbnail_of(vol) -> np.ndarray:
    """THUMB-sized uint8 (grey or RGB) preview of a Volume's middle slice."""
    from medview.measure import auto_window, window_to_levels

    a = vol.array[vol.shape[0] // 2]
    step = max(1, int(np.ceil(max(a.shape[:2]) / THUMB)))
    a = a[::step, ::step]
    if a.ndim == 2:
        lo, hi = window_to_levels(*auto_window(a))
        a = np.clip((a.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255)
    return np.ascontiguousarray(a.astype(np.uint8))


def _to_icon(a: np.ndarray) -> QIcon:
    h, w = a.shape[:2]
    if a.ndim == 2:
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        a = np.ascontiguousarray(a[..., :3])
        img = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    return QIcon(QPixmap.fromImage(img.copy()))


class StudyBrowser(QTreeWidget):
    series_activated = Signal(object)  # SeriesInfo
    files_dropped = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["Patient / Study / Series", "Images"])
        self.setIconSize(QSize(THUMB, THUMB))
        self.setColumnWidth(1, 50)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAcceptDrops(True)
        self.index = None
        self._items: dict[str, QTreeWidgetItem] = {}
        self._thumb_worker: Worker | None = None
        self.itemActivated.connect(self._on_activated)
        self.itemDoubleClicked.connect(self._on_activated)

    def cancel_thumbnails(self) -> None:
        if self._thumb_worker is not None:
            self._thumb_worker.cancel()

    def set_index(self, index) -> None:
        self.cancel_thumbnails()
        self.clear()
        self._items.clear()
        self.index = index
        if index is None:
            return
        dicom = [s for s in index.series if s.kind == "dicom"]
        files = [s for s in index.series if s.kind != "dicom"]
        if dicom:
            for who, studies in index.patients():
                studies = [(uid, [s for s in ser if s.kind == "dicom"]) for uid, ser in studies]
                studies = [(uid, ser) for uid, ser in studies if ser]
                if not studies:
                    continue
                p_item = QTreeWidgetItem(self, [who, ""])
                for _study_uid, series in studies:
                    first = series[0]
                    title = " ".join(x for x in (first.study_date, first.study_description) if x) or "(study)"
                    st_item = QTreeWidgetItem(p_item, [title, ""])
                    for s in series:
                        self._add_series_item(st_item, s)
        # files without a patient (NIfTI, PNG ...): one node per folder, named by the folder,
        # each file by its name (not hundreds of "(study)" nodes)
        folders: dict[str, list] = {}
        for s in files:
            folders.setdefault(str(Path(s.path).parent), []).append(s)
        for folder, series in folders.items():
            f_item = QTreeWidgetItem(self, [Path(folder).name or folder, str(len(series))])
            f_item.setToolTip(0, folder)
            for s in sorted(series, key=lambda x: Path(x.path).name):
                self._add_series_item(f_item, s)
        self.expandAll()
        w = Worker(thumbnail_array, list(index.series))
        w.kwargs["emit"] = w.emit_event
        w.signals.event.connect(self._on_thumb)
        self._thumb_worker = start(w)

    def _add_series_item(self, parent: QTreeWidgetItem, s) -> QTreeWidgetItem:
        """Series number and modality on the first line, the full description (or file name)
        on the second, so a long name is not cut at the column edge."""
        num = f"#{s.series_number} " if s.series_number is not None else ""
        if s.kind == "dicom":
            text = f"{num}{s.modality or 'DICOM'}" + (f"\n{s.description}" if s.description else "")
        else:
            text = Path(s.path).name
        it = QTreeWidgetItem(parent, [text, str(s.n_images)])
        it.setData(0, _ROLE, s.uid)
        it.setToolTip(0, f"{s.description}\n{s.rows}x{s.columns}, {s.n_images} images\n{s.path}")
        self._items[s.uid] = it
        return it

    def _on_thumb(self, uid: str, arr) -> None:
        it = self._items.get(uid)
        if it is not None:
            it.setIcon(0, _to_icon(arr))

    def set_thumbnail_from(self, uid: str, vol) -> None:
        """Give a series without a thumbnail one made from its loaded volume (cheap)."""
        it = self._items.get(uid)
        if it is not None and it.icon(0).isNull():
            it.setIcon(0, _to_icon(thumbnail_of(vol)))

    def select_series(self, uid: str) -> None:
        it = self._items.get(uid)
        if it is not None:
            self.setCurrentItem(it)
            it.setSelected(True)
            self.scrollToItem(it, QAbstractItemView.ScrollHint.PositionAtCenter)

    def _on_activated(self, item: QTreeWidgetItem, _col: int = 0) -> None:
        uid = item.data(0, _ROLE)
        if uid and self.index is not None:
            self.series_activated.emit(self.index.find(uid))

    # drag and drop of files/folders onto the browser
    def dragEnterEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()
        else:
            super().dragEnterEvent(ev)

    def dragMoveEvent(self, ev):
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()
        else:
            super().dragMoveEvent(ev)

    def dropEvent(self, ev):
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.files_dropped.emit(urls[0])
            ev.acceptProposedAction()
        else:
            super().dropEvent(ev)
