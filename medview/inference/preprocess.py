"""Pre-processing shared by training and inference (pure numpy + scipy, no torch, no Qt).

Training code and the inference pipeline call exactly these functions, so a network sees the
same numbers at training and at inference time. The manifest's ``input`` block names them:

* ``channels``  -> :func:`build_channels`
* ``normalization`` -> :func:`normalize`
* ``size`` -> :func:`resize` ; ``pad_to_multiple`` -> :func:`pad_to_multiple` / :func:`unpad`
* ``crop`` (``{"kind": "field_of_view", "level": 0.1}``) -> :func:`field_box`: the square around
  the lit field of a photograph with a black surround (fundus camera), so the retina fills the
  network input whatever the camera's framing; :func:`place_in_box` maps an output back.

Array conventions: a *channel-first* float32 array ``(C, H, W)`` for 2D or ``(C, D, H, W)`` for
3D. Spatial axes follow the Volume: (z, y, x) = (k, j, i), i.e. H = rows (j), W = columns (i).
The domain over which statistics are computed is *the array you pass*: the inference pipeline
passes one slice for a 2D model (so it matches training on single 2D images) and the whole
(resampled) volume for a 3D model.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

# ITU-R BT.601 luma, the same weights PIL uses for convert("L").
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

CHANNEL_MODES = ("grey", "rgb", "green")
NORMALIZATIONS = ("zscore", "percentile", "ct_window", "rgb01", "minmax", "local_contrast", "local_mean", "none")


def n_channels(mode: str) -> int:
    """Number of network input channels a ``channels`` mode produces."""
    mode = _channel_mode(mode)
    return 3 if mode == "rgb" else 1


def _channel_mode(spec: str | Mapping[str, Any]) -> str:
    mode = spec.get("channels", "grey") if isinstance(spec, Mapping) else spec
    mode = {"gray": "grey", "l": "grey", "g": "green"}.get(str(mode).lower(), str(mode).lower())
    if mode not in CHANNEL_MODES:
        raise ValueError(f"unknown channels mode {mode!r}; expected one of {CHANNEL_MODES}")
    return mode


def build_channels(array: np.ndarray, spec: str | Mapping[str, Any], rgb: bool | None = None) -> np.ndarray:
    """Turn an image (one Volume slice or a whole Volume array) into channel-first float32.

    ``array`` is ``(H, W)`` or ``(D, H, W)`` for a scalar image, or the same with a trailing
    colour axis of 3 (RGB) or 4 (RGBA, alpha dropped) for a colour image. ``rgb`` says which;
    when None a trailing axis of length 3/4 on a >= 3-D array means colour.

    ``spec`` is the manifest's ``input`` dict (its ``channels`` key) or the mode itself:

    * ``grey``  -> 1 channel. Scalar images as they are (values untouched, cast to float32);
      colour images -> BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (what PIL's ``convert("L")``
      computes, without its rounding to uint8).
    * ``rgb``   -> 3 channels R, G, B. A scalar image is repeated into all three.
    * ``green`` -> 1 channel: the G channel of a colour image (fundus photographs); a scalar
      image is used as it is.

    Returns ``(C, H, W)`` or ``(C, D, H, W)`` float32. No intensity scaling happens here.
    """
    mode = _channel_mode(spec)
    a = np.asarray(array)
    if rgb is None:
        rgb = a.ndim >= 3 and a.shape[-1] in (3, 4)
    if rgb:
        if mode == "rgb":  # one pass: cast and move the colour axis first
            return np.ascontiguousarray(np.moveaxis(a[..., :3], -1, 0), dtype=np.float32)
        colour = a[..., :3].astype(np.float32, copy=False)
        if mode == "green":
            return np.ascontiguousarray(colour[..., 1][np.newaxis])
        return (colour @ _LUMA)[np.newaxis].astype(np.float32, copy=False)
    scalar = a.astype(np.float32, copy=False)[np.newaxis]
    if mode == "rgb":
        return np.ascontiguousarray(np.repeat(scalar, 3, axis=0))
    return np.ascontiguousarray(scalar)


def normalize(array: np.ndarray, spec: Mapping[str, Any] | str | None) -> np.ndarray:
    """Intensity normalisation of a channel-first float array; returns a new float32 array.

    ``spec`` is the manifest's ``normalization`` dict (``{"kind": ..., ...}``) or a kind name.
    Statistics are computed over the whole array passed in, **per channel**, in float64:

    * ``zscore``: ``(x - mean) / std``; std below 1e-8 is treated as 1 (constant image -> 0).
      Option ``"nonzero": true`` computes mean/std over non-zero voxels only and leaves zero
      voxels at 0 (brain-MR style).
    * ``percentile``: ``lower``/``upper`` percentiles (defaults 0.5 / 99.5, numpy's linear
      interpolation) -> clip to [p_lo, p_hi] and scale to [0, 1]; p_hi == p_lo gives 0.
    * ``ct_window``: ``center``/``width`` (HU) -> clip to [c - w/2, c + w/2], scale to [0, 1]
      (the same fixed window for every channel; no per-image statistics).
    * ``rgb01``: ``x / 255`` clipped to [0, 1] (8-bit images; fixed, no statistics).
    * ``minmax``: ``(x - min) / (max - min)`` per channel; constant channel -> 0.
    * ``local_contrast``: ``(x - m) / sqrt(v + (0.1 * s)^2)`` per channel, where ``m`` and ``v``
      are the Gaussian-weighted local mean and variance (``sigma`` pixels, default 8, scipy's
      ``gaussian_filter`` with mode "reflect") and ``s`` the global std; the global term keeps
      flat regions (the black surround of a fundus) from being blown up. Thin structures such
      as retinal vessels stand out the same way whatever the overall illumination.
    * ``local_mean``: ``(x - m) / s`` per channel, ``m`` and ``s`` as above: the slowly varying
      illumination is removed (B. Graham's fundus pre-processing) but not the local spread, so a
      bright exudate or a dark haemorrhage keeps its contrast against the retina around it
      (``local_contrast`` scales every neighbourhood to unit spread, which suits vessel maps).
    * ``none`` (or spec None): cast to float32 only.
    """
    a = np.asarray(array, dtype=np.float32)
    if spec is None:
        return a.copy()
    if isinstance(spec, str):
        spec = {"kind": spec}
    kind = str(spec.get("kind", "none")).lower()
    if kind == "none":
        return a.copy()
    if kind == "ct_window":
        c = float(spec.get("center", 40.0))
        w = float(spec.get("width", 400.0))
        if w <= 0:
            raise ValueError(f"ct_window width must be > 0, got {w}")
        lo = c - w / 2.0
        return np.clip((a - lo) / w, 0.0, 1.0).astype(np.float32)
    if kind == "rgb01":
        return np.clip(a / 255.0, 0.0, 1.0).astype(np.float32)
    if kind == "local_contrast":
        return _local_contrast(a, float(spec.get("sigma", 8.0)))
    if kind == "local_mean":
        return _local_mean(a, float(spec.get("sigma", 8.0)))
    if kind not in ("zscore", "percentile", "minmax"):
        raise ValueError(f"unknown normalization {kind!r}; expected one of {NORMALIZATIONS}")

    out = np.empty_like(a, dtype=np.float32)
    for c in range(a.shape[0]):
        ch = a[c]
        if kind == "zscore":
            if spec.get("nonzero", False):
                mask = ch != 0
                vals = ch[mask].astype(np.float64)
                mean = float(vals.mean()) if vals.size else 0.0
                std = float(vals.std()) if vals.size else 1.0
                std = std if std >= 1e-8 else 1.0
                out[c] = np.where(mask, (ch - mean) / std, 0.0)
            else:  # two passes, float64 accumulation, one float32 buffer (the output itself)
                d = out[c]
                np.subtract(ch, np.float32(ch.mean(dtype=np.float64)), out=d)
                sq = np.square(d)
                std = float(np.sqrt(sq.sum(dtype=np.float64) / max(1, d.size)))
                d *= np.float32(1.0 / (std if std >= 1e-8 else 1.0))
        elif kind == "percentile":
            lo_q = float(spec.get("lower", 0.5))
            hi_q = float(spec.get("upper", 99.5))
            lo, hi = np.percentile(ch, [lo_q, hi_q])
            if hi - lo <= 0:
                out[c] = 0.0
            else:
                out[c] = (np.clip(ch, lo, hi) - lo) / (hi - lo)
        else:  # minmax
            lo = float(ch.min())
            hi = float(ch.max())
            out[c] = 0.0 if hi - lo <= 0 else (ch - lo) / (hi - lo)
    return out


def _local_contrast(a: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        raise ValueError(f"local_contrast sigma must be > 0, got {sigma}")
    ch = np.asarray(a, dtype=np.float32)
    d = _gaussian(ch, sigma)
    np.subtract(ch, d, out=d)  # in place: d = ch - local mean
    var = _gaussian(np.square(d), sigma)
    for c in range(ch.shape[0]):
        floor = np.float32((0.1 * float(ch[c].std(dtype=np.float64))) ** 2 + 1e-12)
        v = var[c]
        v += floor
        np.sqrt(v, out=v)
        np.divide(d[c], v, out=v)
    return var


def _local_mean(a: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        raise ValueError(f"local_mean sigma must be > 0, got {sigma}")
    ch = np.asarray(a, dtype=np.float32)
    d = _gaussian(ch, sigma)
    np.subtract(ch, d, out=d)
    for c in range(ch.shape[0]):
        sd = float(ch[c].std(dtype=np.float64))
        d[c] /= np.float32(sd if sd > 1e-8 else 1.0)
    return d


def _gaussian(a: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(ch, sigma, mode="reflect")`` over the last two axes of
    each channel of ``a`` (C, H, W), computed in the DCT-II domain: scipy's "reflect" edge rule
    (d c b a | a b c d | d c b a) is the even extension the DCT-II assumes, so filtering with the
    symmetric truncated kernel is exactly a product with the kernel's cosine response, separable
    in H and W (real transforms only, padded only where a length is slow to transform: equal to
    scipy's filter to ~1e-6 of the value range, 4-5x faster than scipy's)."""
    from scipy import fft as sfft
    from scipy.ndimage import gaussian_filter

    r = int(truncate * float(sigma) + 0.5)
    if a.ndim != 3 or min(a.shape[1:]) <= r:  # 3D input or a tiny image: scipy's own filter
        return np.stack([gaussian_filter(ch, sigma, mode="reflect", truncate=truncate) for ch in a])
    h, w = a.shape[1:]
    h2, w2 = _dct_length(h, r), _dct_length(w, r)
    b = np.asarray(a, np.float32)
    if (h2, w2) != (h, w):  # an awkward length (403 = 13 x 31): a reflected margin >= r keeps it exact
        b = np.pad(b, ((0, 0), (0, h2 - h), (0, w2 - w)), mode="symmetric")
    gh, gw = _cosine_response(h2, float(sigma), r), _cosine_response(w2, float(sigma), r)
    c = sfft.dctn(b, type=2, axes=(1, 2))
    c *= gh[:, None]
    c *= gw
    return np.ascontiguousarray(sfft.idctn(c, type=2, axes=(1, 2))[:, :h, :w], dtype=np.float32)


def _smooth7(n: int) -> bool:
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


def _dct_length(n: int, r: int) -> int:
    """n when its transform is fast (factors 2, 3, 5, 7), else the shortest such length that
    leaves a reflected margin of at least the kernel radius r after the image (pocketfft's cost
    grows with the largest prime factor: 404 = 4 x 101 takes twice as long as 450)."""
    if _smooth7(n):
        return n
    m = n + r
    while not _smooth7(m):
        m += 1
    return m if m - n <= n else n  # np.pad's symmetric mode reflects at most n values


_RESPONSES: dict[tuple[int, float, int], np.ndarray] = {}


def _cosine_response(n: int, sigma: float, r: int) -> np.ndarray:
    """Multiplier of each DCT-II frequency q < n for the normalised Gaussian kernel k[-r..r]
    (scipy's weights) on the 2n-periodic even extension: k0 + 2 sum_m k_m cos(pi q m / n); the
    sum also covers a kernel longer than the signal (scipy's repeated reflections)."""
    key = (n, sigma, r)
    resp = _RESPONSES.get(key)
    if resp is None:
        x = np.arange(-r, r + 1, dtype=np.float64)
        k = np.exp(-0.5 * x * x / sigma ** 2)
        k /= k.sum()
        m = np.arange(1, r + 1, dtype=np.float64)
        q = np.arange(n, dtype=np.float64)
        resp = (k[r] + 2.0 * (np.cos(np.pi * np.outer(q, m) / n) @ k[r + 1:])).astype(np.float32)
        if len(_RESPONSES) > 64:
            _RESPONSES.clear()
        _RESPONSES[key] = resp
    return resp


def _axis_linear(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize(array: np.ndarray, size: tuple[int, ...] | list[int], order: int = 1) -> np.ndarray:
    """Resize the spatial axes of a channel-first array to ``size`` (one value per spatial axis).

    Pixel-centre ("align_corners=False") mapping, the same geometry as torch's ``F.interpolate``
    and ITK's resampling: output pixel ``o`` samples input coordinate ``(o + 0.5) * in/out - 0.5``.

    * ``order=1``: separable (bi/tri)linear, numerically torch's ``mode="bilinear"/"trilinear",
      align_corners=False`` (coordinates below 0 clamp to 0, the last pixel repeats at the end);
      float32 out. No anti-aliasing when shrinking (torch's default too), so training and
      inference must both use this function.
    * ``order=0``: nearest, pixel-centre: input index ``floor((o + 0.5) * in/out)`` (torch's
      ``"nearest-exact"``); keeps the dtype (labels).
    """
    a = np.asarray(array)
    size = tuple(int(s) for s in size)
    spatial = a.shape[1:]
    if len(size) != len(spatial):
        raise ValueError(f"size {size} does not match the {len(spatial)} spatial axes of {a.shape}")
    if tuple(spatial) == size:
        return a.copy()
    out = a
    for ax, (n_in, n_out) in enumerate(zip(spatial, size, strict=True), start=1):
        if n_in == n_out:
            continue
        if order == 0:
            idx = np.minimum(np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)
            out = np.take(out, idx, axis=ax)
            continue
        i0, i1, w1 = _axis_linear(n_in, n_out)
        shape = [1] * out.ndim
        shape[ax] = n_out
        w1 = w1.reshape(shape)
        # the rows/columns sampled, then float32 (the same numbers as casting everything first;
        # a large uint8 image shrunk to the network size is never converted whole)
        lo = np.take(out, i0, axis=ax).astype(np.float32, copy=False)
        hi = np.take(out, i1, axis=ax).astype(np.float32, copy=False)
        hi -= lo
        hi *= w1
        lo += hi
        out = lo
    return np.ascontiguousarray(out if order == 0 else out.astype(np.float32, copy=False))


def resize_labels(labels: np.ndarray, size: tuple[int, ...] | list[int]) -> np.ndarray:
    """Nearest-neighbour resize of an integer label array without a channel axis."""
    return resize(np.asarray(labels)[np.newaxis], size, order=0)[0]


def pad_to_multiple(array: np.ndarray, multiple: int, value: float = 0.0) -> tuple[np.ndarray, tuple]:
    """Pad the spatial axes of a channel-first array at the end up to a multiple of ``multiple``.

    Returns ``(padded, pads)``; :func:`unpad` with ``pads`` gives back the original extent.
    Padding is at the high end of each axis so index 0 stays at index 0 (no geometry shift).
    """
    a = np.asarray(array)
    if not multiple or multiple <= 1:
        return a, tuple((0, 0) for _ in a.shape[1:])
    pads = tuple((0, (-s) % int(multiple)) for s in a.shape[1:])
    if not any(p[1] for p in pads):
        return a, pads
    return np.pad(a, ((0, 0),) + pads, mode="constant", constant_values=value), pads


def unpad(array: np.ndarray, pads: tuple) -> np.ndarray:
    """Undo :func:`pad_to_multiple` on an array whose last len(pads) axes are spatial."""
    a = np.asarray(array)
    n = len(pads)
    sl = [slice(None)] * (a.ndim - n) + [slice(lo, a.shape[a.ndim - n + i] - hi) for i, (lo, hi) in enumerate(pads)]
    return a[tuple(sl)]


def prepare_image(
    image: np.ndarray, input_spec: Mapping[str, Any], rgb: bool | None = None
) -> np.ndarray:
    """channels -> normalize -> resize (when ``size`` is given): the whole per-image recipe.

    This is what a 2D model sees for one image/slice, and what a training loader should call on
    each training image (after its own augmentation of the raw image, if any).
    """
    box = field_box(image, input_spec.get("crop"))
    if box is not None:
        image = crop_box(image, box)
    norm = input_spec.get("normalization")
    size = input_spec.get("size")
    if size:
        x = _zscore_after_resize(image, input_spec, rgb, norm, size)
        if x is not None:
            return x
    x = build_channels(image, input_spec, rgb=rgb)
    x = normalize(x, norm)
    if size:
        x = resize(x, size, order=1)
    return x


def _zscore_after_resize(image, input_spec, rgb, norm, size) -> np.ndarray | None:
    """``resize(normalize(build_channels(image), zscore), size)`` for a colour photograph in the
    cheap order: z-scoring with whole-image statistics is affine per channel and linear resizing
    (weights summing to one) commutes with it, so the statistics come from the full image (the
    same computation as ``normalize``) and the arithmetic is done on the resized one: the same
    numbers to float32 rounding (~1e-7), without the full-size normalised copy. None when that
    does not apply: a scalar image (already cheap), another normalisation, zscore ``nonzero``,
    or a derived channel (luma)."""
    if isinstance(norm, str):
        norm = {"kind": norm}
    if not isinstance(norm, Mapping) or str(norm.get("kind", "")).lower() != "zscore" or norm.get("nonzero"):
        return None
    a = np.asarray(image)
    if rgb is None:
        rgb = a.ndim >= 3 and a.shape[-1] in (3, 4)
    mode = _channel_mode(input_spec)
    if not rgb or a.ndim != 3 or mode == "grey":
        return None
    # contiguous planes (one pass over the interleaved pixels): row gathers and sums run at memory speed
    planes = np.ascontiguousarray(np.moveaxis(a[..., :3], -1, 0) if mode == "rgb" else a[..., 1][np.newaxis])
    stats = [_zscore_stats(p) for p in planes]
    small = resize(planes, size, order=1).astype(np.float32, copy=False)  # (a copy even at the same size)
    for c, (mean, inv_std) in enumerate(stats):
        np.subtract(small[c], mean, out=small[c])
        small[c] *= inv_std
    return small


def _zscore_stats(plane: np.ndarray) -> tuple[np.float32, np.float32]:
    """``normalize``'s zscore constants for one channel: (float32 mean, float32 1 / population
    std), a std below 1e-8 taken as 1. 8-bit planes: from exact integer sums of the values and
    their squares (normalize's float32 two-pass result to ~1e-7); others as normalize does."""
    if plane.dtype == np.uint8 and plane.size:
        n = plane.size
        mean64 = int(plane.sum(dtype=np.uint64)) / n
        var = max(0.0, int(np.square(plane, dtype=np.uint32).sum(dtype=np.uint64)) / n - mean64 * mean64)
        mean = np.float32(mean64)
    else:
        ch = plane.astype(np.float32)
        mean = np.float32(ch.mean(dtype=np.float64))
        np.subtract(ch, mean, out=ch)
        np.square(ch, out=ch)
        var = float(ch.sum(dtype=np.float64)) / max(1, ch.size)
    std = float(np.sqrt(var))
    return mean, np.float32(1.0 / (std if std >= 1e-8 else 1.0))


def field_box(image: np.ndarray, crop: Mapping[str, Any] | None) -> tuple[int, int, int, int] | None:
    """``(r0, r1, c0, c1)``: the square (half-open, may reach past the image edges) centred on the
    bounding box of the pixels whose brightest channel reaches ``level`` x the image maximum;
    None when ``crop`` is not a field-of-view crop or nothing is lit.

    A square keeps the round field round; the part outside the image is padded with zeros by
    :func:`crop_box`, like the camera's own black surround.
    """
    if not crop or str(crop.get("kind", "")).lower() != "field_of_view":
        return None
    a = np.asarray(image)
    if a.ndim == 3:  # the brightest channel (np.maximum of the planes: a.max(axis=-1) is ~10x slower)
        bright = a[..., 0].copy()
        for c in range(1, a.shape[-1]):
            np.maximum(bright, a[..., c], out=bright)
    else:
        bright = a
    top = float(bright.max()) if bright.size else 0.0
    if top <= 0:
        return None
    lit = bright >= float(crop.get("level", 0.1)) * top
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    side = max(r1 - r0, c1 - c0)
    r0 -= (side - (r1 - r0)) // 2
    c0 -= (side - (c1 - c0)) // 2
    return r0, r0 + side, c0, c0 + side


def crop_box(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``image[r0:r1, c0:c1]`` (channels last kept), zero outside the image."""
    a = np.asarray(image)
    r0, r1, c0, c1 = box
    out = np.zeros((r1 - r0, c1 - c0) + a.shape[2:], a.dtype)
    sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, a.shape[0]), max(c0, 0), min(c1, a.shape[1])
    out[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0] = a[sr0:sr1, sc0:sc1]
    return out


def place_in_box(map2d: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A map computed on a :func:`crop_box` crop (at any resolution) put back on the full image
    of ``shape`` (H, W): resized to the box, the part inside the image kept, zero elsewhere."""
    r0, r1, c0, c1 = box
    inside = resize(np.asarray(map2d, np.float32)[None], (r1 - r0, c1 - c0), order=1)[0]
    out = np.zeros(shape, np.float32)
    sr0, sr1, sc0, sc1 = max(r0, 0), min(r1, shape[0]), max(c0, 0), min(c1, shape[1])
    out[sr0:sr1, sc0:sc1] = inside[sr0 - r0 : sr1 - r0, sc0 - c0 : sc1 - c0]
    return out
