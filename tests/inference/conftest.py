import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import toys  # noqa: E402


@pytest.fixture(scope="session")
def seg3d_package(tmp_path_factory):
    """3D UNet trained here (seconds) on isotropic 1 mm boxes; manifest asks for RAS + 1 mm."""
    folder = tmp_path_factory.mktemp("models") / "toy-seg-3d"
    return toys.train_segmenter(folder, 3, {"orientation": "RAS", "spacing": [1.0, 1.0, 1.0]}, steps=40)


@pytest.fixture(scope="session")
def seg2d_package(tmp_path_factory):
    """2D UNet trained here on 48x48 slices; manifest resizes every slice to 48x48."""
    folder = tmp_path_factory.mktemp("models") / "toy-seg-2d"
    return toys.train_segmenter(folder, 2, {"size": [48, 48]}, steps=60)


@pytest.fixture(scope="session")
def cls_package(tmp_path_factory):
    """resnet10 (quarter width) trained here: "spot" (bright disc somewhere) vs "plain"."""
    folder = tmp_path_factory.mktemp("models") / "toy-cls"
    return toys.train_classifier(folder, steps=20)
