"""Run a 3D interactive segmentation network on a volume: 3D clicks in, a 3D mask out.

The network (``interactive-3d``) sees a box of the volume sampled on a fixed grid (48 x 64 x 48
cells of about 1 mm): the image z-scored over the part of the box inside the volume, and three
guidance channels: balls at the positive clicks, balls at the negative clicks, the previous mask
(the DeepGrow / DeepEdit / RITM encoding of ``guidance``, here in 3D). A volume that fits the
grid is seen whole (the hippocampus crops); a larger one through a box around the clicks and
the current mask, enlarged (zoomed out) when the object outgrows it. ``Segmenter3D.predict`` is
what the app's AI assist on a 3D series, the benchmark and training validation call.
Torch is imported lazily; no Qt.
"""

from __future__ import annotations

import numpy as np

from medview.interactive import guidance as g

GRID = (48, 64, 48)
BALL_RADIUS = 2.0  # click balls, grid cells
MARGIN = 1.4  # the box is at least this much larger than the object's extent


def normalise_crop(volume: np.ndarray, crop: g.Crop, grid: tuple[int, ...]) -> np.ndarray:
    """(1, *grid): the volume in ``crop``, z-scored over the cells inside the volume (0 outside)."""
    img = g.sample_view(np.asarray(volume, np.float32), crop, grid)
    inside = g.sample_view(np.ones(volume.shape, np.float32), crop, grid) > 0.5
    vals = img[inside]
    if vals.size:
        mean, std = float(vals.mean()), float(vals.std())
        img = np.where(inside, (img - mean) / (std if std > 1e-6 else 1.0), 0.0)
    return img[None].astype(np.float32)


def base_step(spacing: tuple[float, ...] | None, target_mm: tuple[float, ...] | None) -> tuple[float, ...]:
    """Volume voxels per grid cell for a cell of ``target_mm`` (unit steps within 10%: no resampling)."""
    if spacing is None or target_mm is None:
        return (1.0, 1.0, 1.0)
    out = []
    for s, t in zip(spacing, target_mm, strict=True):
        r = float(t) / float(s)
        out.append(1.0 if 0.9 <= r <= 1.1 else r)
    return tuple(out)


def choose_crop(shape: tuple[int, ...], points: np.ndarray | None, grid: tuple[int, ...] = GRID,
                step: tuple[float, ...] = (1.0, 1.0, 1.0), margin: float = MARGIN) -> g.Crop:
    """The box the network looks at: the whole volume, centred, when it fits the grid; else a box
    around ``points`` ((N, 3) voxels: clicks and mask voxels), zoomed out uniformly until their
    extent times ``margin`` fits, moved inside the volume where it can be. Unit steps keep an
    integer origin (voxels are copied, not interpolated)."""
    shape_a = np.array(shape, float)
    grid_a = np.array(grid, float)
    step_a = np.array(step, float)
    if np.all(shape_a <= grid_a * step_a):
        zoom = 1.0
        centre = shape_a / 2.0 - 0.5
    else:
        pts = np.asarray(points, float).reshape(-1, 3) if points is not None and len(points) else shape_a[None] / 2
        lo, hi = pts.min(0), pts.max(0) + 1.0
        ext = (hi - lo) * margin
        zoom = max(1.0, float(np.max(ext / (grid_a * step_a))))
        centre = (lo + hi) / 2.0 - 0.5
    st = step_a * zoom
    span = grid_a * st
    origin = centre + 0.5 - span / 2.0  # the box covers voxel coordinates [origin - 0.5, origin - 0.5 + span)
    for a in range(3):  # keep the box inside the volume where the volume is larger
        if span[a] <= shape_a[a]:
            if origin[a] < 0:
                origin[a] = 0.0
            elif origin[a] + span[a] > shape_a[a]:
                origin[a] = shape_a[a] - span[a]
    if np.all(st == 1.0):
        origin = np.floor(origin + 0.5)
    return g.Crop(tuple(float(v) for v in origin), tuple(float(v) for v in st))


def honour_clicks(mask: np.ndarray, clicks: list[g.Point], radius: float = 1.0,
                  pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None) -> None:
    """Every click has an effect: the voxels within ``radius`` of a positive click are in the
    object, of a negative one out (in place, any dimension)."""
    r = int(np.ceil(radius))
    for k in clicks:
        c = [int(round(v)) for v in k.pos]
        sl = tuple(slice(max(0, v - r), min(n, v + r + 1)) for v, n in zip(c, mask.shape, strict=True))
        if any(s.stop <= s.start for s in sl):
            continue
        grids = np.ogrid[sl]
        d2 = sum((gr - p) ** 2 for gr, p in zip(grids, k.pos, strict=True))
        mask[sl][d2 <= radius * radius] = k.positive
    if neg_strokes is not None:
        mask &= ~neg_strokes
    if pos_strokes is not None:
        mask |= pos_strokes


def limit_changes(prev: np.ndarray, new: np.ndarray, focus: tuple[float, ...], radius: float) -> np.ndarray:
    """A corrective click's result with only the changes that reach the click: the connected
    parts of ``new`` XOR ``prev`` coming within ``radius`` cells of ``focus`` are taken from
    ``new``; elsewhere ``prev`` stays (a click on one boundary never undoes work on another)."""
    from scipy import ndimage

    diff = new != prev
    if not diff.any():
        return new
    lab, _ = ndimage.label(diff)
    r = int(np.ceil(radius))
    c = [int(round(v)) for v in focus]
    sl = tuple(slice(max(0, v - r), min(n, v + r + 1)) for v, n in zip(c, prev.shape, strict=True))
    if any(s.stop <= s.start for s in sl):
        return prev.copy()
    grids = np.ogrid[sl]
    ball = sum((gr - p) ** 2 for gr, p in zip(grids, focus, strict=True)) <= radius * radius
    near = np.unique(lab[sl][ball])
    keep = np.isin(lab, near[near > 0])
    out = prev.copy()
    out[keep] = new[keep]
    return out


class Segmenter3D:
    """A loaded 3D interactive network (4 input channels: image, positive, negative, previous)."""

    dims = 3

    def __init__(self, net, grid: tuple[int, ...] = GRID, version: str = "", model_id: str = "",
                 threshold: float = 0.5, radius: float = BALL_RADIUS, target_mm: tuple[float, ...] | None = None,
                 package=None):
        self.net = net
        self.grid = tuple(int(v) for v in grid)
        self.version = version
        self.model_id = model_id
        self.threshold = threshold
        self.radius = radius
        self.target_mm = target_mm
        self.package = package
        self.last_confidence = 0.0
        self.mirror_axes: tuple[int, ...] = ()  # spatial axes (0-2) whose mirrored pass is averaged in
        self.passes = 1  # network passes per interaction
        # a corrective click changes only what connects to it (cells; None: the whole new mask),
        # from the click after the first ``local_after`` clicks on (the early ones reshape the object)
        self.local_radius: float | None = None
        self.local_after = 0
        # voxels within this radius of a click take its side whatever the network says
        self.honour_radius = 1.0
        # the orientation the network was trained in (ITK code, e.g. "RAS"); a volume whose
        # direction is given is permuted/flipped into it first (exact), its mask back after
        self.orientation: str | None = None

    @classmethod
    def from_package(cls, package) -> Segmenter3D:
        from medview.inference.package import load_network

        net = load_network(package)
        net.eval()
        inp, out = package.input, package.output
        sp = inp.get("spacing")
        seg = cls(net, tuple(inp.get("size") or GRID), package.version, package.id,
                  float(out.get("threshold", 0.5)), float(out.get("ball_radius", BALL_RADIUS)),
                  tuple(float(v) for v in sp) if sp else None, package)
        seg.mirror_axes = tuple(int(a) for a in out.get("mirror_axes", []))
        seg.passes = int(out.get("passes", 1))
        seg.local_radius = float(out["local_update_radius"]) if out.get("local_update_radius") else None
        seg.local_after = int(out.get("local_update_after", 0))
        seg.honour_radius = float(out.get("click_honour_radius", 1.0))
        seg.orientation = inp.get("orientation") or None
        return seg

    # -----------------------------------------------------------------------------------------
    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, 4, *grid) network inputs -> (N, *grid) foreground probabilities; with
        ``mirror_axes`` the mean with the input mirrored along each of those axes (one batch)."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            n = x.shape[0]
            dims = [a + 2 for a in self.mirror_axes]
            if dims:
                x = torch.cat([x] + [x.flip(d) for d in dims])
            p = torch.softmax(self.net(x), 1)[:, 1]
            if dims:
                p = (p[:n] + sum(p[(i + 1) * n:(i + 2) * n].flip(d - 1) for i, d in enumerate(dims))) / (len(dims) + 1)
            return p.numpy()

    def crop_for(self, shape, clicks: list[g.Point], prev: np.ndarray | None, spacing=None,
                 strokes: tuple[np.ndarray | None, ...] = ()) -> g.Crop:
        pts = [np.array([k.pos for k in clicks], float).reshape(-1, 3)]
        for m in (prev, *strokes):
            if m is not None and m.any():
                nz = np.argwhere(m)
                pts.append(np.stack([nz.min(0), nz.max(0)]).astype(float))
        return choose_crop(tuple(shape), np.concatenate(pts), self.grid, base_step(spacing, self.target_mm))

    def network_input(self, volume: np.ndarray, crop: g.Crop, clicks: list[g.Point], prev: np.ndarray | None,
                      pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None) -> np.ndarray:
        img = normalise_crop(volume, crop, self.grid)
        guide = g.guidance_channels(crop, clicks, prev, pos_strokes, neg_strokes, self.grid, self.radius)
        return np.concatenate([img, guide])

    def predict(self, volume: np.ndarray, clicks, prev_mask: np.ndarray | None = None,
                pos_strokes: np.ndarray | None = None, neg_strokes: np.ndarray | None = None,
                spacing: tuple[float, ...] | None = None, tta=None, direction=None,
                focus: g.Point | None = None) -> np.ndarray:
        """The object's new boolean mask in ``volume`` ((D, H, W) raw intensities). ``clicks``:
        ``guidance.Point`` (z, y, x); ``prev_mask`` the object's current mask (kept outside the
        box the network looks at); ``spacing`` (z, y, x) mm; ``direction`` the volume's 3x3
        direction matrix (medview Volume convention): with it the volume is seen in the
        network's ``orientation``; without it the array is taken to be in that orientation
        already (the training volumes are). Called the 2D way (a normalised (C, H, W) image and
        ``model.Prompts``, as the self-test does) the image is extruded into a stack of
        identical slices and the middle slice's mask returned. ``focus``: the interaction's new
        click (a corrective click when there is a previous mask): with ``local_radius`` set,
        only the changes that reach it are kept (``limit_changes``) once more than
        ``local_after`` clicks have been given."""
        if isinstance(clicks, g.Prompts):
            return self._predict_2d(volume, clicks, prev_mask)
        if self.orientation and direction is not None:
            from medview.inference.geometry import axis_map

            m = axis_map(direction, self.orientation)
            if not m.identity:
                def fwd(a):
                    return None if a is None else m.forward(a)

                moved = [g.Point(m.point(k.pos, volume.shape), k.positive) for k in clicks]
                f = None if focus is None else g.Point(m.point(focus.pos, volume.shape), focus.positive)
                out = self.predict(fwd(volume), moved, fwd(prev_mask), fwd(pos_strokes), fwd(neg_strokes),
                                   None if spacing is None else m.spacing(spacing), tta, focus=f)
                return np.ascontiguousarray(m.backward(out))
        shape = volume.shape
        prev = None if prev_mask is None or not prev_mask.any() else prev_mask.astype(bool)
        if not any(k.positive for k in clicks) and prev is None and (pos_strokes is None or not pos_strokes.any()):
            return np.zeros(shape, bool)
        crop = self.crop_for(shape, clicks, prev, spacing, (pos_strokes, neg_strokes))
        out = np.zeros(shape, bool) if prev is None else prev.copy()
        for _ in range(max(1, self.passes)):  # further passes start from the previous pass's mask
            x = self.network_input(volume, crop, clicks, out if out.any() else None, pos_strokes, neg_strokes)
            prob = self.probabilities(x[None])[0]
            vals, sl = g.paste_view(prob, crop, shape)
            out[sl] = vals >= self.threshold
        inside = vals[vals >= self.threshold]
        self.last_confidence = float(inside.mean()) if inside.size else 0.0
        if self.local_radius and focus is not None and prev is not None and len(clicks) > self.local_after:
            out = limit_changes(prev, out, focus.pos, self.local_radius)
        honour_clicks(out, clicks, self.honour_radius, pos_strokes, neg_strokes)
        return g.keep_prompted(out, clicks, pos_strokes)

    def _predict_2d(self, image_norm: np.ndarray, prompts, prev_mask: np.ndarray | None) -> np.ndarray:
        img = np.asarray(image_norm, np.float32)
        img = img[0] if img.ndim == 3 else img
        depth = self.grid[0]
        mid = depth // 2
        vol = np.repeat(img[None], depth, 0)
        clicks = [g.Point((float(mid), k.row, k.col), k.positive) for k in prompts.clicks]
        prev = None if prev_mask is None else np.repeat(prev_mask.astype(bool)[None], depth, 0)

        def ext(s):
            return None if s is None else np.repeat(s.astype(bool)[None], depth, 0)

        return self.predict(vol, clicks, prev, ext(prompts.pos_strokes), ext(prompts.neg_strokes))[mid]


def find_3d_package(volume=None):
    """The first usable 3D interactive package (``input.dims`` 3) that may run on ``volume`` (a
    medview Volume; ok or unverified by its ``accepts``), or None."""
    from medview.inference.package import discover_packages

    seen = set()
    for pkg in discover_packages():
        if pkg.id in seen:
            continue
        seen.add(pkg.id)
        if not pkg.ok or pkg.task != "interactive-segmentation" or pkg.dims != 3:
            continue
        if volume is not None and not pkg.fits(volume)[0]:
            continue
        return pkg
    return None
