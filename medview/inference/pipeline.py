"""Run a model package on a Volume: pre-process, forward, explain, map back. No Qt.

``run_model(package, volume, ...) -> Prediction`` follows medview/progress.py
(``progress(fraction, stage)``, ``cancelled()``). Steps:

1. device: CUDA -> MPS -> CPU unless overridden (``device=`` / settings); float16 autocast on
   CUDA for the forward pass (Grad-CAM runs in float32).
2. pre-processing from the manifest: 2D models run on the stored slices in batches
   (channels -> normalise -> resize, :mod:`medview.inference.preprocess`); 3D models are
   reoriented, resampled, normalised and resized as a whole (:mod:`medview.inference.geometry`).
3. segmentation goes through MONAI's ``sliding_window_inference`` when the manifest gives a
   ``roi_size`` (else one pass over the padded image); labels are ``.max(1).indices`` (not
   ``argmax(dim=1)``, which is ~40x slower on CPU torch).
4. outputs are mapped back onto the source grid: nearest for labels, linear for heatmaps,
   and wrapped with ``volume.like(...)`` so they share its geometry exactly.
5. out of memory on a GPU: the batch is halved (then the sliding-window batch, then the
   window), then the whole run moves to the CPU; each step is recorded in
   ``Prediction.messages``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from medview.inference import device as devmod
from medview.inference import geometry, grading, preprocess
from medview.inference.acceptance import input_identity
from medview.inference.package import ModelPackage, PackageError, load_network
from medview.inference.prediction import Prediction, label_statistics
from medview.io.volume import Volume
from medview.progress import CancelledFn, ProgressFn, check_cancelled, no_progress

CAM_KINDS = ("gradcam", "gradcam++")


class InferenceError(Exception):
    """A model cannot run on this input; the message says why."""


class _FallBackToCPU(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# loaded-network cache (weights are hash-checked once per package version and device)
# ---------------------------------------------------------------------------------------------
_NET_LOCK = threading.Lock()
_NETS: "OrderedDict[tuple, Any]" = OrderedDict()
_NET_CACHE_SIZE = 4


def get_network(package: ModelPackage, device: Any, purpose: str = "infer"):
    """The package's network on ``device`` (cached). ``purpose="cam"`` gives a separate copy so
    Grad-CAM hooks never touch the network used for plain inference."""
    key = (str(package.path), package.sha256, str(device), purpose)
    with _NET_LOCK:
        if key in _NETS:
            _NETS.move_to_end(key)
            return _NETS[key]
    net = load_network(package, device)
    with _NET_LOCK:
        _NETS[key] = net
        while len(_NETS) > _NET_CACHE_SIZE:
            _NETS.popitem(last=False)
    return net


def clear_network_cache() -> None:
    with _NET_LOCK:
        _NETS.clear()
        _CAM_OBJECTS.clear()


# ---------------------------------------------------------------------------------------------
# results cache (per series and model version)
# ---------------------------------------------------------------------------------------------
class ResultsCache:
    """In-memory LRU of Predictions keyed by series UID (or source path) + model id/version/sha
    + options. Volumes without a series UID or source path are not cached."""

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: "OrderedDict[tuple, Prediction]" = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(volume: Volume, package: ModelPackage, **options: Any) -> tuple | None:
        series = volume.meta.get("SeriesInstanceUID") or volume.meta.get("source_path")
        if not series:
            return None
        return (str(series), volume.shape, package.id, package.version, package.sha256,
                tuple(sorted((k, str(v)) for k, v in options.items())))

    def get(self, key: tuple | None) -> Prediction | None:
        if key is None:
            return None
        with self._lock:
            p = self._items.get(key)
            if p is not None:
                self._items.move_to_end(key)
            return p

    def put(self, key: tuple | None, prediction: Prediction) -> None:
        if key is None:
            return
        with self._lock:
            self._items[key] = prediction
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


DEFAULT_CACHE = ResultsCache()


# ---------------------------------------------------------------------------------------------
# the runner: forward passes with out-of-memory fallbacks
# ---------------------------------------------------------------------------------------------
class _Runner:
    def __init__(self, package: ModelPackage, device, batch_size: int, messages: list[str]):
        import torch

        self.torch = torch
        self.package = package
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.messages = messages
        spec = package.input
        self.roi = [int(r) for r in spec["roi_size"]] if spec.get("roi_size") else None
        self.sw_batch = self.batch_size if package.dims == 3 else 1
        self.overlap = float(spec.get("overlap", 0.25))
        self.net = get_network(package, device)
        self.autocast = device.type == "cuda"
        # set by the caller: cancel check inside sliding windows, and window progress (0..1 per call)
        self.cancelled: CancelledFn | None = None
        self.on_windows = None
        self.windowed_calls = 0

    def _say(self, text: str) -> None:
        if text not in self.messages:
            self.messages.append(text)

    def _once(self, x):
        torch = self.torch
        with torch.inference_mode():
            ctx = torch.autocast("cuda", dtype=torch.float16) if self.autocast else _nullcontext()
            with ctx:
                if self.roi is not None and self.package.task == "segmentation":
                    from monai.inferers import sliding_window_inference

                    roi = self.roi[-(x.ndim - 2):]
                    total = x.shape[0] * _count_windows(tuple(x.shape[2:]), roi, self.overlap)
                    done = [0]
                    self.windowed_calls += 1

                    def predictor(t):
                        check_cancelled(self.cancelled)  # a long sliding window stays cancellable
                        y = self.net(t)
                        done[0] += t.shape[0]
                        if self.on_windows is not None:
                            self.on_windows(min(1.0, done[0] / total), done[0], total)
                        return y

                    y = sliding_window_inference(
                        x, roi, self.sw_batch, predictor, overlap=self.overlap, mode="gaussian",
                    )
                else:
                    y = self.net(x)
            if isinstance(y, (tuple, list)):
                y = y[0]
            return y.float()

    def forward(self, x):
        """Logits for a batch on the device; halves the batch / window on out-of-memory."""
        try:
            return self._once(x)
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not devmod.is_out_of_memory(exc) or self.device.type == "cpu":
                raise
        devmod.release_memory(self.device)
        n = x.shape[0]
        if n > 1:
            half = n // 2
            self.batch_size = max(1, half)
            self._say(f"{self.device.type} out of memory: batch size reduced to {self.batch_size}")
            return self.torch.cat([self.forward(x[:half]), self.forward(x[half:])])
        if self.roi is not None and self.sw_batch > 1:
            self.sw_batch = max(1, self.sw_batch // 2)
            self._say(f"{self.device.type} out of memory: sliding-window batch reduced to {self.sw_batch}")
            return self.forward(x)
        if self.roi is not None and min(self.roi) > 32:
            self.roi = [max(32, (r // 2) // 16 * 16) for r in self.roi]
            self._say(f"{self.device.type} out of memory: sliding window reduced to {self.roi}")
            return self.forward(x)
        raise _FallBackToCPU()


def _count_windows(size: tuple[int, ...], roi: list[int], overlap: float) -> int:
    """How many windows MONAI's sliding_window_inference visits (for progress only)."""
    n = 1
    for sz, r in zip(size, roi, strict=False):
        sz = max(sz, r)
        step = max(int(r * (1 - overlap)), 1)
        n *= math.ceil((sz - r) / step) + 1 if sz > r else 1
    return n


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _activation(package: ModelPackage, logits):
    import torch

    act = package.output.get("activation", "softmax")
    if package.task == "regression" or act == "none":
        return logits
    if act == "sigmoid":
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


TTA_MODES = ("dihedral", "hflip")


def tta_mean(mode: str, predict, x, dense: bool):
    """Mean of ``predict`` over the views of a 2D batch ``x`` (B, C, H, W) that ``mode`` names:
    "dihedral" = the 8 flips / quarter turns (for images without a canonical orientation:
    dermoscopy, fundus), "hflip" = itself and its left-right mirror (ultrasound, radiographs: top
    stays top). ``dense``: the outputs are maps on the input grid, turned back before averaging
    (segmentation); otherwise per-image vectors (classification). A classifier skips quarter turns
    of a non-square input (its fixed input size); a dense model takes any shape."""
    if mode == "hflip":
        ks: tuple[int, ...] = (0,)
    else:
        ks = (0, 1, 2, 3) if dense or x.shape[-1] == x.shape[-2] else (0, 2)
    total, n = None, 0
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in ks:
            out = predict(xf.rot90(k, dims=(-2, -1)) if k else xf)
            if dense:  # undo: turn back, then flip back
                out = out.rot90(-k, dims=(-2, -1)) if k else out
                out = out.flip(-1) if flip else out
            total = out if total is None else total + out
            n += 1
    return total / n


def tta_mode(package: ModelPackage, spatial_dims: int) -> str | None:
    """The model's own test-time averaging (``output.tta``), or None; 2D models only."""
    mode = package.output.get("tta")
    return mode if mode in TTA_MODES and spatial_dims == 2 else None


def largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of a boolean mask (8-connected in 2D); empty stays empty.
    (The annotation tool's ``keep_largest_component`` does this on an undoable LabelMap.)"""
    from scipy import ndimage

    parts, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim))
    if n <= 1:
        return parts > 0
    return parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:]))


def keep_largest_parts(labels: np.ndarray) -> np.ndarray:
    """Each label value keeps only its largest connected part."""
    out = np.zeros_like(labels)
    for v in np.unique(labels):
        if v != 0:
            out[largest_part(labels == v)] = v
    return out


def field_of_view(image: np.ndarray, level: float) -> np.ndarray:
    """The lit part of a photograph with a black surround (fundus camera, endoscope): pixels whose
    brightest channel reaches ``level`` x the image's maximum, holes filled (dark vessels inside the
    field stay in it), the largest connected part kept."""
    from scipy import ndimage

    a = np.asarray(image, dtype=np.float32)
    bright = a.max(axis=-1) if a.ndim == 3 else a
    top = float(bright.max()) if bright.size else 0.0
    if top <= 0:
        return np.zeros(bright.shape, bool)
    return largest_part(ndimage.binary_fill_holes(bright >= level * top))


def class_outputs(package: ModelPackage, forward, x):
    """Classifier outputs for a batch ``x`` (B, C, H, W), averaged over the views of
    ``output.tta`` when the manifest asks for it (the network was trained on all of them, and
    averaging removes the orientation-dependent part of its error). Training validation calls
    this too, so checkpoints are chosen on what the app will compute."""
    mode = tta_mode(package, x.ndim - 2)
    if mode is None:
        return _activation(package, forward(x))
    return tta_mean(mode, lambda t: _activation(package, forward(t)), x, dense=False)


def _labels_from_probs(package: ModelPackage, probs):
    """(B, C, ...) probabilities -> (B, ...) uint8 label values."""
    import torch

    act = package.output.get("activation", "softmax")
    if act == "sigmoid":
        thr = float(package.output.get("threshold", 0.5))
        values = torch.tensor([int(lab["value"]) for lab in package.labels], device=probs.device)
        best = probs.max(1)
        lab = values[best.indices[:, None]].squeeze(1) if probs.shape[1] == len(values) else best.indices
        return torch.where(best.values > thr, lab, torch.zeros_like(lab)).to(torch.uint8)
    return probs.max(1).indices.to(torch.uint8)


def _uncertainty(probs_list, n_classes: int):
    """Normalised entropy (0..1) of the mean of test-time-augmented probabilities."""
    import torch

    mean = torch.stack(probs_list).mean(0)
    if mean.shape[1] == 1 or n_classes <= 1:  # single sigmoid channel: binary entropy
        p = mean[:, :1].clamp(1e-6, 1 - 1e-6)
        ent = -(p * p.log() + (1 - p) * (1 - p).log()) / math.log(2)
        return mean, ent[:, 0]
    ent = -(mean.clamp_min(1e-8) * mean.clamp_min(1e-8).log()).sum(1) / math.log(mean.shape[1])
    return mean, ent


def _pad_multiple(package: ModelPackage) -> int:
    spec = package.input
    if spec.get("pad_to_multiple"):
        return int(spec["pad_to_multiple"])
    if package.task != "segmentation" or spec.get("roi_size"):
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
    ``gui_worker=True`` limits torch to one thread so the GUI keeps a core. ``cache`` (e.g.
    ``DEFAULT_CACHE``) returns a stored result for the same series + model version + options.
    The input is checked against the model's acceptance declaration first
    (:mod:`medview.inference.acceptance`): a known mismatch raises InferenceError; an input the
    check cannot verify (no modality information) raises too unless ``unverified_ok`` (the user
    chose the model explicitly), and then the result says "input not verified for this model".
    """
    import torch

    progress = progress or no_progress
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
    key = cache.key(volume, package, cam=cam, cam_class=cam_class, tta=tta) if cache is not None else None
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            progress(1.0, "done (cached)")
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
    try:
        runner = _Runner(package, dev, bs, messages)
    except PackageError as exc:
        raise InferenceError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled here
        if dev.type == "cpu" or not devmod.is_out_of_memory(exc):
            raise
        devmod.release_memory(dev)
        messages.append(f"{dev.type} out of memory while loading the model: ran on the CPU instead")
        dev = torch.device("cpu")
        runner = _Runner(package, dev, bs, messages)
    timings["load_model"] = time.perf_counter() - t0
    check_cancelled(cancelled)
    try:
        pred = _run(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings)
    except _FallBackToCPU:
        messages.append(f"{dev.type} out of memory even at batch size 1: ran on the CPU instead")
        devmod.release_memory(dev)
        cpu = torch.device("cpu")
        runner = _Runner(package, cpu, 1, messages)
        pred = _run(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings)
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
    return pred


def _run(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings) -> Prediction:
    pred = Prediction(
        model_id=package.id, model_name=package.name, model_version=package.version,
        model_sha256=package.sha256, task=package.task, device=devmod.describe(runner.device),
        classes=package.classes,
    )
    if package.dims == 2:
        _run_2d(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings, pred)
    else:
        _run_3d(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings, pred)
    if pred.labels is not None:
        pred.label_info = label_statistics(pred.labels, package.labels)
    return pred


def _to_tensor(x: np.ndarray, device):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _flip_dims(package: ModelPackage, ndim_spatial: int) -> list[tuple[int, ...]]:
    """Tensor dims to flip for test-time augmentation (one single-axis flip each).

    ``input.tta_flip_axes`` lists spatial axes of the model input in array order (2D: 0 = rows,
    1 = columns; 3D: 0 = k, 1 = j, 2 = i of the model grid): the flips the model was trained to
    be invariant to. Default: the last axis only (a horizontal / left-right flip), because
    flipping e.g. anterior-posterior would swap what an anatomy-specific model calls its labels.
    """
    axes = package.input.get("tta_flip_axes")
    if axes is None:
        axes = [ndim_spatial - 1]
    return [(2 + int(a),) for a in axes if 0 <= int(a) < ndim_spatial]


def _seg_probs(package, runner, x, tta: bool):
    """(probs-or-logits for the labels, uncertainty-or-None) for a padded batch tensor.

    Labels always come from the plain (un-flipped) pass, so switching the uncertainty map on never
    changes the segmentation. Without TTA and with softmax the logits are returned as they are:
    softmax is monotonic, so ``.max(1).indices`` gives the same labels without the extra pass.
    With TTA the uncertainty is the normalised entropy of the mean of the plain and flipped
    probabilities (flips undone before averaging).
    """
    mode = tta_mode(package, x.ndim - 2)
    if mode:  # the model's own averaging (its labels come from it)
        p0 = tta_mean(mode, lambda t: _activation(package, runner.forward(t)), x, dense=True)
        if not tta:
            return p0, None
        plist = [p0] + [_activation(package, runner.forward(x.flip(d))).flip(d) for d in _flip_dims(package, 2)]
        return p0, _uncertainty(plist, len(package.labels) + 1)[1]
    logits = runner.forward(x)
    softmax = package.output.get("activation", "softmax") == "softmax"
    if not tta:
        return (logits if softmax else _activation(package, logits)), None
    p0 = _activation(package, logits)
    plist = [p0]
    for dims in _flip_dims(package, x.ndim - 2):
        plist.append(_activation(package, runner.forward(x.flip(dims))).flip(dims))
    _mean, unc = _uncertainty(plist, len(package.labels) + 1)
    return p0, unc


def _run_2d(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings, pred):
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

    k = 0
    while k < depth:
        check_cancelled(cancelled)
        b = runner.batch_size
        ks = range(k, min(depth, k + b))
        t = time.perf_counter()
        xs = []
        for kk in ks:
            xi = preprocess.prepare_image(volume.array[kk], {**spec, "size": target}, rgb=rgb)
            xi, pads = preprocess.pad_to_multiple(xi, pad_m)
            xs.append(xi)
        batch = np.stack(xs)
        if prepared is not None:
            prepared.append(batch)
        x = _to_tensor(batch, runner.device)
        t_pre += time.perf_counter() - t
        t = time.perf_counter()
        if is_seg:
            probs, unc = _seg_probs(package, runner, x, tta)
            lab = _labels_from_probs(package, probs)
            lab_np = preprocess.unpad(lab.cpu().numpy(), pads)
            unc_np = preprocess.unpad(unc.cpu().numpy(), pads) if unc is not None else None
            t_inf += time.perf_counter() - t
            t = time.perf_counter()
            for i, kk in enumerate(ks):
                labels[kk] = lab_np[i] if target is None else preprocess.resize_labels(lab_np[i], (height, width))
                if unc_np is not None:
                    heat[kk] = unc_np[i] if target is None else preprocess.resize(unc_np[i][None], (height, width))[0]
                if package.output.get("keep_largest"):  # one lesion per photograph: drop satellite specks
                    labels[kk] = keep_largest_parts(labels[kk])
                fov_level = package.output.get("fov_threshold")
                if fov_level:  # nothing is found in the black surround of a fundus / endoscope image
                    outside = ~field_of_view(volume.array[kk], float(fov_level))
                    labels[kk][outside] = 0
                    if unc_np is not None:
                        heat[kk][outside] = 0
            t_post += time.perf_counter() - t
        else:
            out = class_outputs(package, runner.forward, x)
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
        idx = _class_index(package, cam_class, pred.probabilities)
        pred.cam_class = package.classes[idx]
        raw = _cam(package, runner, np.concatenate(prepared, axis=0), cam, idx, cancelled)  # (depth, h, w)
        for kk in range(depth):
            m = preprocess.unpad(raw[kk], pads)
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


def _run_3d(package, volume, runner, cam, cam_class, tta, progress, cancelled, timings, pred):
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
    n_pass = 1 + (len(_flip_dims(package, 3)) if tta and package.task == "segmentation" else 0)
    runner.windowed_calls = 0

    def on_windows(f: float, done: int, total: int) -> None:
        k = min(max(runner.windowed_calls - 1, 0), n_pass - 1)
        extra = f", pass {k + 1}/{n_pass}" if n_pass > 1 else ""
        progress(0.2 + 0.6 * min(1.0, (k + f) / n_pass), f"inference (window {done}/{total}{extra})")

    runner.cancelled = cancelled
    runner.on_windows = on_windows
    if package.task == "segmentation":
        probs, unc = _seg_probs(package, runner, x, tta)
        lab = preprocess.unpad(_labels_from_probs(package, probs)[0].cpu().numpy(), pads)
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
    out = _activation(package, runner.forward(x)).cpu().numpy()
    timings["inference"] = time.perf_counter() - t
    _set_class_outputs(package, pred, out)
    if cam:
        t = time.perf_counter()
        progress(0.82, f"explaining ({cam})")
        idx = _class_index(package, cam_class, pred.probabilities)
        pred.cam_class = package.classes[idx]
        raw = preprocess.unpad(_cam(package, runner, x_np[None], cam, idx, cancelled)[0], pads)
        heat = geometry.to_source_grid(raw.astype(np.float32), grid, volume, order=1).astype(np.float32)
        top = float(heat.max())
        pred.heatmap = volume.like(heat / top if top > 0 else heat)
        pred.heatmap_kind = cam
        timings["explain"] = time.perf_counter() - t


def _cam(package, runner, batch: np.ndarray, kind: str, class_idx: int, cancelled) -> np.ndarray:
    """Raw (un-normalised, >= 0) Grad-CAM maps at the network input size: (B, *spatial)."""
    import torch
    from monai.visualize import GradCAM, GradCAMpp

    layer = package.gradcam_layer
    if not layer:
        raise InferenceError(f"model {package.id} names no Grad-CAM layer")
    dev = runner.device
    cls = GradCAMpp if kind == "gradcam++" else GradCAM

    def make(device):
        net = get_network(package, device, purpose="cam")
        try:
            return cls(nn_module=net, target_layers=layer, postprocessing=_identity)
        except Exception as exc:  # noqa: BLE001
            raise InferenceError(f"Grad-CAM layer {layer!r} not found in {package.id}: {exc}") from exc

    ckey = (str(package.path), package.sha256, str(dev), kind)
    with _NET_LOCK:
        camobj = _CAM_OBJECTS.get(ckey)
    if camobj is None:
        camobj = make(dev)
        with _NET_LOCK:
            _CAM_OBJECTS[ckey] = camobj
            while len(_CAM_OBJECTS) > 2:
                _CAM_OBJECTS.popitem(last=False)
    out = []
    # MONAI's GradCAMpp broadcasts the per-sample score over the last spatial axis, which is only
    # right for one sample at a time: Grad-CAM++ always runs with batch size 1.
    bs = 1 if kind == "gradcam++" else max(1, runner.batch_size)
    i = 0
    while i < batch.shape[0]:
        check_cancelled(cancelled)
        x = _to_tensor(batch[i:i + bs], dev)
        try:
            with torch.enable_grad():
                m = camobj(x, class_idx=class_idx)
        except Exception as exc:  # noqa: BLE001
            if not devmod.is_out_of_memory(exc) or dev.type == "cpu":
                raise
            devmod.release_memory(dev)
            if bs > 1:
                bs //= 2
                runner.messages.append(f"{dev.type} out of memory in Grad-CAM: batch size reduced to {bs}")
                continue
            runner.messages.append(f"{dev.type} out of memory in Grad-CAM: computed on the CPU instead")
            dev = torch.device("cpu")
            camobj = make(dev)
            continue
        out.append(m.detach().float().cpu().numpy()[:, 0])
        i += x.shape[0]
    return np.concatenate(out, axis=0)


_CAM_OBJECTS: "OrderedDict[tuple, Any]" = OrderedDict()


def _identity(x):
    return x
