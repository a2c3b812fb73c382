"""Sparse patches: a changed region stored as several small boxes instead of one bounding box.

A long diagonal 3D stroke touches a thin tube of voxels, but its bounding box can be a fifth of
a CT volume; copying, comparing and compressing that box at the mouse release stalls the GUI
thread for 150 ms. ``stroke_patch`` cuts the stroke into the grid blocks its dabs touch (each
trimmed to the dabs inside it), so the stroke end costs what the stroke painted.

A patch is ``pieces``: a tuple of ``(lo, shape)`` boxes (array index order, disjoint), and its
values: ONE flat array, the pieces' C-order values one after the other. ``Change.pieces`` and
``Entry.pieces`` carry it (None = the plain bounding box).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

BLOCK = 32  # grid block edge in voxels: small against a CT volume, large against per-block overhead
DENSE_SHARE = 0.5  # pieces covering at least this share of the bounding box: keep the plain box

Box = tuple[tuple[int, int, int], tuple[int, int, int]]


def _slices(lo: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(a) + int(n)) for a, n in zip(lo, shape, strict=False))


def split(values: np.ndarray, pieces: Sequence[Box]) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """(lo, box values) of each piece from the flat ``values``."""
    flat = values.reshape(-1)
    at = 0
    for lo, shape in pieces:
        n = int(np.prod(shape))
        yield lo, flat[at:at + n].reshape(shape)
        at += n


def write(arr: np.ndarray, lo: Sequence[int], values: np.ndarray, pieces: Sequence[Box] | None) -> None:
    """Write a change's values into ``arr``: the box at ``lo``, or each piece."""
    if pieces is None:
        arr[_slices(lo, values.shape)] = values
        return
    for plo, vals in split(values, pieces):
        arr[_slices(plo, vals.shape)] = vals


def read(arr: np.ndarray, lo: Sequence[int], shape: Sequence[int], pieces: Sequence[Box] | None) -> np.ndarray:
    """The values ``arr`` holds where a change is, in the change's layout."""
    if pieces is None:
        return arr[_slices(lo, shape)]
    if not pieces:
        return arr[:0].reshape(-1)
    return np.concatenate([arr[_slices(plo, pshape)].reshape(-1) for plo, pshape in pieces])


def pieces_to_json(pieces: Sequence[Box]) -> list:
    """``pieces`` as a JSON header holds them (lists)."""
    return [[list(lo), list(shape)] for lo, shape in pieces]


def pieces_from_json(value) -> tuple | None:
    """``pieces`` as written in a JSON header (lists), back as tuples; None stays None."""
    if value is None:
        return None
    return tuple((tuple(int(v) for v in lo), tuple(int(v) for v in shape)) for lo, shape in value)


def z_spans(lo: Sequence[int], shape: Sequence[int], pieces: Sequence[Box] | None) -> list[tuple[int, int]]:
    """(first slice, number of slices) of each box: the slabs an autosave must write again."""
    if pieces is None:
        return [(int(lo[0]), int(shape[0]))]
    return [(int(plo[0]), int(pshape[0])) for plo, pshape in pieces]


def stroke_patch(arr: np.ndarray, dabs: Sequence[tuple[Sequence[int], Sequence[int], np.ndarray]]):
    """Merge a stroke's dabs, ``(lo, hi, values before the dab)`` in painting order, with
    ``arr`` holding the values after the stroke. Returns ``(pieces, old, new)`` (flat values;
    pieces where nothing changed are left out), or None when the pieces would cover most of
    the bounding box anyway (the caller keeps the plain box then)."""
    dabs = [(tuple(int(v) for v in lo), tuple(int(v) for v in hi), old) for lo, hi, old in dabs]
    blo = tuple(min(d[0][a] for d in dabs) for a in range(3))
    bhi = tuple(max(d[1][a] for d in dabs) for a in range(3))
    box_voxels = int(np.prod([h - lo for lo, h in zip(blo, bhi, strict=False)]))
    touched: dict[tuple[int, int, int], list[int]] = {}
    for i, (lo, hi, _) in enumerate(dabs):
        r = [range(lo[a] // BLOCK, (hi[a] - 1) // BLOCK + 1) for a in range(3)]
        for bz in r[0]:
            for by in r[1]:
                for bx in r[2]:
                    touched.setdefault((bz, by, bx), []).append(i)
    boxes = []
    for key in sorted(touched):
        ids = touched[key]
        lo = tuple(max(key[a] * BLOCK, min(dabs[i][0][a] for i in ids)) for a in range(3))
        hi = tuple(min((key[a] + 1) * BLOCK, max(dabs[i][1][a] for i in ids)) for a in range(3))
        boxes.append((lo, hi, ids))
    if len(boxes) < 2 or sum(int(np.prod([h - lo for lo, h in zip(b[0], b[1], strict=False)]))
                             for b in boxes) >= DENSE_SHARE * box_voxels:
        return None
    pieces, olds, news = [], [], []
    for (z0, y0, x0), (z1, y1, x1), ids in boxes:
        new = arr[z0:z1, y0:y1, x0:x1].copy()
        old = new.copy()
        for i in reversed(ids):  # the earliest dab's old value (the pre-stroke one) wins
            (dz0, dy0, dx0), (dz1, dy1, dx1), dold = dabs[i]
            a, b, c = max(z0, dz0), max(y0, dy0), max(x0, dx0)
            d, e, f = min(z1, dz1), min(y1, dy1), min(x1, dx1)
            old[a - z0:d - z0, b - y0:e - y0, c - x0:f - x0] = dold[a - dz0:d - dz0, b - dy0:e - dy0, c - dx0:f - dx0]
        if np.array_equal(old, new):
            continue
        pieces.append(((z0, y0, x0), (z1 - z0, y1 - y0, x1 - x0)))
        olds.append(old.reshape(-1))
        news.append(new.reshape(-1))
    if not pieces:
        return (), arr[:0].reshape(-1), arr[:0].reshape(-1)
    return tuple(pieces), np.concatenate(olds), np.concatenate(news)
