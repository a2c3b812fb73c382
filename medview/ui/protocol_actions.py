"""Hanging protocols on the main window: choose one for an opened study (layout, active view,
window, a prior or second series beside), switch to another from the View menu, or save what
is shown as a new one (``medview.viewing.hanging`` does the matching and the files).

``HangingProtocolActions`` is a mixin of MainWindow (it sets ``self.protocol`` and reads the
window's state and comparison pane).
"""

from __future__ import annotations


class HangingProtocolActions:
    """MainWindow's protocols / apply_protocol / current_protocol and its Hanging protocol menu."""

    def protocols(self):
        from medview.viewing.hanging import load_protocols, protocol_dirs

        return load_protocols(protocol_dirs())

    def apply_protocol(self, index, protocol=None):
        """Choose (or take) the hanging protocol for ``index``'s latest study: set its layout and
        view, return the series to open; its prior (same patient) or second series opens beside
        once loaded."""
        from medview.viewing.hanging import choose

        studies = {}
        for s in index.series:
            studies.setdefault(s.study_uid, []).append(s)
        latest = max(studies.values(), key=lambda ss: (ss[0].study_date or "", len(ss)))
        who = latest[0].patient_id or latest[0].patient_name
        others = [s for s in index.series if s not in latest and (s.patient_id or s.patient_name) == who]
        protos = [protocol] if protocol is not None else self.protocols()
        picked = choose(protos, latest, others)
        if picked is None:
            self.protocol = None
            return index.largest()
        self.protocol, primary, compare = picked
        if self.protocol.active_view:
            self.state.set_active_view(self.protocol.active_view)
        if self.protocol.layout:
            self.state.set_layout(self.protocol.layout)
            self._layout_before_2d = None
        self._protocol_compare = compare
        return primary or index.largest()

    def _apply_protocol_window(self) -> None:
        p, vol = self.protocol, self.state.volume
        if p is None or not p.window or vol is None or vol.is_rgb:
            return
        w = p.window
        try:
            if "preset" in w and vol.modality == "CT":
                self.apply_preset(w["preset"])
            elif "relative" in w and vol.modality != "CT":
                self.apply_relative_preset(w["relative"])
            elif "width" in w and "level" in w:
                self.state.set_window(float(w["width"]), float(w["level"]))
        except KeyError:
            self.statusBar().showMessage(f"hanging protocol {p.name}: no window preset {w}", 8000)

    def _fill_protocol_menu(self) -> None:
        m = self.protocol_menu
        m.clear()
        for p in self.protocols():
            act = m.addAction(p.name, lambda p=p: self._switch_protocol(p))
            act.setCheckable(True)
            act.setChecked(self.protocol is not None and p.name == self.protocol.name)
        m.addSeparator()
        m.addAction("Save current layout as protocol...", self._ask_save_protocol)

    def _switch_protocol(self, p) -> None:
        if self.index is not None and self.index.series:
            self.open_series(self.apply_protocol(self.index, p))

    def current_protocol(self, name: str):
        """The layout, view, series and window now shown, as a protocol matching this modality
        and series description."""
        import re as _re

        from medview.viewing.hanging import Protocol

        vol = self.state.volume
        desc = str(vol.meta.get("SeriesDescription", "")) if vol is not None else ""
        mod = vol.modality if vol is not None else ""
        d = {"name": name, "priority": 50, "layout": self.state.layout, "active_view": self.state.active_view,
             "match": {"modality": f"^{_re.escape(mod)}$"} if mod else {},
             "primary": {"series_description": _re.escape(desc)} if desc else {},
             "window": {"width": self.state.window[0], "level": self.state.window[1]}}
        other = self.compare.state.volume if self.compare.isVisible() else None
        if other is not None:
            same_study = other.meta.get("StudyInstanceUID") == (vol.meta.get("StudyInstanceUID") if vol else None)
            d["compare"] = {"study": "same" if same_study else "prior",
                            "series_description": _re.escape(str(other.meta.get("SeriesDescription", "")))}
            d["link"] = self.compare.link_box.currentText() if self.compare.link_box.currentText() != "off" else "index"
        return Protocol.from_dict(d)

    def _ask_save_protocol(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        from medview.config import user_config_dir
        from medview.viewing.hanging import save_protocol

        name, ok = QInputDialog.getText(self, "Save hanging protocol", "Name:")
        if ok and name.strip():
            path = save_protocol(self.current_protocol(name.strip()), user_config_dir() / "hanging_protocols")
            self.statusBar().showMessage(f"Hanging protocol saved: {path}", 8000)
