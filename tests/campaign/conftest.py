import sys
from pathlib import Path

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
