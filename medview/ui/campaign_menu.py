"""The "Campaign" menu: Run on all (batch panel), the ranked queue, readings and adjudication,
fine-tune from corrections. Each panel is a dock made on first use (``CampaignDocks``)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFileDialog, QInputDialog, QMenuBar, QWidget


class CampaignDocks:
    def __init__(self, window) -> None:
        self.win = window
        self.docks: dict[str, QDockWidget] = {}

    def _dock(self, title: str, make) -> QWidget:
        d = self.docks.get(title)
        if d is None:
            d = QDockWidget(title, self.win)
            d.setObjectName(f"campaign-{title}")
            d.setWidget(make())
            self.win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d)
            if self.docks:  # campaign panels share one tabbed dock area, each gets the full height
                self.win.tabifyDockWidget(next(iter(self.docks.values())), d)
            self.docks[title] = d
        d.show()
        d.raise_()
        return d.widget()

    def _current_folder(self) -> str:
        vol = getattr(getattr(self.win, "state", None), "volume", None)
        src = (vol.meta.get("source_path") if vol is not None else "") or ""
        return str(Path(src).parent.parent) if src else ""

    # ---- panels -----------------------------------------------------------------------------------
    def batch(self):
        from medview.ui.campaign_batch import BatchPanel

        def make():
            p = BatchPanel(source=self._current_folder())
            p.worklist_ready.connect(self.show_queue)
            return p
        return self._dock("Run on all", make)

    def queue(self):
        from medview.ui.campaign_queue import RankedQueue

        return self._dock("Ranked queue", lambda: RankedQueue(open_case=self.win.open_path))

    def show_queue(self, worklist: str | None = None):
        q = self.queue()
        if not worklist:
            worklist = QFileDialog.getOpenFileName(self.win, "Worklist", "", "worklist (worklist.json)")[0]
        if worklist:
            q.load(worklist)
        return q

    def adjudication(self, case_dir: str | None = None):
        from medview.ui.campaign_adjudication import AdjudicationView

        view = self._dock("Adjudication", AdjudicationView)
        case_dir = case_dir or QFileDialog.getExistingDirectory(self.win, "Case folder with readings")
        if case_dir:
            view.set_case(case_dir, _case_image(Path(case_dir)))
        return view

    def finetune(self):
        from medview.ui.campaign_finetune import FinetunePanel

        return self._dock("Fine-tune", FinetunePanel)

    def save_reading(self, case_dir: str | None = None) -> str | None:
        """The open label map as this reader's reading of a case (reader name from settings)."""
        from medview.annotation.labelmap import reviewer_name
        from medview.campaign import readers

        panel = self.win.side_panel("Annotation") if hasattr(self.win, "side_panel") else None
        lm = getattr(getattr(panel, "session", None), "labelmap", None)
        if lm is None:
            self.win.statusBar().showMessage("Draw or open a label map first (Annotation panel)", 8000)
            return None
        case_dir = case_dir or QFileDialog.getExistingDirectory(self.win, "Case folder for this reading")
        if not case_dir:
            return None
        path = readers.save_reading(case_dir, lm, reviewer_name())
        self.win.statusBar().showMessage(f"saved reading of {reviewer_name()}: {path}", 8000)
        return str(path)

    def save_class(self, case_dir: str | None = None, value: str | None = None) -> str | None:
        from medview.campaign import readers

        if value is None:
            value, ok = QInputDialog.getText(self.win, "Classification", "Class for this case:")
            if not ok or not value.strip():
                return None
        case_dir = case_dir or QFileDialog.getExistingDirectory(self.win, "Case folder for this reading")
        return str(readers.save_classification(case_dir, value.strip())) if case_dir else None


def _case_image(case_dir: Path):
    """The image a campaign case ran on (its case.json names it), or None."""
    from medview.io import LoadError, load_volume

    try:
        src = json.loads((case_dir / "case.json").read_text())["path"]
        return load_volume(src)
    except (OSError, ValueError, KeyError, LoadError):
        return None


def add_campaign_menu(window, menubar: QMenuBar) -> CampaignDocks:
    docks = CampaignDocks(window)
    window.campaign = docks
    m = menubar.addMenu("&Campaign")
    m.addAction("Run on &all...", docks.batch)
    m.addAction("Ranked &queue (what to label next)...", docks.show_queue)
    m.addSeparator()
    m.addAction("Save my labels as a &reading of a case...", docks.save_reading)
    m.addAction("Save my &class for a case...", docks.save_class)
    m.addAction("A&djudicate readers...", docks.adjudication)
    m.addSeparator()
    m.addAction("&Fine-tune from corrections...", docks.finetune)
    return docks
