"""The label list (name, colour, show, lock) and the per-label statistics table."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medview.annotation.region_tools import label_statistics


class LabelsGroup(QGroupBox):
    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__("Labels", parent)
        self.session = session
        self._updating = False
        lay = QVBoxLayout(self)
        t = self.table = QTableWidget(0, 4, self)
        t.setHorizontalHeaderLabels(["", "Name", "Show", "Lock"])
        t.verticalHeader().hide()
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.horizontalHeader().setStretchLastSection(False)
        for col, w in enumerate((24, 130, 44, 44)):
            t.setColumnWidth(col, w)
        t.setMaximumHeight(150)
        t.itemChanged.connect(self._on_item_changed)
        t.itemSelectionChanged.connect(self._on_selected)
        t.cellDoubleClicked.connect(lambda _r, col: self.ask_color() if col == 0 else None)
        lay.addWidget(t)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add", self)
        self.add_button.clicked.connect(lambda: self.add_label())
        self.recolor_button = QPushButton("Colour...", self)
        self.recolor_button.clicked.connect(self.ask_color)
        self.stats_button = QPushButton("Statistics", self)
        self.stats_button.setToolTip("Voxels, volume and intensity mean / SD of every label")
        self.stats_button.clicked.connect(self.refresh_statistics)
        for b in (self.add_button, self.recolor_button, self.stats_button):
            row.addWidget(b)
        lay.addLayout(row)
        s = self.stats_table = QTableWidget(0, 5, self)
        s.setHorizontalHeaderLabels(["Label", "Voxels", "Volume", "Mean", "SD"])
        s.verticalHeader().hide()
        s.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        s.setMaximumHeight(120)
        s.hide()
        lay.addWidget(s)

    def set_enabled(self, on: bool) -> None:
        for w in (self.add_button, self.recolor_button, self.stats_button):
            w.setEnabled(on)

    # ---- list --------------------------------------------------------------------------------
    def refresh(self) -> None:
        lm = self.session.labelmap
        self._updating = True
        try:
            self.table.setRowCount(0)
            if lm is None:
                self.stats_table.hide()
                return
            for v, lab in sorted(lm.labels.items()):
                r = self.table.rowCount()
                self.table.insertRow(r)
                sw = QTableWidgetItem("")
                sw.setBackground(QBrush(QColor(*lab.color)))
                sw.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                sw.setData(Qt.ItemDataRole.UserRole, v)
                sw.setToolTip(f"value {v}; double-click to change the colour")
                self.table.setItem(r, 0, sw)
                nm = QTableWidgetItem(lab.name)
                nm.setData(Qt.ItemDataRole.UserRole, v)
                self.table.setItem(r, 1, nm)
                for col, on in ((2, lab.visible), (3, lab.locked)):
                    it = QTableWidgetItem("")
                    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                                | Qt.ItemFlag.ItemIsSelectable)
                    it.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                    it.setData(Qt.ItemDataRole.UserRole, v)
                    self.table.setItem(r, col, it)
                if v == self.session.active_value:
                    self.table.selectRow(r)
        finally:
            self._updating = False
        if self.stats_table.isVisible():
            self.refresh_statistics()

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        lm = self.session.labelmap
        if self._updating or lm is None:
            return
        v = int(item.data(Qt.ItemDataRole.UserRole))
        if v not in lm.labels:
            return
        col = item.column()
        if col == 1 and item.text().strip() and item.text() != lm.labels[v].name:
            lm.rename(v, item.text().strip())
        elif col == 2:
            lm.set_visible(v, item.checkState() == Qt.CheckState.Checked)
        elif col == 3:
            lm.set_locked(v, item.checkState() == Qt.CheckState.Checked)

    def _on_selected(self) -> None:
        if self._updating:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            it = self.table.item(rows[0].row(), 1)
            if it is not None:
                self.session.set_active_value(int(it.data(Qt.ItemDataRole.UserRole)))

    def select_label(self, value: int) -> None:
        self.session.set_active_value(int(value))
        self.refresh()

    def add_label(self, name: str | None = None, color: tuple[int, int, int] | None = None) -> int:
        lm = self.session.labelmap
        if lm is None:
            return 0
        lab = lm.add_label(name, color)
        self.select_label(lab.value)
        return lab.value

    def ask_color(self) -> None:
        lm = self.session.labelmap
        v = self.session.active_value
        if lm is None or v not in lm.labels:
            return
        c = QColorDialog.getColor(QColor(*lm.labels[v].color), self, f"Colour of {lm.labels[v].name}")
        if c.isValid():
            lm.recolor(v, (c.red(), c.green(), c.blue()))

    # ---- statistics ----------------------------------------------------------------------------
    def refresh_statistics(self) -> list:
        lm = self.session.labelmap
        if lm is None:
            return []
        rows = label_statistics(lm, self.session.grey())
        unit = "mL" if lm.volume.pixel_size_known else "px"
        t = self.stats_table
        t.setRowCount(len(rows))
        for r, st in enumerate(rows):
            vol = f"{st.volume_ml:.3f} mL" if unit == "mL" else f"{st.voxels} px"
            for col, text in enumerate((st.name, str(st.voxels), vol, f"{st.mean:.1f}", f"{st.sd:.1f}")):
                t.setItem(r, col, QTableWidgetItem(text))
        t.show()
        return rows
