"""The "AI assist" group of the annotation panel: model, mode, propagation, stop, new object."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QWidget,
)


class AIAssistGroup(QGroupBox):
    def __init__(self, state, controller, parent: QWidget | None = None) -> None:
        super().__init__("AI assist", parent)
        self.state = state
        self.c = controller
        g = QGridLayout(self)
        self.tool_button = QPushButton("AI assist tool (Q)", self)
        self.tool_button.setToolTip("Left click adds to the active label, right click (or Ctrl+click) removes, "
                                    "a drag draws a box around the object (scribble mode: a stroke; Shift: a "
                                    "removing stroke). One undo step per interaction.")
        self.tool_button.clicked.connect(lambda: state.set_tool("annotate.ai"))
        g.addWidget(self.tool_button, 0, 0, 1, 2)
        self.mode_combo = QComboBox(self)
        self.mode_combo.addItem("Clicks + box", "clicks")
        self.mode_combo.addItem("Clicks + scribble", "scribble")
        self.mode_combo.currentIndexChanged.connect(lambda _i: setattr(self.c, "mode", self.mode_combo.currentData()))
        g.addWidget(self.mode_combo, 1, 0)
        self.propagate_check = QCheckBox("Propagate through slices", self)
        self.propagate_check.setChecked(True)
        self.propagate_check.setToolTip("On a 3D series the mask follows the object into the neighbouring slices "
                                        "until it ends (or a slice you prompted)")
        self.propagate_check.toggled.connect(lambda on: setattr(self.c, "propagate", bool(on)))
        g.addWidget(self.propagate_check, 1, 1)
        self.new_button = QPushButton("New object", self)
        self.new_button.setToolTip("Forget the clicks so far: the next click starts another object")
        self.new_button.clicked.connect(self.c.new_object)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop the propagation (the slices done stay)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.c.stop)
        g.addWidget(self.new_button, 2, 0)
        g.addWidget(self.stop_button, 2, 1)
        self.model_label = QLabel("", self)
        self.model_label.setWordWrap(True)
        g.addWidget(self.model_label, 3, 0, 1, 2)
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        g.addWidget(self.status_label, 4, 0, 1, 2)
        self.c.status.connect(self.status_label.setText)
        # the first click on a 3D series decides the network (3D or 2D + propagation): say which
        self.c.status.connect(lambda _text: self.refresh_model())
        if hasattr(state, "status_message"):  # and in the status bar, where a user looks
            self.c.status.connect(state.status_message.emit)
        self.c.running_changed.connect(self.stop_button.setEnabled)

    def refresh_model(self) -> None:
        self.model_label.setText(f"Model: {self.c.model_text()} (research use only)")
