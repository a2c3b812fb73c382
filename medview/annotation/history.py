"""EditHistory: named undo/redo over a LabelMap that stores only changed regions.

A stroke (press .. release) is many ``Change``s merged into one entry: the union box with the
values before the stroke and after it. While drawing, each dab keeps only its own box and old
values (cost per dab = its own size, never the growing stroke box: linear in stroke length);
``end`` merges them once (the earliest dab's old value of a voxel is its value before the
stroke). A long stroke whose dabs fill little of its bounding box (a diagonal 3D stroke) is kept
as the grid blocks it touched (``medview.annotation.patch``), so its end costs what it painted.
Entries are zlib-compressed (label maps compress 20-100x). Memory is
bounded by ``max_bytes``: the oldest entries are dropped first.

Listeners (``history.listeners``) hear every committed edit as ``fn(kind, change)`` with kind
"do" | "undo" | "redo" and the region's new values; the workspace journal and the views use it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medview.annotation import patch
from medview.annotation.labelmap import LabelMap
from medview.annotation.ops import Change, apply_values


@dataclass
class Entry:
    name: str
    lo: tuple[int, int, int]
    shape: tuple[int, int, int]
    dtype: str
    old_z: bytes
    new_z: bytes
    pieces: tuple | None = None  # the changed boxes inside lo + shape (flat values), or the whole box

    @property
    def nbytes(self) -> int:
        return len(self.old_z) + len(self.new_z) + 96

    @property
    def hi(self) -> tuple[int, int, int]:
        return tuple(a + n for a, n in zip(self.lo, self.shape, strict=False))  # type: ignore[return-value]

    @property
    def voxels(self) -> int:
        """Voxels stored (the box's, or its pieces')."""
        if self.pieces is None:
            return int(np.prod(self.shape))
        return sum(int(np.prod(s)) for _, s in self.pieces)

    def _values(self, z: bytes) -> np.ndarray:
        a = np.frombuffer(zlib.decompress(z), dtype=self.dtype)
        return a.reshape(self.shape) if self.pieces is None else a

    def old(self) -> np.ndarray:
        return self._values(self.old_z)

    def new(self) -> np.ndarray:
        return self._values(self.new_z)

    @classmethod
    def from_change(cls, ch: Change) -> Entry:
        return cls(ch.name, tuple(ch.lo), ch.shape, ch.old.dtype.str,  # type: ignore[arg-type]
                   zlib.compress(raw_bytes(ch.old), 1), zlib.compress(raw_bytes(ch.new), 1), ch.pieces)


def raw_bytes(a: np.ndarray):
    """The array's bytes without a copy when it is contiguous (zlib reads any buffer)."""
    a = np.ascontiguousarray(a)
    return memoryview(a).cast("B") if a.size else b""


Listener = Callable[[str, Change], None]


class EditHistory:
    def __init__(self, labelmap: LabelMap, max_bytes: int = 128 * 1024 * 1024, max_entries: int = 2000) -> None:
        self.labelmap = labelmap
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self._undo: list[Entry] = []
        self._redo: list[Entry] = []
        self.listeners: list[Listener] = []
        self.strokes_begun = 0  # changes whenever a stroke starts (the autosave's consistency check)
        # stroke being recorded
        self._stroke_name: str | None = None
        self._lo: np.ndarray | None = None
        self._hi: np.ndarray | None = None
        self._dabs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (lo, hi, old) of each dab

    # ---- recording -----------------------------------------------------------------------
    @property
    def in_stroke(self) -> bool:
        return self._stroke_name is not None

    def begin(self, name: str) -> None:
        if self.in_stroke:
            self.end()
        self._stroke_name = name
        self.strokes_begun += 1
        self._lo = self._hi = None
        self._dabs = []

    def add(self, change: Change | None) -> None:
        """Record a change that was already applied to the label map (part of a stroke)."""
        if change is None:
            return
        if not self.in_stroke:
            self.push(change)
            return
        lo, hi = np.asarray(change.lo), np.asarray(change.hi)
        if not self._dabs:
            self._lo, self._hi = lo, hi
        else:
            plo, phi, _ = self._dabs[-1]
            if np.all(lo >= plo) and np.all(hi <= phi):
                # inside the previous dab's box: every voxel there already has its pre-stroke value
                # stored (by that dab or an earlier one); the change's old values add nothing
                return
            self._lo, self._hi = np.minimum(lo, self._lo), np.maximum(hi, self._hi)
        self._dabs.append((lo, hi, change.old.copy()))

    def end(self) -> Change | None:
        """Close the stroke: one named entry on the undo stack. Returns the merged change."""
        name, self._stroke_name = self._stroke_name, None
        dabs, self._dabs = self._dabs, []
        if not dabs or name is None:
            return None
        assert self._lo is not None and self._hi is not None
        lo, hi = tuple(int(x) for x in self._lo), tuple(int(x) for x in self._hi)
        sparse = patch.stroke_patch(self.labelmap.array, dabs) if len(dabs) > 1 else None
        if sparse is not None:
            pieces, old, new = sparse
            ch = Change(lo, hi, old, new, name, pieces)  # type: ignore[arg-type]
        else:
            new = self.labelmap.array[tuple(slice(a, b) for a, b in zip(lo, hi, strict=False))].copy()
            old = new.copy()  # voxels no dab touched: unchanged
            for dlo, dhi, dab_old in reversed(dabs):  # the earliest dab's old value (pre-stroke) wins
                old[tuple(slice(int(a - u), int(b - u)) for a, b, u in zip(dlo, dhi, lo, strict=False))] = dab_old
            ch = Change(lo, hi, old, new, name)  # type: ignore[arg-type]
        changed = old != new  # once: the emptiness test and the statistics share it
        if not changed.any():
            return None
        self._commit(ch, changed)
        return ch

    def push(self, change: Change | None, name: str | None = None) -> Change | None:
        """Record a one-shot operation (fill, islands, interpolate...) as one entry."""
        if change is None:
            return None
        if self.in_stroke:
            self.add(change)
            return change
        if name:
            change.name = name
        self._commit(change)
        return change

    def _commit(self, ch: Change, changed: np.ndarray | None = None) -> None:
        entry = Entry.from_change(ch)
        # listeners (undo.log, the workspace journal) reuse the compressed values: compressing a
        # long 3D stroke's box once instead of three times is most of the stroke-end time
        ch.entry, ch.new_z = entry, entry.new_z  # type: ignore[attr-defined]
        self._undo.append(entry)
        self._redo.clear()
        self._update_stats(ch, changed)
        self.labelmap.provenance.strokes += 1
        self._trim()
        self._emit("do", ch)

    def _update_stats(self, ch: Change, changed: np.ndarray | None = None) -> None:
        d = ch.old != ch.new if changed is None else changed
        p = self.labelmap.provenance
        n_changed = int(np.count_nonzero(d))
        erased = int(np.count_nonzero(ch.new[d] == 0)) if n_changed else 0
        p.voxels_painted += n_changed - erased
        p.voxels_erased += erased
        p.touch()

    def _trim(self) -> None:
        while len(self._undo) > 1 and (self.nbytes > self.max_bytes or len(self._undo) > self.max_entries):
            self._undo.pop(0)

    def _emit(self, kind: str, ch: Change) -> None:
        for fn in list(self.listeners):
            fn(kind, ch)

    # ---- undo / redo -----------------------------------------------------------------------
    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> Change | None:
        if self.in_stroke:
            self.end()
        if not self._undo:
            return None
        e = self._undo.pop()
        old, new = e.old(), e.new()
        apply_values(self.labelmap, e.lo, old, e.pieces)
        self._redo.append(e)
        ch = Change(e.lo, e.hi, new, old, f"Undo {e.name}", e.pieces)
        ch.new_z = e.old_z  # type: ignore[attr-defined]  # its new values are the entry's old ones
        self.labelmap.provenance.undos += 1
        self._update_stats(ch)
        self._emit("undo", ch)
        return ch

    def redo(self) -> Change | None:
        if not self._redo:
            return None
        e = self._redo.pop()
        old, new = e.old(), e.new()
        apply_values(self.labelmap, e.lo, new, e.pieces)
        self._undo.append(e)
        ch = Change(e.lo, e.hi, old, new, f"Redo {e.name}", e.pieces)
        ch.new_z = e.new_z  # type: ignore[attr-defined]
        self.labelmap.provenance.redos += 1
        self._update_stats(ch)
        self._emit("redo", ch)
        return ch

    # ---- inspection ------------------------------------------------------------------------
    def undo_names(self) -> list[str]:
        """Names of the undoable entries, oldest first."""
        return [e.name for e in self._undo]

    def redo_names(self) -> list[str]:
        """Names of the redoable entries, next redo last."""
        return [e.name for e in self._redo]

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._undo) + sum(e.nbytes for e in self._redo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def restore_entries(self, undo: list[Entry], redo: list[Entry]) -> None:
        """Put back stacks saved by a session (``medview.annotation.undo_log``), oldest first;
        the label map must already hold their end state. Trimmed to this history's limits."""
        self._undo, self._redo = list(undo), list(redo)
        self._trim()
