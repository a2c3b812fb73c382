"""The undo history of a workspace session, kept on disk so a restored (or reopened) session
can still undo the edits made before the crash.

``undo.log`` in the workspace folder holds one journal-format record (``journal.encode_record``:
checksummed, self-delimiting) per history event: ``do`` with the entry's compressed old and new
values, ``undo`` / ``redo`` as markers. ``restore_history`` replays them into an EditHistory
whose label map is the restored one; if the replayed stacks do not end on the label map's
actual values (a record lost in the crash), the history is left empty rather than wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from medview.annotation import patch
from medview.annotation.history import EditHistory, Entry
from medview.annotation.journal import encode_record, read_journal
from medview.annotation.ops import Change

FILE = "undo.log"


class UndoLog:
    """History listener appending every committed event to ``root/undo.log``."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / FILE
        self.error: str | None = None

    def __call__(self, kind: str, change: Change) -> None:
        if kind == "do":
            e = getattr(change, "entry", None) or Entry.from_change(change)  # compressed once, by the history
            header = {"kind": "do", "name": e.name, "lo": list(e.lo), "shape": list(e.shape), "dtype": e.dtype,
                      "old_len": len(e.old_z)}
            if e.pieces is not None:
                header["pieces"] = patch.pieces_to_json(e.pieces)
            rec = encode_record(header, e.old_z + e.new_z)
        else:
            rec = encode_record({"kind": kind})
        try:
            fd = os.open(str(self.path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, rec)
            finally:
                os.close(fd)
        except OSError as exc:  # the undo history is a convenience: the journal keeps the edits
            self.error = str(exc)


def restore_history(history: EditHistory, root: str | Path) -> int:
    """Fill ``history`` (of the restored label map) from ``root/undo.log``; returns the number of
    undoable entries (0 when there is no log or it does not match the label map)."""
    path = Path(root) / FILE
    if not path.is_file():
        return 0
    undo: list[Entry] = []
    redo: list[Entry] = []
    for header, payload in read_journal(path):
        kind = header.get("kind")
        if kind == "do":
            n = int(header["old_len"])
            undo.append(Entry(header["name"], tuple(header["lo"]), tuple(header["shape"]), header["dtype"],
                              payload[:n], payload[n:], patch.pieces_from_json(header.get("pieces"))))
            redo.clear()
        elif kind == "undo" and undo:
            redo.append(undo.pop())
        elif kind == "redo" and redo:
            undo.append(redo.pop())
    if not _consistent(history, undo, redo):
        return 0
    history.restore_entries(undo, redo)
    return len(history.undo_names())


def _consistent(history: EditHistory, undo: list[Entry], redo: list[Entry]) -> bool:
    """The last undoable entry's new values (and the next redo's old ones) are what the label map
    holds now."""
    arr = history.labelmap.array
    for e, want in ((undo[-1] if undo else None, "new"), (redo[-1] if redo else None, "old")):
        if e is None:
            continue
        vals = e.new() if want == "new" else e.old()
        try:
            held = patch.read(arr, e.lo, e.shape, e.pieces)
        except ValueError:
            return False
        if held.shape != vals.shape or not np.array_equal(held, vals.astype(arr.dtype)):
            return False
    return True
