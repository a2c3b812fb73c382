"""Start-up path: plain `medview` skips the sub-command modules, the side panels and the sample
study come after the first paint (and still come), and the GC paused for start-up is resumed."""

import os
import subprocess
import sys

from medview.cli import _plain_gui_args


def test_plain_gui_arguments_are_recognised_without_the_full_parser(tmp_path):
    f = tmp_path / "ct.dcm"
    f.write_bytes(b"")
    assert _plain_gui_args([]) == (None, None)
    assert _plain_gui_args(["--device", "cpu"]) == ("cpu", None)
    assert _plain_gui_args(["--device=cuda:1", str(f)]) == ("cuda:1", str(f))
    assert _plain_gui_args([str(tmp_path)]) == (None, str(tmp_path))


def test_anything_else_goes_to_the_full_parser(tmp_path):
    assert _plain_gui_args(["info", str(tmp_path)]) is None  # a sub-command
    assert _plain_gui_args(["models"]) is None  # could be a sub-command name
    assert _plain_gui_args(["--version"]) is None
    assert _plain_gui_args(["-h"]) is None
    assert _plain_gui_args(["--device"]) is None  # the parser reports the missing value
    assert _plain_gui_args([str(tmp_path / "missing.dcm")]) is None  # the parser/GUI reports it
    assert _plain_gui_args([str(tmp_path), str(tmp_path)]) is None


def test_version_still_answers_through_the_full_parser():
    out = subprocess.run([sys.executable, "-m", "medview", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("MedView ")


PROBE = r"""
import gc, os, sys
os.environ["MEDVIEW_FIRST_PAINT_EXIT"] = "ready"
from medview.ui import app as ui_app
seen = {}
orig_after, orig_install = ui_app._after_first_paint, ui_app._install_panels
def after(win, path):
    seen["gc_at_paint"] = gc.isenabled()
    seen["panels_at_paint"] = hasattr(win, "models_panel") or hasattr(win, "annotation_panel")
    seen["commands_at_paint"] = "medview.training.commands" in sys.modules
    orig_after(win, path)
    seen["gc_after"] = gc.isenabled()
    seen["panels_after"] = hasattr(win, "models_panel") and hasattr(win, "annotation_panel")
ui_app._after_first_paint = after
from medview.cli import main
rc = main([])
print("seen", seen, flush=True)
sys.exit(rc)
"""


def test_panels_and_the_sample_study_follow_the_first_paint():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("MEDVIEW_STARTUP_GC", None)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    paint = [float(x.split()[1]) for x in lines if x.startswith("first_paint ")]
    ready = [float(x.split()[1]) for x in lines if x.startswith("ready ")]
    assert len(paint) == 1 and len(ready) == 1 and ready[0] > paint[0]  # the sample study did open
    seen = eval(next(x for x in lines if x.startswith("seen "))[5:])
    assert seen == {"gc_at_paint": False, "panels_at_paint": False, "commands_at_paint": False,
                    "gc_after": True, "panels_after": True}
