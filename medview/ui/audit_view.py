"""A dialog that lists the audit trail (who opened, ran a model on, edited, exported which study)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

COLUMNS = ("Time (UTC)", "User", "Action", "Patient", "Study", "Details")


class AuditDialog(QDialog):
    def __init__(self, parent=None) -> None:
        from medview.reporting.audit import audit_log_path

        super().__init__(parent)
        self.setWindowTitle("Audit trail")
        self.resize(1000, 500)
        layout = QVBoxLayout(self)
        self.path_label = QLabel(str(audit_log_path()))
        self.status_label = QLabel("")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter (user, action, patient, study ...)")
        self.filter.textChanged.connect(self._apply_filter)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        for w in (self.path_label, self.status_label, self.filter, self.table, buttons):
            layout.addWidget(w)
        self.reload()

    def reload(self) -> None:
        from medview.reporting.audit import read_log, verify_chain

        entries = list(reversed(read_log()))  # newest first
        self.table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            study = e.get("study", {})
            detail = ", ".join(f"{k}={v}" for k, v in e.get("detail", {}).items())
            cells = (e.get("time", ""), e.get("user", ""), e.get("action", e.get("corrupt", "?")),
                     study.get("PatientID", ""), study.get("StudyInstanceUID", "") or study.get("path", ""), detail)
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(str(text)))
        self.table.resizeColumnsToContents()
        bad = verify_chain()
        self.status_label.setText(f"{len(entries)} entries; " + (
            "no entry was changed or removed" if bad is None else
            f"WARNING: line {bad} does not follow the one before (an entry was changed or removed)"))
        self._apply_filter(self.filter.text())

    def _apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        for row in range(self.table.rowCount()):
            cells = " ".join(self.table.item(row, c).text().lower() for c in range(self.table.columnCount()))
            self.table.setRowHidden(row, bool(text) and text not in cells)
