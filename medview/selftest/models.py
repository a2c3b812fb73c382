"""Self-test of the bundled models: each run through the inference engine on a sample series it
fits, else a 2D model on a small synthetic image of its modality; outputs checked for shape and range."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from medview.selftest.report import FAIL, PASS, SKIP, Report, step


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


def describe_prediction(pkg, pred) -> str:
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


def check_models(report: Report, models_dir, device, require_models: bool, state: dict, say) -> None:
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
    # click-driven models last: the 3D one is checked against a segmentation model's labels
    for pkg in sorted(usable, key=lambda p: p.task == "interactive-segmentation"):
        step(report, f"model {pkg.id} {pkg.version}", lambda pkg=pkg: run_one(pkg, vols, device, state), say)


def run_interactive(pkg) -> tuple[str, str]:
    """A click-driven model: one positive click on the synthetic image's large bright blob."""
    from medview.interactive import guidance as g
    from medview.interactive.model import Prompts, Segmenter

    vol = _synthetic_2d(pkg)
    img = vol.array[0]
    h, w = img.shape[:2]
    row, col = 0.4 * h, 0.45 * w  # the centre of the larger blob
    t0 = time.perf_counter()
    seg = Segmenter.from_package(pkg)
    mask = seg.predict(g.normalise_image(img), Prompts([g.Click(row, col, True)]))
    dt = time.perf_counter() - t0
    frac = float(mask.mean())
    if not mask[int(row), int(col)]:
        return FAIL, f"one click on a synthetic blob: the mask ({int(mask.sum())} px) misses the clicked pixel"
    if frac > 0.9:
        return FAIL, f"one click on a synthetic blob: the mask covers {frac:.0%} of the image"
    return PASS, (f"one click on a synthetic {w}x{h} blob: {int(mask.sum())} px ({frac:.0%} of the image, "
                  f"{dt:.2f} s on cpu)")


MIN_3D_AGREEMENT = 0.8  # one click vs the segmentation model's labels (0.93 when built and oriented right)


def run_interactive_3d(pkg, state: dict) -> tuple[str, str] | None:
    """A 3D click-driven model on the sample series a 3D segmentation model already labelled
    (the hippocampus crop): one click at the labels' inscribed centre, the mask compared with
    those labels; None when no such series ran (then the 2D check runs)."""
    from medview.interactive import guidance as g
    from medview.interactive import simulate
    from medview.interactive.model3d import Segmenter3D

    seg_pkg, vol, pred = state.get("seg_prediction") or (None, None, None)
    if vol is None or not pkg.fits(vol)[0]:
        return None
    ref = np.asarray(pred.labels.array) > 0
    if not ref.any():
        return None
    click = g.Point(tuple(float(v) for v in simulate.first_click(ref, None)[0]), True)
    t0 = time.perf_counter()
    seg = Segmenter3D.from_package(pkg)
    mask = seg.predict(np.asarray(vol.array, np.float32), [click], None,
                       spacing=tuple(float(v) for v in vol.spacing[::-1]), direction=vol.direction)
    dt = time.perf_counter() - t0
    dice = simulate.dice(mask, ref)
    what = (f"one click on sample {vol.meta.get('SeriesDescription') or 'series'}: Dice {dice:.2f} against "
            f"{seg_pkg.id}'s labels ({int(ref.sum())} voxels), {dt:.2f} s on cpu")
    return (PASS if dice >= MIN_3D_AGREEMENT else FAIL), what + ("" if dice >= MIN_3D_AGREEMENT else
                                                             f" (expected >= {MIN_3D_AGREEMENT})")


def run_one(pkg, vols: list, device, state: dict) -> tuple[str, str]:
    from medview.inference.pipeline import run_model

    if pkg.task == "interactive-segmentation":
        res = run_interactive_3d(pkg, state) if pkg.dims == 3 else None
        return res or run_interactive(pkg)
    vol, what = choose_input(pkg, vols)
    if vol is None:
        return SKIP, what
    cam = "gradcam" if pkg.task == "classification" and pkg.gradcam_layer else None
    t0 = time.perf_counter()
    pred = run_model(pkg, vol, device=device, cam=cam, unverified_ok=True)  # a sample chosen for it
    dt = time.perf_counter() - t0
    errs = check_prediction(pkg, vol, pred)
    if errs:
        return FAIL, f"on {what}: " + "; ".join(errs)
    if (pkg.task == "segmentation" and pkg.dims == 3 and pred.labels is not None
            and vol.meta.get("source_files") and "seg_prediction" not in state):
        state["seg_prediction"] = (pkg, vol, pred)
    msgs = f" [{'; '.join(pred.messages)}]" if pred.messages else ""
    return PASS, f"{pkg.task} on {what}: {describe_prediction(pkg, pred)} ({dt:.2f} s on {pred.device}){msgs}"
