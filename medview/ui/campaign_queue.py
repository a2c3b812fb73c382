"""The ranked queue: the cases of a worklist (``medview rank`` / "Run on all"), most uncertain
first, with Next / Previous. Choosing a case opens it in the viewer (``open_case(path)``) and
emits ``case_selected`` with its worklist entry (case, path, output folder, score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class RankedQueue(QWidget):
    case_selected = Signal(dict)

    def __init__(self, parent: QWidget | None = None, open_case: Callable[[str], None] | None = None) -> None:
        super().__init__(parent)
        self.open_case = open_case
        self.items: list[dict[str, Any]] = []
        self.title = QLabel("No worklist loaded")
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        self.prev_button = QPushButton("< Previous")
        self.next_button = QPushButton("Next >")
        self.prev_button.clicked.connect(self.previous)
        self.next_button.clicked.connect(self.next)
        self.position = QLabel("")
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.position)
        nav.addWidget(self.next_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.list)
        lay.addLayout(nav)
        self._update_buttons()

    def load(self, worklist: str | Path) -> None:
        import json

        from medview.campaign.rank import read_worklist

        p = Path(worklist)
        self.items = read_worklist(p)
        model = json.loads((p if p.is_file() else p / "worklist.json").read_text()).get("model", {})
        self.title.setText(f"{len(self.items)} cases, most uncertain first ({model.get('id', '?')} "
                           f"{model.get('version', '')})")
        self.list.blockSignals(True)
        self.list.clear()
        for it in self.items:
            li = QListWidgetItem(f"{it['rank']:>4}. {it['case']}   {it.get('result', '')}   {it['score']:.3f}")
            li.setToolTip(it["path"])
            self.list.addItem(li)
        self.list.blockSignals(False)
        if self.items:
            self.list.setCurrentRow(0)
        self._update_buttons()

    @property
    def current(self) -> dict[str, Any] | None:
        r = self.list.currentRow()
        return self.items[r] if 0 <= r < len(self.items) else None

    def next(self) -> None:
        if self.list.currentRow() + 1 < len(self.items):
            self.list.setCurrentRow(self.list.currentRow() + 1)

    def previous(self) -> None:
        if self.list.currentRow() > 0:
            self.list.setCurrentRow(self.list.currentRow() - 1)

    def _on_row(self, row: int) -> None:
        self._update_buttons()
        item = self.current
        if item is None:
            return
        if self.open_case is not None:
            self.open_case(item["path"])
        self.case_selected.emit(item)

    def _update_buttons(self) -> None:
        r, n = self.list.currentRow(), len(self.items)
        self.prev_button.setEnabled(r > 0)
        self.next_button.setEnabled(0 <= r < n - 1)
        self.position.setText(f"{r + 1} / {n}" if n and r >= 0 else "")
