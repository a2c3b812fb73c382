"""A deterministic stand-in for the interactive network: the bright connected region (image
above its mean) under the positive prompts, or overlapping the previous mask; used to test the
session logic (undo steps, propagation, stop) without a trained model."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medview.interactive.model import Prompts, Segmenter


class BrightRegionSegmenter(Segmenter):
    def __init__(self) -> None:
        super().__init__(net=None, version="9.9.9", model_id="fake-interactive")
        self.calls = 0

    def predict(self, image_norm: np.ndarray, prompts: Prompts, prev_mask: np.ndarray | None = None,
                tta: bool | None = None) -> np.ndarray:
        self.calls += 1
        bright = image_norm[0] > 0.5
        lab, _ = ndimage.label(bright)
        keep = set()
        for k in prompts.clicks:
            v = lab[int(round(k.row)), int(round(k.col))]
            if k.positive and v:
                keep.add(int(v))
        if prev_mask is not None and prev_mask.any():
            keep.update(int(v) for v in np.unique(lab[prev_mask]) if v)
        out = np.isin(lab, sorted(keep)) if keep else np.zeros(bright.shape, bool)
        if prompts.box is not None:
            r0, c0, r1, c1 = (int(round(v)) for v in prompts.box)
            out = np.zeros_like(out)
            out[r0:r1 + 1, c0:c1 + 1] = bright[r0:r1 + 1, c0:c1 + 1]
        for k in prompts.clicks:
            if not k.positive:
                v = lab[int(round(k.row)), int(round(k.col))]
                if v:
                    out &= lab != v
        return out


def ball_volume(shape=(20, 48, 48), centre=(10, 24, 24), radius=7) -> tuple[np.ndarray, np.ndarray]:
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    ball = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius * radius
    return (ball * 100 + 10).astype(np.float32), ball
