"""Workspace snapshots in slabs: only changed slabs are rewritten, never a whole-array copy.

``snapshot.json`` names one zlib file per non-zero slab of ``SLAB`` slices (axis 0). A snapshot of seq S
copies each changed slab from the live label map (a ~2 MB copy, well under a millisecond of
GIL), compresses it (zlib releases the GIL) and writes it atomically; unchanged slabs keep their
file from the previous snapshot. Then ``snapshot.json`` is replaced atomically.

Consistency: a slab copied while later edits land may already hold edits newer than S. Journal
records hold absolute values of their box, so replaying every record newer than S on top gives
the same labels. A slab is never copied in the middle of a stroke (its voxels may be only half
painted and not journalled yet): the copy waits until the stroke ends and is repeated when a
stroke started during it.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from medview.annotation.journal import atomic_write_bytes, atomic_write_json

SLAB = 8
SCHEMA = "medview-workspace/1"


def slab_range(n_slices: int) -> range:
    return range((n_slices + SLAB - 1) // SLAB)


def slabs_of_box(lo0: int, n0: int) -> range:
    return range(lo0 // SLAB, (lo0 + max(n0, 1) - 1) // SLAB + 1)


def all_zero(arr: np.ndarray) -> bool:
    """``not arr.any()`` slab by slab: each slab's pass holds the GIL well under a millisecond
    (one pass over a 300x512x512 map would hold it for tens of ms and stall the GUI thread)."""
    for i in slab_range(arr.shape[0]):
        if arr[i * SLAB:(i + 1) * SLAB].any():
            return False
        time.sleep(0)  # let the GUI thread take the GIL between slabs
    return True


def _slab_name(i: int, seq: int) -> str:
    return f"slab-{i:04d}-{seq:012d}.z"


def read_snapshot_info(root: Path) -> dict[str, Any]:
    return json.loads((Path(root) / "snapshot.json").read_text(encoding="utf-8"))


def write_snapshot(root: Path, get_array: Callable[[], np.ndarray], dirty: Iterable[int], seq: int,
                   table: dict[str, Any], busy: Callable[[], int] | None = None) -> None:
    """Write the slabs in ``dirty`` (all when there is no earlier snapshot of this shape and
    dtype) and a new ``snapshot.json`` for ``seq``. ``busy()`` returns -1 while a stroke is being
    drawn, else a counter that changes whenever a stroke starts. Raises OSError (disk full...)
    with the previous snapshot left intact."""
    root = Path(root)
    arr = get_array()
    shape, dtype = list(arr.shape), arr.dtype.str
    try:
        prev = read_snapshot_info(root)
    except (OSError, ValueError):
        prev = {}
    chunks: dict[str, str] = dict(prev.get("chunks") or {})
    if prev.get("shape") != shape or prev.get("dtype") != dtype or "chunks" not in prev:
        chunks = {}
        dirty = slab_range(shape[0])
    for i in sorted(set(dirty)):
        while True:
            token = busy() if busy is not None else 0
            if token == -1:
                time.sleep(0.02)
                continue
            a = get_array()
            if a.dtype.str != dtype or list(a.shape) != shape:
                raise _Restart()
            part = a[i * SLAB:(i + 1) * SLAB].copy()
            if busy is None or busy() == token:
                break
        if not part.any():  # an all-zero slab needs no file (a missing slab reads as zeros)
            chunks.pop(str(i), None)
            continue
        name = _slab_name(i, seq)
        atomic_write_bytes(root / name, zlib.compress(memoryview(part).cast("B"), 1))
        chunks[str(i)] = name
    atomic_write_json(root / "snapshot.json", {
        "schema": SCHEMA, "seq": seq, "dtype": dtype, "shape": shape, "slab": SLAB,
        "chunks": chunks, "saved": time.strftime("%Y-%m-%dT%H:%M:%S"), **table,
    })
    keep = set(chunks.values())
    for p in root.glob("slab-*.z"):
        if p.name not in keep:
            p.unlink(missing_ok=True)
    for p in list(root.glob("snapshot-*.z")) + list(root.glob(".*.tmp")):
        try:
            if p.suffix == ".z" or time.time() - p.stat().st_mtime > 60:
                p.unlink()
        except OSError:
            pass


class _Restart(Exception):
    """The label map changed dtype or shape during a snapshot: start it again."""


Restart = _Restart


def write_empty_snapshot(root: Path, shape: tuple[int, ...], dtype: str, table: dict[str, Any]) -> None:
    """Snapshot 0 of an all-zero label map: no slab files at all (instant)."""
    atomic_write_json(Path(root) / "snapshot.json", {
        "schema": SCHEMA, "seq": 0, "dtype": dtype, "shape": list(shape), "slab": SLAB, "chunks": {},
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S"), **table,
    })


def read_snapshot(root: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(label array, snapshot.json) of the last snapshot; the single-file form of older
    workspaces (``"data"``) is read too."""
    root = Path(root)
    snap = read_snapshot_info(root)
    dtype = np.dtype(snap["dtype"])
    shape = tuple(snap["shape"])
    if "data" in snap:
        arr = np.frombuffer(zlib.decompress((root / snap["data"]).read_bytes()), dtype=dtype)
        return arr.reshape(shape).copy(), snap
    arr = np.zeros(shape, dtype)
    slab = int(snap.get("slab", SLAB))
    for key, name in snap["chunks"].items():
        i = int(key)
        part = arr[i * slab:(i + 1) * slab]
        part[...] = np.frombuffer(zlib.decompress((root / name).read_bytes()), dtype=dtype).reshape(part.shape)
    return arr, snap
