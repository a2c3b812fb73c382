"""Turn a raw image into the network input exactly as the manifest's ``input`` block says.

Training builds its tensors only through ``medview.inference.preprocess`` (the functions the
inference pipeline calls), so what a network saw in training is what the app feeds it from
model.json alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medview.inference import preprocess as pp


def prepare(image: np.ndarray, input_spec: dict[str, Any], rgb: bool | None = None) -> np.ndarray:
    """Raw image ``(H, W)`` / ``(H, W, 3)`` / volume ``(z, y, x)`` -> channel-first float32
    (channels -> normalisation -> resize), before any padding."""
    return pp.prepare_image(image, input_spec, rgb=rgb).astype(np.float32, copy=False)


def resize_label(label: np.ndarray, size: list[int] | tuple[int, ...]) -> np.ndarray:
    """Integer label map resized with nearest neighbour (the pipeline's label resize)."""
    return pp.resize_labels(label, size).astype(np.int64)


def resize_prob(prob: np.ndarray, size: list[int] | tuple[int, ...]) -> np.ndarray:
    """Channel-first probabilities resized linearly back to an image's size."""
    return pp.resize(prob, size, order=1)
