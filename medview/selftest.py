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
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    name: str
    status: str
    seconds: float
    detail: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status != FAIL for c in self.checks)

    def add(self, name: str, status: str, seconds: float, detail: str = "") -> Check:
        c = Check(name, status, float(seconds), detail)
        self.checks.append(c)
        return c

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "status": c.status, "seconds": round(c.seconds, 3), "detail": c.detail}
                       for c in self.checks],
            "notes": list(self.notes),
        }

    def table(self) -> str:
        w = max([len(c.name) for c in self.checks] + [5])
        lines = [f"{'check':<{w}}  result  time (s)  detail", f"{'-' * w}  ------  --------  {'-' * 40}"]
        for c in self.checks:
            lines.append(f"{c.name:<{w}}  {c.status:<6}  {c.seconds:8.2f}  {c.detail}")
        n_fail = sum(c.status == FAIL for c in self.checks)
        n_skip = sum(c.status == SKIP for c in self.checks)
        n_pass = sum(c.status == PASS for c in self.checks)
        total = sum(c.seconds for c in self.checks)
        lines.append(f"{'-' * w}  ------  --------")
        lines.append(f"{'total':<{w}}  {'PASS' if self.ok else 'FAIL':<6}  {total:8.2f}  "
                     f"{n_pass} passed, {n_fail} failed, {n_skip} skipped")
        return "\n".join(lines)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < 300 else text[:297] + "..."


def _step(report: Report, name: str, fn: Callable[[], tuple[str, str] | str], say: Callable[[str], None]) -> Check:
    """Run one check; an exception is a FAIL whose detail names it (the traceback goes to the log)."""
    import logging

    say(f"... {name}")
    t0 = time.perf_counter()
    try:
        res = fn()
        status, detail = (PASS, res) if isinstance(res, str) else res
    except Exception as exc:  # noqa: BLE001 - a self-test reports every failure, it does not stop
        logging.getLogger("medview.selftest").error("%s failed\n%s", name, traceback.format_exc())
        status, detail = FAIL, _short(exc)
    c = report.add(name, status, time.perf_counter() - t0, detail)
    say(f"    {c.status} ({c.seconds:.2f} s) {c.detail}")
    return c


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------
def build_info() -> dict[str, Any]:
    """build_info.json written by packaging/medview.spec (frozen app), else the source version."""
    from medview import __version__

    root = getattr(sys, "_MEIPASS", None)
    if root:
        try:
            return json.loads((Path(root) / "build_info.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    return {"version": __version__, "revision": "source checkout"}


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere)."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(stat[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def headless_qt() -> str:
    """Make Qt headless unless the caller chose a platform; returns the platform name."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return os.environ["QT_QPA_PLATFORM"]


# ---------------------------------------------------------------------------------------------
# the self-test
# ---------------------------------------------------------------------------------------------
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
            _step(report, "main window shown", lambda: _check_window(out, state), say)
            if "window_error" not in state:
                _step(report, "sample shown in main window", lambda: _check_window_sample(out, state), say)
        _step(report, "environment", lambda: _check_environment(report, device, state), say)
        _step(report, "open sample study", lambda: _check_sample(config.sample_study_dir(), state), say)
        _step(report, "DICOM codecs (RLE, J2K, JPEG-LS)", lambda: _check_codecs(state), say)
        _check_models(report, models_dir, device, require_models, state, say)
        _step(report, "export + re-read NIfTI", lambda: _check_nifti(out, state), say)
        _step(report, "export + re-read DICOM SEG", lambda: _check_seg(out, state), say)
        if getattr(sys, "frozen", False) and Path("/proc/self/maps").is_file():
            _step(report, "bundle self-contained", _check_self_contained, say)
    finally:
        if "app" in state:
            _close_window(state)
        if tmp is not None:
            try:
                tmp.cleanup()
            except OSError:
                pass
    logger.info("self-test %s\n%s", "passed" if report.ok else "FAILED", report.table())
    return report


def _check_environment(report: Report, device: str | None, state: dict) -> str:
    import platform

    from medview import app_logging

    info = build_info()
    state["build"] = info
    import torch

    from medview.inference import device as devmod

    st = app_logging.log_gpu_status()
    dev = devmod.choose_device(device)
    state["device"] = dev
    line = (f"MedView {info.get('version')} ({info.get('revision', '?')}), Python {platform.python_version()}, "
            f"torch {torch.__version__}, device {devmod.describe(dev)}")
    report.notes.append(line)
    report.notes.append(st.message)
    problems = []
    if getattr(sys, "frozen", False):
        import medview

        bundle = Path(getattr(sys, "_MEIPASS", "")).resolve()
        report.notes.append(f"frozen app in {bundle}")
        if not Path(medview.__file__).resolve().is_relative_to(bundle):
            problems.append(f"medview was imported from {medview.__file__}, outside the app folder")
    lf = app_logging.log_file()
    report.notes.append(f"log file: {lf}")
    detail = f"{devmod.describe(dev)}; {st.message}"
    if lf.parent.is_dir() and not lf.is_file():
        problems.append(f"no log file at {lf}")
    return (FAIL, detail + "; " + "; ".join(problems)) if problems else (PASS, detail)


def _check_window(out: Path, state: dict) -> str:
    t0 = time.perf_counter()
    age0 = process_age_s()
    platform_name = headless_qt()
    from PySide6.QtGui import QIcon, QImageReader
    from PySide6.QtWidgets import QApplication

    from medview.config import resources_dir

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "medview"])
    app.setApplicationName("MedView")
    app.setOrganizationName("MedView")
    state["app"] = app
    icon_path = resources_dir() / "icons" / "medview.svg"
    icon = QIcon(str(icon_path))
    if not icon.isNull():
        app.setWindowIcon(icon)
    from medview.ui.main_window import MainWindow

    try:
        win = MainWindow()
        win.quiet_errors = True  # no message boxes in a headless run
        try:
            from medview.ui import app as ui_app

            install = getattr(ui_app, "_install_panels", None)
            if install is not None:
                install(win)
        except ImportError:
            pass
        win.show()
        deadline = time.monotonic() + 20
        while not win.isVisible() and time.monotonic() < deadline:
            app.processEvents()
        app.processEvents()
    except Exception:
        state["window_error"] = True
        raise
    shown_s = time.perf_counter() - t0
    state["window"] = win
    state["window_shown_s"] = shown_s
    if not win.isVisible():
        state["window_error"] = True
        return FAIL, "the main window did not become visible"
    problems = []
    if icon.isNull() or not icon.availableSizes() and icon.pixmap(64, 64).isNull():
        problems.append(f"application icon {icon_path} did not load")
    formats = {bytes(f).decode() for f in QImageReader.supportedImageFormats()}
    missing = {"png", "jpg", "svg"} - formats
    if missing:
        problems.append(f"Qt image format plugins missing: {', '.join(sorted(missing))}")
    actual_platform = app.platformName()
    age = f", {age0 + shown_s:.2f} s after process start" if age0 is not None else ""
    detail = f"{shown_s:.2f} s to a shown window{age} (Qt platform {actual_platform})"
    if platform_name == "offscreen" and actual_platform != "offscreen":
        problems.append(f"asked for offscreen, got {actual_platform}")
    if problems:
        return FAIL, detail + "; " + "; ".join(problems)
    return PASS, detail


def _check_window_sample(out: Path, state: dict) -> tuple[str, str]:
    from medview.config import sample_study_dir

    app, win = state["app"], state["window"]
    t0 = time.perf_counter()
    win.open_path(str(sample_study_dir()))
    deadline = time.monotonic() + 120
    while win.state.volume is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)
    if hasattr(win, "wait_idle"):
        win.wait_idle(30)
    app.processEvents()
    dt = time.perf_counter() - t0
    vol = win.state.volume
    if vol is None:
        msg = win.statusBar().currentMessage()
        return FAIL, f"no image after {dt:.1f} s (status: {msg or 'none'})"
    shot = out / "main_window.png"
    saved = win.grab().save(str(shot))
    z, y, x = vol.shape
    return PASS, (f"{dt:.2f} s from open to image: {x}x{y}x{z} {vol.modality}"
                  + (f"; screenshot {shot.name}" if saved else "; screenshot not saved"))


def _close_window(state: dict) -> None:
    win, app = state.get("window"), state.get("app")
    try:
        if win is not None:
            if hasattr(win, "_cancel_jobs"):
                win._cancel_jobs()
            win.close()
            win.deleteLater()
        if app is not None:
            app.processEvents()
    except Exception:  # noqa: BLE001 - closing must not hide the results
        pass


def _check_sample(folder: Path, state: dict) -> tuple[str, str]:
    from medview.io import load_series, scan

    if not folder.is_dir():
        return FAIL, f"sample study folder {folder} is missing"
    index = scan(str(folder))
    if not index.series:
        return FAIL, f"no series found in {folder} ({len(index.problems)} problem file(s))"
    vols = []
    parts = []
    for s in index.series:
        v = load_series(s)
        if v.array.size == 0 or not np.isfinite(np.asarray(v.array, dtype=np.float64).max()):
            return FAIL, f"series {s.description!r} loaded empty or not finite"
        vols.append(v)
        z, y, x = v.shape
        parts.append(f"{s.description or s.uid[-8:]} {v.modality} {x}x{y}x{z}")
    state["sample_volumes"] = vols
    problems = f"; {len(index.problems)} unreadable file(s)" if index.problems else ""
    return (FAIL if index.problems else PASS), f"{len(vols)} series: " + ", ".join(parts) + problems


def _check_codecs(state: dict) -> tuple[str, str]:
    import pydicom
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

    vols = state.get("sample_volumes") or []
    files = [f for v in vols for f in (v.meta.get("source_files") or [])]
    if not files:
        return FAIL, "no sample DICOM file to encode"
    ds0 = pydicom.dcmread(str(files[0]))
    ref = ds0.pixel_array.copy()
    ok = []
    for uid in (RLELossless, JPEG2000Lossless, JPEGLSLossless):
        ds = pydicom.dcmread(str(files[0]))
        ds.compress(uid)
        ds2 = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_to_bytes(ds)))
        if not np.array_equal(ds2.pixel_array, ref):
            return FAIL, f"{uid.name}: decoded pixels differ from the original"
        ok.append(uid.name.split(" Image")[0].replace(" Lossless", "").replace(" Compression", ""))
    return PASS, "encode + decode lossless: " + ", ".join(ok)


def _to_bytes(ds) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
def _synthetic_2d(pkg) -> Any:
    """A small deterministic 2D image of the model's modality (bright blobs on a textured field)."""
    from medview.io.volume import Volume

    size = pkg.input.get("size") or [256, 256]
    h, w = int(size[-2]), int(size[-1])
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 60 + 20 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    for cy, cx, r in ((0.4, 0.45, 0.18), (0.65, 0.6, 0.1)):
        img += 120 * np.exp(-(((yy - cy * h) ** 2 + (xx - cx * w) ** 2) / (2 * (r * min(h, w)) ** 2)))
    img += rng.normal(0, 6, size=img.shape)
    grey = np.clip(img, 0, 255).astype(np.uint8)
    mods = [m for m in pkg.modalities if m != "*"]
    modality = "" if "" in mods or not mods else mods[0]
    if str(pkg.input.get("channels", "grey")).lower() in ("rgb", "green"):
        arr = np.stack([grey, (grey * 0.6).astype(np.uint8), (grey * 0.3).astype(np.uint8)], axis=-1)[None]
    else:
        arr = grey[None]
    return Volume(arr, (1.0, 1.0, 1.0), meta={"Modality": modality, "SeriesDescription": "synthetic"})


def choose_input(pkg, sample_volumes: list) -> tuple[Any | None, str]:
    """(volume, what it is) for running ``pkg``; (None, reason) when the sample lacks an input."""
    fitting = [v for v in sample_volumes if pkg.fits(v)[0]]
    if fitting:
        v = min(fitting, key=lambda v: int(np.prod(v.shape)))
        return v, f"sample {v.meta.get('SeriesDescription') or v.modality}"
    have = sorted({v.modality or "unknown" for v in sample_volumes}) or ["nothing"]
    wanted = ", ".join(m or "unknown" for m in pkg.modalities) or "any"
    if pkg.dims == 3:
        return None, f"needs a 3D series ({wanted}); the sample study has {', '.join(have)} only"
    vol = _synthetic_2d(pkg)
    z, y, x = vol.shape
    kind = "RGB" if vol.is_rgb else "grey"
    return vol, f"synthetic {x}x{y} {kind} image ({wanted} model; sample is {', '.join(have)})"


def check_prediction(pkg, vol, pred) -> list[str]:
    """What is wrong with ``pred`` for ``pkg`` run on ``vol`` (empty list = fine)."""
    errs = []
    if pkg.task == "classification":
        probs = pred.probabilities or {}
        if list(probs) != list(pkg.classes):
            errs.append(f"classes {list(probs)} != {pkg.classes}")
        p = np.array(list(probs.values()), dtype=np.float64)
        if not np.all(np.isfinite(p)) or np.any(p < -1e-6) or np.any(p > 1 + 1e-6):
            errs.append(f"probabilities out of range {p}")
        if pkg.output.get("activation", "softmax") == "softmax" and p.size and abs(p.sum() - 1) > 1e-3:
            errs.append(f"softmax probabilities sum to {p.sum():.4f}")
        if pred.heatmap is not None:
            h = pred.heatmap
            if not h.same_geometry(vol):
                errs.append("Grad-CAM map is not on the image grid")
            a = np.asarray(h.array, dtype=np.float64)
            if not np.all(np.isfinite(a)) or a.min() < -1e-3 or a.max() > 1 + 1e-3:
                errs.append(f"Grad-CAM map outside 0..1 ({a.min():.3g}..{a.max():.3g})")
    elif pkg.task == "segmentation":
        lab = pred.labels
        if lab is None:
            errs.append("no label map")
        else:
            if not lab.same_geometry(vol):
                errs.append("label map is not on the image grid")
            allowed = {0} | {int(d["value"]) for d in pkg.labels}
            present = set(np.unique(lab.array).astype(int).tolist())
            if present - allowed:
                errs.append(f"unexpected label values {sorted(present - allowed)}")
    elif pkg.task == "regression":
        vals = np.array(list((pred.values or {}).values()), dtype=np.float64)
        if vals.size == 0 or not np.all(np.isfinite(vals)):
            errs.append(f"regression values missing or not finite: {pred.values}")
    return errs


def _describe_prediction(pkg, pred) -> str:
    if pkg.task == "classification" and pred.probabilities:
        top = pred.top_class
        s = f"top {top} {pred.probabilities[top]:.2f}"
        if pred.heatmap is not None:
            s += f", {pred.heatmap_kind or 'Grad-CAM'} map"
        return s
    if pkg.task == "segmentation" and pred.labels is not None:
        parts = [f"{d.get('name')} {int(d.get('voxels', 0))} vox" for d in pred.label_info
                 if int(d.get("value", 0)) > 0]
        return ", ".join(parts) or "labels"
    if pred.values:
        return ", ".join(f"{k} {v:.3g}" for k, v in pred.values.items())
    return ""


def _check_models(report: Report, models_dir, device, require_models: bool, state: dict, say) -> None:
    from medview import config
    from medview.inference.package import discover_packages

    t0 = time.perf_counter()
    root = Path(models_dir) if models_dir else config.bundled_models_dir()
    pkgs = discover_packages([("bundled", root)])
    dt = time.perf_counter() - t0
    usable = [p for p in pkgs if p.ok]
    bad = [p for p in pkgs if not p.ok]
    if not pkgs:
        status = FAIL if require_models else SKIP
        report.add("model packages", status, dt, f"no model package in {root}")
        say(f"    {status} no model package in {root}")
        return
    detail = f"{len(usable)} usable in {root}" + (
        "; unusable: " + "; ".join(f"{p.path.name}: {p.reason}" for p in bad) if bad else "")
    report.add("model packages", FAIL if bad else PASS, dt, detail)
    say(f"    model packages: {detail}")
    vols = state.get("sample_volumes") or []
    for pkg in usable:
        _step(report, f"model {pkg.id} {pkg.version}", lambda pkg=pkg: _run_one(pkg, vols, device, state), say)


def _run_one(pkg, vols: list, device, state: dict) -> tuple[str, str]:
    from medview.inference.pipeline import run_model

    vol, what = choose_input(pkg, vols)
    if vol is None:
        return SKIP, what
    cam = "gradcam" if pkg.task == "classification" and pkg.gradcam_layer else None
    t0 = time.perf_counter()
    pred = run_model(pkg, vol, device=device, cam=cam)
    dt = time.perf_counter() - t0
    errs = check_prediction(pkg, vol, pred)
    if errs:
        return FAIL, f"on {what}: " + "; ".join(errs)
    if (pkg.task == "segmentation" and pkg.dims == 3 and pred.labels is not None
            and vol.meta.get("source_files") and "seg_prediction" not in state):
        state["seg_prediction"] = (pkg, vol, pred)
    msgs = f" [{'; '.join(pred.messages)}]" if pred.messages else ""
    return PASS, f"{pkg.task} on {what}: {_describe_prediction(pkg, pred)} ({dt:.2f} s on {pred.device}){msgs}"


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
def _label_map(state: dict):
    """The label map to export: the 3D model's segmentation of a sample series, else a threshold
    mask of the smallest sample DICOM series (said so in the detail)."""
    if "label_map" in state:
        return state["label_map"]
    from medview.annotation.correction import edit_prediction
    from medview.annotation.labelmap import Label, LabelMap

    if "seg_prediction" in state:
        pkg, vol, pred = state["seg_prediction"]
        lm, _orig = edit_prediction(pred, vol)
        if lm.present_values():
            state["label_map"] = (lm, vol, f"{pkg.id} segmentation of {vol.meta.get('SeriesDescription', 'sample')}")
            return state["label_map"]
    vols = [v for v in state.get("sample_volumes") or [] if v.meta.get("source_files")]
    if not vols:
        raise RuntimeError("no sample DICOM series to draw a label map on")
    vol = min(vols, key=lambda v: int(np.prod(v.shape)))
    a = np.asarray(vol.array, dtype=np.float32)
    mask = (a > np.percentile(a, 90)).astype(np.uint8)
    mask[a > np.percentile(a, 98)] = 2
    lm = LabelMap.from_array(vol, mask, [Label(1, "bright", (255, 200, 0)), Label(2, "brightest", (0, 180, 255))])
    why = "no 3D segmentation result on the sample" if "seg_prediction" not in state else "the model found nothing"
    state["label_map"] = (lm, vol, f"threshold mask of {vol.meta.get('SeriesDescription', 'sample')} ({why})")
    return state["label_map"]


def _size(path: Path) -> str:
    n = path.stat().st_size
    return f"{n} bytes" if n < 10240 else f"{n // 1024} KiB"


def _same_geometry_detail(a, b, tol: float = 1e-3) -> list[str]:
    errs = []
    if tuple(a.shape) != tuple(b.shape):
        errs.append(f"shape {a.shape} != {b.shape}")
    for name in ("spacing", "origin"):
        x, y = np.asarray(getattr(a, name), float), np.asarray(getattr(b, name), float)
        if x.shape != y.shape or not np.allclose(x, y, atol=tol):
            errs.append(f"{name} {np.round(x, 4).tolist()} != {np.round(y, 4).tolist()}")
    if not np.allclose(np.asarray(a.direction, float), np.asarray(b.direction, float), atol=1e-4):
        errs.append("direction differs")
    return errs


def _check_nifti(out: Path, state: dict) -> tuple[str, str]:
    import nibabel as nib
    import SimpleITK as sitk

    from medview.annotation.nifti import load_nifti, save_nifti
    from medview.io.volume import Volume

    lm, vol, what = _label_map(state)
    path = save_nifti(lm, out / "labels.nii.gz")
    errs = []
    # 1. independent reader (ITK): voxels and LPS geometry equal the source series
    back = Volume.from_sitk(sitk.ReadImage(str(path)))
    errs += [f"ITK: {e}" for e in _same_geometry_detail(back, vol)]
    if not np.array_equal(back.array, lm.array):
        errs.append("ITK: voxels differ")
    # 2. nibabel: the RAS affine is the source's LPS affine flipped in x and y
    img = nib.load(str(path))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ vol.affine
    if not np.allclose(img.affine, ras, atol=1e-3):
        errs.append("nibabel: affine differs from the source geometry")
    if not np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), lm.array):
        errs.append("nibabel: voxels differ")
    # 3. MedView's own reader onto the source grid, with the label table
    lm2 = load_nifti(path, reference=vol)
    if lm2.volume.warnings:
        errs.append("medview: " + "; ".join(lm2.volume.warnings))
    if not np.array_equal(lm2.array, lm.array):
        errs.append("medview: voxels differ")
    if {v: lab.name for v, lab in lm2.labels.items()} != {v: lab.name for v, lab in lm.labels.items()}:
        errs.append("medview: label names differ")
    if errs:
        return FAIL, f"{path.name}: " + "; ".join(errs)
    n = int(np.count_nonzero(lm.array))
    return PASS, (f"{path.name} ({_size(path)}, {n} labelled voxels) from {what}: "
                  "ITK, nibabel, medview agree")


def _check_seg(out: Path, state: dict) -> tuple[str, str]:
    import pydicom

    from medview.annotation.dicom_seg import export_dicom_seg, import_dicom_seg

    lm, vol, what = _label_map(state)
    path = export_dicom_seg(lm, out / "labels_seg.dcm")
    errs = []
    ds = pydicom.dcmread(str(path))
    src = pydicom.dcmread(str(vol.meta["source_files"][0]), stop_before_pixels=True)
    if ds.Modality != "SEG":
        errs.append(f"Modality {ds.Modality}")
    ref_series = {str(r.SeriesInstanceUID) for r in ds.get("ReferencedSeriesSequence", [])}
    if str(src.SeriesInstanceUID) not in ref_series:
        errs.append("does not reference the source series")
    if str(ds.FrameOfReferenceUID) != str(src.FrameOfReferenceUID):
        errs.append("FrameOfReferenceUID differs from the source")
    shared = ds.SharedFunctionalGroupsSequence[0]
    pm = shared.PixelMeasuresSequence[0]
    if not np.allclose([float(x) for x in pm.PixelSpacing], [float(x) for x in src.PixelSpacing], atol=1e-4):
        errs.append(f"PixelSpacing {list(pm.PixelSpacing)} != {list(src.PixelSpacing)}")
    iop = shared.get("PlaneOrientationSequence")
    if iop and not np.allclose([float(x) for x in iop[0].ImageOrientationPatient],
                               [float(x) for x in src.ImageOrientationPatient], atol=1e-4):
        errs.append("ImageOrientationPatient differs from the source")
    lm2 = import_dicom_seg(path, vol)
    errs += [f"re-read: {e}" for e in _same_geometry_detail(lm2.volume, vol)]
    if not np.array_equal(lm2.array, lm.array):
        errs.append(f"re-read voxels differ ({int(np.count_nonzero(lm2.array != lm.array))} voxels)")
    if errs:
        return FAIL, f"{path.name}: " + "; ".join(errs)
    return PASS, (f"{path.name} ({_size(path)}, {int(ds.NumberOfFrames)} frames, "
                  f"{len(ds.SegmentSequence)} segments) from {what}: references the source, voxels and geometry equal")


def loaded_libraries() -> list[str]:
    """Shared libraries mapped into this process (Linux /proc/self/maps)."""
    libs = set()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and ".so" in parts[5] and parts[5].startswith("/"):
            libs.add(parts[5].strip())
    return sorted(libs)


def _check_self_contained() -> tuple[str, str]:
    """Frozen app: every Python package library loaded came from the app folder (none from a
    build venv or site-packages that happens to exist on this machine)."""
    bundle = Path(getattr(sys, "_MEIPASS", "")).resolve()
    libs = loaded_libraries()
    inside = [p for p in libs if Path(p).resolve().is_relative_to(bundle)]
    outside = [p for p in libs if p not in inside]
    marks = ("site-packages", "dist-packages", "/.venv/", "/lib-dynload/", "libpython")
    foreign = [p for p in outside if any(m in p for m in marks)]
    if foreign:
        return FAIL, f"{len(foreign)} libraries loaded from outside the app: " + ", ".join(foreign[:3])
    return PASS, f"{len(inside)} libraries from the app folder, {len(outside)} from the system"


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
