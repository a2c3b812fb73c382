"""Run a model package on a Volume: pre-process, forward, explain, map back. No Qt.

``run_model(package, volume, ...) -> Prediction`` follows medview/progress.py
(``progress(fraction, stage)``, ``cancelled()``). Steps:

1. device: CUDA -> MPS -> CPU unless overridden (``device=`` / settings); float16 autocast on
   CUDA for the forward pass (Grad-CAM runs in float32).
2. pre-processing from the manifest: 2D models run on the stored slices in batches
   (channels -> normalise -> resize, :mod:`medview.inference.preprocess`); 3D models are
   reoriented, resampled, normalised and resized as a whole (:mod:`medview.inference.geometry`).
3. forward (:mod:`medview.inference.forward`): the whole image or volume in one pass when it
   fits memory, MONAI sliding windows of ``input.roi_size`` only when it does not; test-time
   views (:mod:`medview.inference.tta`) at the "fast" (one pass, default) or "accurate" setting.
4. outputs are mapped back onto the source grid: nearest for labels, linear for heatmaps,
   and wrapped with ``volume.like(...)`` so they share its geometry exactly
   (:mod:`medview.inference.postprocess` for label values, largest parts, field of view).
5. out of memory on a GPU: sliding windows, then the batch is halved (then the sliding-window
   batch, then the window), then the whole run moves to the CPU; each step is recorded in
   ``Prediction.messages``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from medview.inference import device as devmod
from medview.inference import geometry, grading, preprocess
from medview.inference.acceptance import input_identity
from medview.inference.cam import CAM_KINDS, CamError, cam_maps
from medview.inference.forward import FallBackToCPU, Runner, clear_network_cache, get_network
from medview.inference.package import ModelPackage, PackageError
from medview.inference.postprocess import field_of_view, keep_largest_parts, labels_from_probs, largest_part
from medview.inference.prediction import Prediction, label_statistics
from medview.inference.results_cache import DEFAULT_CACHE, ResultsCache
from medview.inference.tta import (
    TTA_MODES,
    TTA_SETTINGS,
    class_outputs,
    flip_dims,
    resolve_setting,
    seg_probs,
    tta_mean,
    tta_mode,
)
from medview.io.volume import Volume
from medview.progress import CancelledFn, ProgressFn, check_cancelled, no_progress

# names other modules import from here (kept so callers need not know the split)
__all__ = [
    "CAM_KINDS", "DEFAULT_CACHE", "InferenceError", "ResultsCache", "TTA_MODES", "TTA_SETTINGS",
    "class_outputs", "clear_network_cache", "field_of_view", "get_network", "keep_largest_parts",
    "largest_part", "run_model", "tta_mean", "tta_mode", "validate_cam_class",
]
_flip_dims = flip_dims


class InferenceError(Exception):
    """A model cannot run on this input; the message says why."""


def _pad_multiple(package: ModelPackage) -> int:
    """What the spatial size must be a multiple of for one whole-image pass (the product of
    the network's strides), unless the manifest says (``input.pad_to_multiple``)."""
    spec = package.input
    if spec.get("pad_to_multiple"):
        return int(spec["pad_to_multiple"])
    if package.task != "segmentation":
        return 1
    args = package.manifest["network"].get("args", {})
    strides = args.get("strides")
    if strides:
        m = 1
        for s in strides:
            m *= int(s if not isinstance(s, (list, tuple)) else max(s))
        return m
    if package.manifest["network"]["architecture"] in ("BasicUNet", "AttentionUnet", "SegResNet"):
        return 16
    return 1


def _class_index(package: ModelPackage, cam_class: str | int | None, probs: dict[str, float] | None) -> int:
    classes = package.classes
    if cam_class is None:
        if not probs:
            return 0
        return classes.index(max(probs.items(), key=lambda kv: kv[1])[0])
    if isinstance(cam_class, int) or (isinstance(cam_class, str) and cam_class.isdigit()):
        idx = int(cam_class)
        if not 0 <= idx < len(classes):
            raise InferenceError(f"class index {idx} out of range for {package.id} ({len(classes)} classes)")
        return idx
    if cam_class not in classes:
        raise InferenceError(f"model {package.id} has no class {cam_class!r} (classes: {', '.join(classes)})")
    return classes.index(cam_class)


def validate_cam_class(package: ModelPackage, cam_class: str | int | None) -> None:
    """Refuse a Grad-CAM class the model does not have, before any work (model or image load)."""
    if cam_class is None:
        return
    if package.task != "classification":
        raise InferenceError(f"--cam-class needs a classifier; {package.id} is a {package.task} model")
    _class_index(package, cam_class, None)


def _default_batch(device) -> int:
    return 16 if device.type == "cuda" else (4 if device.type == "mps" else 1)


# ---------------------------------------------------------------------------------------------
# main entry
# ---------------------------------------------------------------------------------------------
def run_model(
    package: ModelPackage,
    volume: Volume,
    *,
    device: str | Any | None = None,
    cam: str | None = None,
    cam_class: str | int | None = None,
    tta: bool = False,
    tta_setting: str | None = None,
    whole_image: bool | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    gui_worker: bool = False,
    cache: ResultsCache | None = None,
    unverified_ok: bool = False,
) -> Prediction:
    """Run ``package`` on ``volume``; see the module docstring.

    ``cam`` = "gradcam" | "gradcam++" (classifiers) draws a heatmap for ``cam_class`` (a class
    name or index; default the top class). ``tta`` (segmentation) adds an uncertainty heatmap
    from test-time flips (``input.tta_flip_axes``); the labels stay those of the plain pass.
    ``tta_setting`` = "fast" (one pass) | "accurate" (the mean over the model's ``output.tta``
    views); None = the package's ``output.tta_default`` ("fast" unless it says).
    ``whole_image``: None = the whole input in one pass when it fits memory (else sliding
    windows of ``input.roi_size``), True / False forces one or the other.
    ``gui_worker=True`` limits torch to one thread so the GUI keeps a core. ``cache`` (e.g.
    ``DEFAULT_CACHE``) returns a stored result for the same series + model version + options.
    The input is checked against the model's acceptance declaration first
    (:mod:`medview.inference.acceptance`): a known mismatch raises InferenceError; an input the
    check cannot verify (no modality information) raises too unless ``unverified_ok`` (the user
    chose the model explicitly), and then the result says "input not verified for this model".
    """
    import torch

    progress = progress or no_progress
    if package.task == "interactive-segmentation":
        raise InferenceError(f"model {package.id} segments from clicks: use the AI assist tool of the annotation panel")
    check = package.check_input(volume)
    if check.refused:
        raise InferenceError(f"model {package.id} cannot run on this series: {check.reason}")
    if check.verdict == "unverified" and not unverified_ok:
        raise InferenceError(f"model {package.id}: {check.note()}; it runs only when chosen explicitly "
                             "(command line: --unverified-ok)")
    validate_cam_class(package, cam_class)
    if cam and cam not in CAM_KINDS:
        raise InferenceError(f"unknown explanation {cam!r}; expected one of {', '.join(CAM_KINDS)}")
    if cam and package.task != "classification":
        raise InferenceError(f"Grad-CAM needs a classifier; {package.id} is a {package.task} model")
    try:
        setting = resolve_setting(package, tta_setting)
    except ValueError as exc:
        raise InferenceError(str(exc)) from exc
    key = cache.key(volume, package, cam=cam, cam_class=cam_class, tta=tta, views=setting) \
        if cache is not None else None
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            progress(1.0, "done (cached)")
            _audit(volume, hit, cached=True)
            return dataclasses.replace(hit, from_cache=True, input=input_identity(volume),
                                       input_check=check.to_json())
    if gui_worker:
        torch.set_num_threads(1)

    dev = devmod.choose_device(device)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    messages: list[str] = []
    progress(0.0, "loading model")
    bs = batch_size or _default_batch(dev)
    opts = {"cam": cam, "cam_class": cam_class, "tta": tta, "setting": setting}
    try:
        runner = Runner(package, dev, bs, messages, whole=whole_image)
    except PackageError as exc:
        raise InferenceError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled here
        if dev.type == "cpu" or not devmod.is_out_of_memory(exc):
            raise
        devmod.release_memory(dev)
        messages.append(f"{dev.type} out of memory while loading the model: ran on the CPU instead")
        dev = torch.device("cpu")
        runner = Runner(package, dev, bs, messages, whole=whole_image)
    timings["load_model"] = time.perf_counter() - t0
    check_cancelled(cancelled)
    try:
        pred = _run(package, volume, runner, opts, progress, cancelled, timings)
    except FallBackToCPU:
        messages.append(f"{dev.type} out of memory even at batch size 1: ran on the CPU instead")
        devmod.release_memory(dev)
        runner = Runner(package, torch.device("cpu"), 1, messages, whole=whole_image)
        pred = _run(package, volume, runner, opts, progress, cancelled, timings)
    except CamError as exc:
        raise InferenceError(str(exc)) from exc
    if not check.verified:
        messages.insert(0, check.note())
    pred.messages = messages
    pred.input = input_identity(volume)
    pred.input_check = check.to_json()
    timings["total"] = time.perf_counter() - t0
    pred.timings = timings
    progress(1.0, "done")
    if cache is not None:
        cache.put(key, pred)
    _audit(volume, pred)
    return pred


def _audit(volume: Volume, pred: Prediction, cached: bool = False) -> None:
    from medview.reporting.audit import record_model_run

    record_model_run(volume.meta, pred, cached)


def _run(package, volume, runner, opts, progress, cancelled, timings) -> Prediction:
    pred = Prediction(
        model_id=package.id, model_name=package.name, model_version=package.version,
        model_sha256=package.sha256, task=package.task, device=devmod.describe(runner.device),
        classes=package.classes,
    )
    if package.dims == 2:
        _run_2d(package, volume, runner, opts, progress, cancelled, timings, pred)
    else:
        _run_3d(package, volume, runner, opts, progress, cancelled, timings, pred)
    if pred.labels is not None:
        pred.label_info = label_statistics(pred.labels, package.labels)
    if runner.modes_used:
        pred.passes = f"{' + '.join(sorted(runner.modes_used))}, TTA {opts['setting']}"
    return pred


def _to_tensor(x: np.ndarray, device):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _run_2d(package, volume, runner, opts, progress, cancelled, timings, pred):
    cam, tta, setting = opts["cam"], opts["tta"], opts["setting"]
    spec = package.input
    depth, height, width = volume.shape
    rgb = volume.is_rgb
    target = geometry.slice_target_size((height, width), volume.spacing[:2], spec)
    pad_m = _pad_multiple(package)
    is_seg = package.task == "segmentation"
    labels = np.zeros(volume.shape, np.uint8) if is_seg else None
    heat = np.zeros(volume.shape, np.float32) if (is_seg and tta) or cam else None
    outs: list[np.ndarray] = []
    t_pre = t_inf = t_post = 0.0
    prepared: list[np.ndarray] = [] if cam else None  # kept for Grad-CAM (small: model-size slices)
    keep_largest = package.output.get("keep_largest")
    fov_level = package.output.get("fov_threshold")
    sized_spec = {**spec, "size": target}

    k = 0
    while k < depth:
        check_cancelled(cancelled)
        b = runner.batch_size
        ks = range(k, min(depth, k + b))
        t = time.perf_counter()
        xs = []
        for kk in ks:
            xi = preprocess.prepare_image(volume.array[kk], sized_spec, rgb=rgb)
            xi, pads = preprocess.pad_to_multiple(xi, pad_m)
            xs.append(xi)
        batch = xs[0][None] if len(xs) == 1 else np.stack(xs)
        if prepared is not None:
            prepared.append(batch)
        x = _to_tensor(batch, runner.device)
        t_pre += time.perf_counter() - t
        t = time.perf_counter()
        if is_seg:
            probs, unc = seg_probs(package, runner.forward, x, tta, setting)
            lab_np = preprocess.unpad(labels_from_probs(package, probs).cpu().numpy(), pads)
            unc_np = preprocess.unpad(unc.cpu().numpy(), pads) if unc is not None else None
            t_inf += time.perf_counter() - t
            t = time.perf_counter()
            for i, kk in enumerate(ks):
                lab_i = lab_np[i]
                if keep_largest:  # one lesion per photograph: drop satellite specks (at the model's size)
                    lab_i = keep_largest_parts(lab_i)
                labels[kk] = lab_i if target is None else preprocess.resize_labels(lab_i, (height, width))
                if unc_np is not None:
                    heat[kk] = unc_np[i] if target is None else preprocess.resize(unc_np[i][None], (height, width))[0]
                if fov_level:  # nothing is found in the black surround of a fundus / endoscope image
                    outside = ~field_of_view(volume.array[kk], float(fov_level))
                    labels[kk][outside] = 0
                    if unc_np is not None:
                        heat[kk][outside] = 0
            t_post += time.perf_counter() - t
        else:
            out = class_outputs(package, runner.forward, x, setting)
            outs.append(out.cpu().numpy())
            t_inf += time.perf_counter() - t
        k = ks.stop
        progress(0.05 + 0.75 * k / depth, f"inference (slice {k}/{depth})")

    timings["preprocess"] = t_pre
    timings["inference"] = t_inf
    if is_seg:
        t = time.perf_counter()
        pred.labels = volume.like(labels)
        if heat is not None:
            pred.heatmap = volume.like(heat)
            pred.heatmap_kind = "uncertainty"
        timings["postprocess"] = t_post + time.perf_counter() - t
        return
    arr = np.concatenate(outs, axis=0)  # (depth, n_classes)
    _set_class_outputs(package, pred, arr)
    if cam:
        t = time.perf_counter()
        progress(0.82, f"explaining ({cam})")
        idx = _class_index(package, opts["cam_class"], pred.probabilities)
        pred.cam_class = package.classes[idx]
        raw = cam_maps(package, runner, np.concatenate(prepared, axis=0), cam, idx, cancelled, _to_tensor)
        for kk in range(depth):
            m = preprocess.unpad(raw[kk], pads)
            box = preprocess.field_box(volume.array[kk], package.input.get("crop"))
            if box is not None:  # the network saw the field-of-view crop: the map goes back on it
                heat[kk] = preprocess.place_in_box(m, box, (height, width))
            else:
                heat[kk] = m if target is None else preprocess.resize(m[None], (height, width))[0]
        top = float(heat.max())
        pred.heatmap = volume.like(heat / top if top > 0 else heat)
        pred.heatmap_kind = cam
        timings["explain"] = time.perf_counter() - t


def _set_class_outputs(package, pred, arr: np.ndarray) -> None:
    classes = package.classes
    mean = arr.mean(axis=0)
    if package.task == "regression":
        pred.values = {c: float(v) for c, v in zip(classes, mean, strict=False)}
    else:
        pred.probabilities = {c: float(v) for c, v in zip(classes, mean, strict=False)}
        spec = grading.grading_spec(package.output)
        if spec:  # graded model: grade (argmax), expected value on the scale, flag
            pred.grading = grading.grade_result(classes, mean, spec)
    pred.slice_probabilities = arr


def _run_3d(package, volume, runner, opts, progress, cancelled, timings, pred):
    from medview.inference.tta import activation

    cam, tta, setting = opts["cam"], opts["tta"], opts["setting"]
    spec = package.input
    t = time.perf_counter()
    progress(0.05, "pre-processing (reorient, resample, normalise)")
    x_np, grid = geometry.to_model_grid(volume, spec)
    x_np, pads = preprocess.pad_to_multiple(x_np, _pad_multiple(package))
    x = _to_tensor(x_np[None], runner.device)
    timings["preprocess"] = time.perf_counter() - t
    check_cancelled(cancelled)
    t = time.perf_counter()
    progress(0.2, "inference")
    n_pass = 1 + (len(flip_dims(package, 3)) if tta and package.task == "segmentation" else 0)
    runner.windowed_calls = 0

    def on_windows(f: float, done: int, total: int) -> None:
        k = min(max(runner.windowed_calls - 1, 0), n_pass - 1)
        extra = f", pass {k + 1}/{n_pass}" if n_pass > 1 else ""
        progress(0.2 + 0.6 * min(1.0, (k + f) / n_pass), f"inference (window {done}/{total}{extra})")

    runner.cancelled = cancelled
    runner.on_windows = on_windows
    if package.task == "segmentation":
        probs, unc = seg_probs(package, runner.forward, x, tta, setting)
        lab = preprocess.unpad(labels_from_probs(package, probs)[0].cpu().numpy(), pads)
        unc_np = preprocess.unpad(unc[0].cpu().numpy(), pads) if unc is not None else None
        timings["inference"] = time.perf_counter() - t
        check_cancelled(cancelled)
        t = time.perf_counter()
        progress(0.85, "mapping back to the image grid")
        pred.labels = volume.like(geometry.to_source_grid(lab.astype(np.uint8), grid, volume, order=0))
        if unc_np is not None:
            pred.heatmap = volume.like(
                geometry.to_source_grid(unc_np.astype(np.float32), grid, volume, order=1).astype(np.float32)
            )
            pred.heatmap_kind = "uncertainty"
        timings["postprocess"] = time.perf_counter() - t
        return
    out = activation(package, runner.forward(x)).cpu().numpy()
    timings["inference"] = time.perf_counter() - t
    _set_class_outputs(package, pred, out)
    if cam:
        t = time.perf_counter()
        progress(0.82, f"explaining ({cam})")
        idx = _class_index(package, opts["cam_class"], pred.probabilities)
        pred.cam_class = package.classes[idx]
        raw = preprocess.unpad(cam_maps(package, runner, x_np[None], cam, idx, cancelled, _to_tensor)[0], pads)
        heat = geometry.to_source_grid(raw.astype(np.float32), grid, volume, order=1).astype(np.float32)
        top = float(heat.max())
        pred.heatmap = volume.like(heat / top if top > 0 else heat)
        pred.heatmap_kind = cam
        timings["explain"] = time.perf_counter() - t
