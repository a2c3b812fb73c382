import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "inference"))

import toys  # noqa: E402


@pytest.fixture(scope="session")
def seg2d_package(tmp_path_factory):
    """2D UNet trained here (seconds) on 48x48 "bright box" slices."""
    folder = tmp_path_factory.mktemp("models") / "toy-seg-2d"
    return toys.train_segmenter(folder, 2, {"size": [48, 48]}, steps=60)


@pytest.fixture(scope="session")
def cls_package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "toy-cls"
    return toys.train_classifier(folder, steps=20)


def write_box_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` grey PNGs with a bright box on noise (what the toy segmenter learned)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = rng.normal(0.0, 0.3, (48, 48))
        y, x = (int(v) for v in rng.integers(4, 30, 2))
        img[y:y + 14, x:x + 14] += 1.5
        p = folder / f"case{i:03d}.png"
        Image.fromarray(np.clip(img * 60 + 90, 0, 255).astype(np.uint8)).save(p)
        out.append(p)
    return out
