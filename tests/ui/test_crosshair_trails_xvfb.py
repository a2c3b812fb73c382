"""The crosshair leaves no trail in coronal/sagittal after a navigate drag in the axial view,
checked on a real X screen (Xvfb), where stale pixels stay visible. With Qt's default partial
repaints (``xvfb_crosshair_probe.py SERIES minimal``) the same drags leave 4 line columns."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.conftest import T1_SERIES

pytestmark = pytest.mark.gui


def test_no_crosshair_trails_on_a_real_screen(shared_data):
    series = shared_data.joinpath(*T1_SERIES)
    if not series.is_dir():
        pytest.skip(f"{series} not found")
    if not (shutil.which("xvfb-run") and shutil.which("import")):
        pytest.skip("xvfb-run or ImageMagick import not installed")
    probe = Path(__file__).with_name("xvfb_crosshair_probe.py")
    out = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, str(probe),
                          str(series)], capture_output=True, text=True, timeout=240, check=False,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "xcb"})
    found = dict(re.findall(r"(coronal|sagittal) columns=(\d+)", out.stdout))
    assert set(found) == {"coronal", "sagittal"}, out.stdout + out.stderr[-2000:]
    assert found == {"coronal": "1", "sagittal": "1"}, out.stdout  # one crosshair line, no trail
