"""`medview self-test` (frozen app: `medview --self-test`): prove that an installation works.

Headless (Qt's offscreen platform unless QT_QPA_PLATFORM is set), it

1. reports the build, torch and device, with a clear "running on CPU" line when CUDA cannot be
   used (CPU-only torch build, NVIDIA driver missing, driver too old);
2. shows the main window offscreen and times it (and the sample study appearing in it);
3. opens the bundled sample study with medview.io;
4. round-trips a slice through the DICOM codecs (RLE, JPEG 2000, JPEG-LS), which a frozen app
   loses first when a plugin is not bundled;
5. runs every bundled model (medview.inference.package.discover_packages ->
   medview.inference.pipeline.run_model): on a sample series it fits, else (2D models for other
   modalities) on a small synthetic image of the model's modality; a 3D model needing a series
   the sample lacks is reported as SKIP with the reason, never run on faked data;
6. exports a label map (the 3D MR model's segmentation of the sample, else a threshold mask) as
   NIfTI and DICOM SEG through medview.annotation into a temporary folder, reads both back and
   checks labels and geometry against the source series;

then prints a table with timings and returns 0 only when no check failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from medview.selftest.environment import (
    build_info,
    check_environment,
    check_self_contained,
    headless_qt,
    loaded_libraries,
)
from medview.selftest.exports import check_nifti, check_seg
from medview.selftest.models import check_models, check_prediction, choose_input
from medview.selftest.report import FAIL, PASS, SKIP, Check, Report, step
from medview.selftest.sample import check_codecs, check_sample
from medview.selftest.window import check_window, check_window_sample, close_window

__all__ = ["FAIL", "PASS", "SKIP", "Check", "Report", "build_info", "check_prediction", "choose_input",
           "headless_qt", "loaded_libraries", "register", "run_self_test"]


def run_self_test(
    *,
    models_dir: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    gui: bool = True,
    require_models: bool = True,
    stream=None,
) -> Report:
    """Run every check; ``stream`` (default stdout) gets progress lines. See the module docstring.

    ``models_dir``: test the packages in this folder instead of the bundled models/.
    ``out_dir``: keep the exports (and a screenshot) there instead of a temporary folder.
    ``require_models``: no model package found is a failure (an installer without its models).
    """
    from medview import app_logging, config

    stream = stream or sys.stdout

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    report = Report()
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="medview-selftest-")
        out = Path(tmp.name)
    else:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
    report.out_dir = out
    logger = app_logging.log.getChild("selftest")
    try:
        state: dict[str, Any] = {}
        if gui:  # first, so that its time from process start is what a user would see
            step(report, "main window shown", lambda: check_window(out, state), say)
            if "window_error" not in state:
                step(report, "sample shown in main window", lambda: check_window_sample(out, state), say)
        step(report, "environment", lambda: check_environment(report, device, state), say)
        step(report, "open sample study", lambda: check_sample(config.sample_study_dir(), state), say)
        step(report, "DICOM codecs (RLE, J2K, JPEG-LS)", lambda: check_codecs(state), say)
        check_models(report, models_dir, device, require_models, state, say)
        step(report, "export + re-read NIfTI", lambda: check_nifti(out, state), say)
        step(report, "export + re-read DICOM SEG", lambda: check_seg(out, state), say)
        if getattr(sys, "frozen", False) and Path("/proc/self/maps").is_file():
            step(report, "bundle self-contained", check_self_contained, say)
    finally:
        if "app" in state:
            close_window(state)
        if tmp is not None:
            try:
                tmp.cleanup()
            except OSError:
                pass
    logger.info("self-test %s\n%s", "passed" if report.ok else "FAILED", report.table())
    return report


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    p = subparsers.add_parser(
        "self-test", help="headless check of this installation (sample study, models, export, GUI)",
        description="Headless check of this installation; exits 0 only when every check passed. "
                    "The frozen app also accepts `medview --self-test`.")
    p.add_argument("--models", default=None, metavar="DIR",
                   help="test the model packages in DIR instead of the bundled ones")
    p.add_argument("--out", default=None, metavar="DIR", help="keep the exports and a screenshot in DIR")
    p.add_argument("--no-gui", action="store_true", help="skip the main-window checks")
    p.add_argument("--allow-no-models", action="store_true", help="no model package is a SKIP, not a failure")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    p.add_argument("--device", dest="selftest_device", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_command)


def _command(args) -> int:
    from medview import app_logging

    headless_qt()
    app_logging.setup_logging()
    from medview import __version__

    print(f"MedView {__version__} self-test", flush=True)
    report = run_self_test(
        models_dir=args.models, out_dir=args.out,
        device=getattr(args, "selftest_device", None) or getattr(args, "device", None),
        gui=not args.no_gui, require_models=not args.allow_no_models)
    print()
    for n in report.notes:
        print(n)
    print()
    print(report.table())
    if args.out:
        print(f"exports kept in {report.out_dir}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    print("SELF-TEST PASSED" if report.ok else "SELF-TEST FAILED", flush=True)
    return 0 if report.ok else 1
