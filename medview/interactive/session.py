"""One AI-assisted object on a label map: prompts in, label edits out, in 2D or 3D.

``AssistSession`` turns clicks (positive / negative), a box or a scribble on one slice into the
network's mask for the active label in that slice, then (on a 3D series) carries the mask to the
neighbouring slices one by one, each from its neighbour's mask, until the object ends (empty or
collapsing mask), a slice the user prompted himself, or ``stop()``.

On a 3D series for which a 3D interactive package fits (``model3d.find_3d_package``: MR or
modality unknown, grey), the 3D network is used instead: every click on any slice of any plane
is a 3D click and one pass updates the whole object (no propagation). ``segmenter3d="auto"``
(the default) does this when the 2D segmenter came from a package (the app's); a segmenter
built in code is used as given; pass a ``Segmenter3D`` (or ``None``) to choose.

Each interaction is ONE undo step (one history stroke named after the model and its version)
and is counted in the label map's provenance (``ai_assisted``). No Qt: the app drives
``steps()`` from a timer, the benchmark runs it to the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from medview.annotation.history import EditHistory
from medview.annotation.labelmap import LabelMap
from medview.annotation.ops import Change, _commit, _plane_box
from medview.interactive import guidance as g
from medview.interactive.model import Prompts, Segmenter

_SEG3D_CACHE: dict[str, object] = {}


def set_slice_mask(lm: LabelMap, plane_axis: int, index: int, mask2d: np.ndarray, value: int,
                   over: str = "background") -> Change | None:
    """Make label ``value`` in one slice equal ``mask2d``: voxels leaving it become background;
    voxels joining it are taken from background only (``over="background"``) or from any
    unlocked label (``"all"``). Locked labels are never changed."""
    cur2d = np.take(lm.array, index, axis=plane_axis)
    own = cur2d == value
    new = cur2d.copy()
    new[own & ~mask2d] = 0
    add = mask2d & ~own
    if over == "background":
        add &= cur2d == 0
    new[add] = value
    diff = new != cur2d
    if not diff.any():
        return None
    rows, cols = np.nonzero(diff)
    lo, hi = _plane_box(plane_axis, index, (int(rows.min()), int(rows.max()) + 1),
                        (int(cols.min()), int(cols.max()) + 1))
    box = new[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return _commit(lm, lo, hi, np.expand_dims(box, plane_axis), "AI assist")


def set_volume_mask(lm: LabelMap, mask: np.ndarray, value: int, over: str = "background") -> Change | None:
    """Make label ``value`` equal ``mask`` (a boolean volume) everywhere, the rules of
    ``set_slice_mask``; the change is the box around what changed."""
    own = lm.array == value
    touch = own | mask
    if not touch.any():
        return None
    nz = [np.nonzero(touch.any(axis=other))[0] for other in ((1, 2), (0, 2), (0, 1))]
    lo = tuple(int(a[0]) for a in nz)
    hi = tuple(int(a[-1]) + 1 for a in nz)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    cur = lm.array[sl]
    new = cur.copy()
    new[own[sl] & ~mask[sl]] = 0
    add = mask[sl] & ~own[sl]
    if over == "background":
        add &= cur == 0
    new[add] = value
    if not (new != cur).any():
        return None
    return _commit(lm, lo, hi, new, "AI assist")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int((a & b).sum()) / s


@dataclass
class SliceState:
    prompts: Prompts = field(default_factory=Prompts)


class AssistSession:
    """The object being segmented with the AI: its prompts per slice and its edits."""

    def __init__(self, segmenter: Segmenter, labelmap: LabelMap, image: np.ndarray, history: EditHistory | None,
                 value: int = 1, over: str = "background", propagate: bool = True,
                 min_area_ratio: float = 0.25, max_area_ratio: float = 2.5, min_pixels: int = 4,
                 min_overlap: float = 0.3, agree: float = 0.9, min_start_ratio: float = 0.35,
                 on_change=None, segmenter3d="auto") -> None:
        if getattr(segmenter, "dims", 2) == 3:  # a 3D network given as the segmenter
            segmenter3d, segmenter = segmenter, segmenter
        self.segmenter = segmenter
        self.lm = labelmap
        self.image = image  # (k, j, i) grey or (k, j, i, 3) colour, the label map's grid
        self.history = history
        self.value = int(value)
        self.over = over
        self.propagate = propagate
        self.min_area_ratio = min_area_ratio
        self.max_area_ratio = max_area_ratio
        self.min_pixels = min_pixels
        self.min_overlap = min_overlap  # IoU with the neighbour's mask below this: the object is lost
        self.agree = agree  # Dice with the slice's earlier mask from which propagation stops
        # a mask smaller than this fraction of the prompted slice's is the object's tapering end
        # (the network tends to carry a small mask on past it; 0.35 chosen on the hippocampus
        # validation volumes: Dice after 1 / 3 / 10 clicks 0.599 / 0.699 / 0.759 vs 0.565 / 0.676 / 0.744 without)
        self.min_start_ratio = min_start_ratio
        self.on_change = on_change  # fn(Change): redraw the region
        self.plane_axis = 0
        self.slices: dict[int, SliceState] = {}
        self._norm: dict[tuple[int, int], np.ndarray] = {}
        self._stopped = False
        self._running: Iterator[int] | None = None
        self._seg3d = None if segmenter3d == "auto" else segmenter3d
        self._seg3d_resolved = segmenter3d != "auto"
        # 3D prompts (3D network): clicks as (z, y, x) points, scribbles as voxel masks, a box
        self.points3d: list[g.Point] = []
        self.strokes3d: dict[bool, np.ndarray] = {}
        self.box3d: tuple[int, float, float, float, float] | None = None

    # ---- which network -----------------------------------------------------------------------
    @property
    def segmenter3d(self):
        """The 3D network this session uses on its 3D series, or None (2D + propagation)."""
        if not self._seg3d_resolved:
            self._seg3d_resolved = True
            self._seg3d = self._find_3d()
        return self._seg3d

    @property
    def known_segmenter3d(self):
        """The 3D network once the session has looked for one (never loads it: for labels)."""
        return self._seg3d if self._seg3d_resolved else None

    def _find_3d(self):
        img = self.image
        if img.ndim != 3 or img.shape[0] < 2 or getattr(self.segmenter, "package", None) is None:
            return None
        from medview.interactive import model3d

        try:
            pkg = model3d.find_3d_package(self.lm.volume)
            if pkg is None:
                return None
            key = pkg.cache_key()
            if key not in _SEG3D_CACHE:
                _SEG3D_CACHE.clear()
                _SEG3D_CACHE[key] = model3d.Segmenter3D.from_package(pkg)
            return _SEG3D_CACHE[key]
        except Exception:  # noqa: BLE001 - an unusable 3D package leaves the 2D network in charge
            return None

    @property
    def active(self):
        """The network that answers the next interaction."""
        return self.segmenter3d or self.segmenter

    @property
    def stroke_name(self) -> str:
        seg = self.active
        return f"AI assist ({seg.model_id or 'model'} {seg.version})".replace(" )", ")")

    def reset(self, value: int | None = None) -> None:
        """Start a new object (e.g. after choosing another label)."""
        self.finish()
        self.slices.clear()
        self.points3d.clear()
        self.strokes3d.clear()
        self.box3d = None
        if value is not None:
            self.value = int(value)

    def _spacing_zyx(self) -> tuple[float, float, float] | None:
        vol = getattr(self.lm, "volume", None)
        sp = getattr(vol, "spacing", None)
        return None if sp is None else tuple(float(v) for v in sp[::-1])

    @staticmethod
    def _point3(plane_axis: int, index: int, row: float, col: float) -> tuple[float, float, float]:
        p = [float(row), float(col)]
        p.insert(plane_axis, float(index))
        return tuple(p)  # type: ignore[return-value]

    # ---- prompts -----------------------------------------------------------------------------
    def _slice(self, plane_axis: int, index: int) -> SliceState:
        if plane_axis != self.plane_axis:  # prompts belong to one plane
            self.slices.clear()
            self.plane_axis = plane_axis
        return self.slices.setdefault(index, SliceState())

    def normalised(self, plane_axis: int, index: int) -> np.ndarray:
        key = (plane_axis, index)
        if key not in self._norm:
            if len(self._norm) > 256:
                self._norm.clear()
            self._norm[key] = g.normalise_image(np.take(self.image, index, axis=plane_axis))
        return self._norm[key]

    def click(self, plane_axis: int, index: int, row: float, col: float, positive: bool = True) -> Iterator[int]:
        if self.segmenter3d is not None:
            self.points3d.append(g.Point(self._point3(plane_axis, index, row, col), bool(positive)))
            return self._interaction(plane_axis, index, focus=self.points3d[-1])
        st = self._slice(plane_axis, index)
        st.prompts.clicks.append(g.Click(float(row), float(col), bool(positive)))
        return self._interaction(plane_axis, index)

    def box(self, plane_axis: int, index: int, r0: float, c0: float, r1: float, c1: float) -> Iterator[int]:
        if self.segmenter3d is not None:  # a new object: a click at the box's centre, clipped to the box's prism
            r0, r1, c0, c1 = min(r0, r1), max(r0, r1), min(c0, c1), max(c0, c1)
            self.points3d = [g.Point(self._point3(plane_axis, index, (r0 + r1) / 2, (c0 + c1) / 2), True)]
            self.strokes3d.clear()
            self.box3d = (plane_axis, r0, c0, r1, c1)
            return self._interaction(plane_axis, index, replace=True)
        st = self._slice(plane_axis, index)
        st.prompts.box = (min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1))
        return self._interaction(plane_axis, index, replace=True)

    def scribble(self, plane_axis: int, index: int, stroke2d: np.ndarray, positive: bool = True) -> Iterator[int]:
        if self.segmenter3d is not None:
            vol = self.strokes3d.setdefault(bool(positive), np.zeros(self.lm.array.shape, bool))
            sl: list = [slice(None)] * 3
            sl[plane_axis] = index
            vol[tuple(sl)] |= stroke2d.astype(bool)
            return self._interaction(plane_axis, index)
        st = self._slice(plane_axis, index)
        attr = "pos_strokes" if positive else "neg_strokes"
        old = getattr(st.prompts, attr)
        setattr(st.prompts, attr, stroke2d.astype(bool) if old is None else (old | stroke2d.astype(bool)))
        return self._interaction(plane_axis, index)

    # ---- running -----------------------------------------------------------------------------
    def _interaction(self, a: int, c: int, replace: bool = False, focus: g.Point | None = None) -> Iterator[int]:
        """Begin one undo step: the prompted slice now, propagation as the iterator is consumed.
        ``focus``: a 3D click's point (its changes may be limited to what reaches it)."""
        self.finish()
        self._stopped = False
        if self.history is not None:
            self.history.begin(self.stroke_name)
        if self.segmenter3d is not None:
            self._running = self._steps3d(a, c, replace, focus)
        else:
            self._running = self._steps(a, c, replace)
        return self._running

    def _record(self, ch: Change | None) -> None:
        if ch is None:
            return
        if self.history is not None:
            self.history.add(ch)
        if self.on_change is not None:
            self.on_change(ch)

    def _steps(self, a: int, c: int, replace: bool) -> Iterator[int]:
        prev = np.take(self.lm.array, c, axis=a) == self.value
        prompts = self.slices[c].prompts
        mask = self.segmenter.predict(self.normalised(a, c), prompts, None if (replace or not prev.any()) else prev)
        self._record(set_slice_mask(self.lm, a, c, mask, self.value, self.over))
        yield c
        n = self.lm.array.shape[a]
        if not self.propagate or n == 1 or not mask.any():
            return
        start_area = int(mask.sum())
        for step in (1, -1):
            src = mask
            k = c + step
            while 0 <= k < n and not self._stopped and k not in self.slices:
                nxt = self.segmenter.predict(self.normalised(a, k), Prompts(), src, tta=False)  # speed
                area, before = int(nxt.sum()), int(src.sum())
                if area < max(self.min_pixels, self.min_area_ratio * before, self.min_start_ratio * start_area) \
                        or area > self.max_area_ratio * before:
                    break  # the object ends here (or the mask leaks into its surroundings)
                if int((nxt & src).sum()) < self.min_overlap * int((nxt | src).sum()):
                    break  # the mask jumped or drifted away from its neighbour's: not the same object
                existing = np.take(self.lm.array, k, axis=a) == self.value
                self._record(set_slice_mask(self.lm, a, k, nxt, self.value, self.over))
                yield k
                if existing.any() and _dice(existing, nxt) >= self.agree:
                    break  # the slices beyond were propagated from an agreeing mask: keep them
                src, k = nxt, k + step

    def _steps3d(self, a: int, c: int, replace: bool, focus: g.Point | None = None) -> Iterator[int]:
        """One pass of the 3D network over the object; yields the prompted slice once."""
        seg = self.segmenter3d
        prev = self.lm.array == self.value
        mask = seg.predict(self.image, self.points3d, None if (replace or not prev.any()) else prev,
                           self.strokes3d.get(True), self.strokes3d.get(False), spacing=self._spacing_zyx(),
                           direction=getattr(getattr(self.lm, "volume", None), "direction", None), focus=focus)
        if self.box3d is not None:  # the object lies inside the box's prism
            ax, r0, c0, r1, c1 = self.box3d
            inside = np.zeros(mask.shape, bool)
            sl: list = [slice(None)] * 3
            others = [k for k in range(3) if k != ax]
            sl[others[0]] = slice(max(0, int(r0)), int(np.ceil(r1)) + 1)
            sl[others[1]] = slice(max(0, int(c0)), int(np.ceil(c1)) + 1)
            inside[tuple(sl)] = True
            mask &= inside
        self._record(set_volume_mask(self.lm, mask, self.value, self.over))
        yield c

    def run(self, it: Iterator[int]) -> list[int]:
        """Consume an interaction to its end; returns the slices it wrote."""
        done = list(it)
        self.finish()
        return done

    @property
    def running(self) -> bool:
        return self._running is not None

    def stop(self) -> None:
        """Stop the propagation now (the slices done so far stay; the step is closed)."""
        self._stopped = True
        self.finish()

    def finish(self) -> None:
        """Close the running interaction's undo step and count it in the provenance."""
        if self._running is None:
            return
        self._running = None
        if self.history is not None and self.history.in_stroke:
            if self.history.end() is not None:
                seg = self.active
                key = f"{seg.model_id} {seg.version}".strip()
                prov = self.lm.provenance
                prov.ai_assisted[key] = prov.ai_assisted.get(key, 0) + 1
                prov.touch()
