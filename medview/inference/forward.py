"""Forward passes: whole-image when the input fits memory, MONAI sliding windows when it does
not, and the out-of-memory fallbacks. Torch, no Qt.

A fully convolutional segmenter gives the same map on the whole (padded) image as stitched
windows do, without the overlap (1.5-3x the pixels at 25 % overlap) or the window borders, so
``roi_size`` in a manifest is only the window to fall back to. The decision is by an estimate
of the activation memory against what the device has free; an out-of-memory error on the whole
image switches to windows, then halves the batch / window, then moves the run to the CPU.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from typing import Any

from medview.inference import device as devmod
from medview.inference.package import ModelPackage, load_network
from medview.progress import CancelledFn, check_cancelled

# Live float activations per input voxel, in multiples of the first level's channel count: a
# U-Net keeps every skip connection plus two working buffers at full resolution; measured
# peaks of MONAI UNet/BasicUNet/resnet10 stay under 6x (inference_mode frees the rest).
_ACTIVATION_FACTOR = 8
# Share of the free memory a whole-image pass may plan to use (the rest: allocator slack,
# the rest of the app, other processes).
_MEMORY_SHARE = 0.5


class FallBackToCPU(Exception):
    """Out of memory on the accelerator even with the smallest batch and window."""


# ---------------------------------------------------------------------------------------------
# loaded-network cache (weights are hash-checked once per package version and device)
# ---------------------------------------------------------------------------------------------
_NET_LOCK = threading.Lock()
_NETS: "OrderedDict[tuple, Any]" = OrderedDict()
# bounded by the networks' parameter bytes, not their number: every bundled model together is
# ~0.2 GB, so switching between them never re-reads and re-hashes weights
_NET_CACHE_BYTES = 1 << 30
CAM_OBJECTS: "OrderedDict[tuple, Any]" = OrderedDict()  # Grad-CAM objects (medview.inference.cam)


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
        while len(_NETS) > 1 and sum(_param_bytes(n) for n in _NETS.values()) > _NET_CACHE_BYTES:
            _NETS.popitem(last=False)
    return net


def _param_bytes(net) -> int:
    try:
        return sum(p.numel() * p.element_size() for p in net.parameters()) + sum(
            b.numel() * b.element_size() for b in net.buffers())
    except AttributeError:  # not a torch module (tests may cache a stand-in)
        return 0


def cache_lock() -> threading.Lock:
    return _NET_LOCK


def clear_network_cache() -> None:
    with _NET_LOCK:
        _NETS.clear()
        CAM_OBJECTS.clear()


# ---------------------------------------------------------------------------------------------
# does the whole input fit?
# ---------------------------------------------------------------------------------------------
def free_memory_bytes(device) -> int:
    """Memory free for tensors on ``device`` (CUDA: the driver's figure; else available RAM)."""
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil is optional: POSIX sysconf, else assume 4 GiB
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return 4 << 30


def first_level_channels(package: ModelPackage) -> int:
    """Feature channels at full resolution (U-Net ``channels[0]`` / ``features[0]``; else 64)."""
    args = package.manifest["network"].get("args", {})
    for key in ("channels", "features"):
        seq = args.get(key)
        if isinstance(seq, (list, tuple)) and seq:
            return int(seq[0])
    return 64


def whole_image_bytes(package: ModelPackage, shape: tuple[int, ...], half: bool) -> int:
    """Planned activation memory of one whole-image forward of a (B, C, *spatial) input."""
    voxels = math.prod(int(s) for s in shape[:1] + shape[2:])
    return voxels * first_level_channels(package) * (2 if half else 4) * _ACTIVATION_FACTOR


def fits_whole(package: ModelPackage, shape: tuple[int, ...], device, half: bool) -> bool:
    return whole_image_bytes(package, shape, half) <= _MEMORY_SHARE * free_memory_bytes(device)


def count_windows(size: tuple[int, ...], roi: list[int], overlap: float) -> int:
    """How many windows MONAI's sliding_window_inference visits (for progress only)."""
    n = 1
    for sz, r in zip(size, roi, strict=False):
        sz = max(sz, r)
        step = max(int(r * (1 - overlap)), 1)
        n *= math.ceil((sz - r) / step) + 1 if sz > r else 1
    return n


# ---------------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------------
class Runner:
    """Forward passes of one package on one device. ``whole``: True = always the whole input,
    False = sliding windows (``input.roi_size``) always, None = whole when it fits memory."""

    def __init__(self, package: ModelPackage, device, batch_size: int, messages: list[str],
                 whole: bool | None = None):
        import torch

        self.torch = torch
        self.package = package
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.messages = messages
        spec = package.input
        self.roi = [int(r) for r in spec["roi_size"]] if spec.get("roi_size") else None
        self.whole = whole if self.roi is not None else True
        self.sw_batch = self.batch_size if package.dims == 3 else 1
        self.overlap = float(spec.get("overlap", 0.25))
        self.net = get_network(package, device)
        self.autocast = device.type == "cuda"
        # set by the caller: cancel check inside sliding windows, and window progress (0..1 per call)
        self.cancelled: CancelledFn | None = None
        self.on_windows = None
        self.windowed_calls = 0
        self.modes_used: set[str] = set()

    def _say(self, text: str) -> None:
        if text not in self.messages:
            self.messages.append(text)

    def use_windows(self, x) -> bool:
        if self.roi is None or self.package.task != "segmentation" or self.whole is True:
            return False
        if self.whole is False:
            return True
        return not fits_whole(self.package, tuple(x.shape), self.device, self.autocast)

    def _once(self, x):
        torch = self.torch
        windows = self.use_windows(x)
        with torch.inference_mode():
            ctx = torch.autocast("cuda", dtype=torch.float16) if self.autocast else _NullContext()
            with ctx:
                y = self._windows(x) if windows else self.net(x)
            if isinstance(y, (tuple, list)):
                y = y[0]
            self.modes_used.add("sliding window" if windows else "whole image")  # what gave the result
            return y.float()

    def _windows(self, x):
        from monai.inferers import sliding_window_inference

        roi = self.roi[-(x.ndim - 2):]
        total = x.shape[0] * count_windows(tuple(x.shape[2:]), roi, self.overlap)
        done = [0]
        self.windowed_calls += 1

        def predictor(t):
            check_cancelled(self.cancelled)  # a long sliding window stays cancellable
            y = self.net(t)
            done[0] += t.shape[0]
            if self.on_windows is not None:
                self.on_windows(min(1.0, done[0] / total), done[0], total)
            return y

        return sliding_window_inference(x, roi, self.sw_batch, predictor, overlap=self.overlap, mode="gaussian")

    def forward(self, x):
        """Logits for a batch on the device; on out-of-memory: windows instead of the whole
        image, then a halved batch / window, then :class:`FallBackToCPU`."""
        try:
            return self._once(x)
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not devmod.is_out_of_memory(exc):
                raise
            devmod.release_memory(self.device)
            if self.roi is not None and self.package.task == "segmentation" and not self.use_windows(x):
                self.whole = False
                self._say(f"{self.device.type} out of memory on the whole image: sliding windows of {self.roi}")
                return self.forward(x)
            if self.device.type == "cpu":
                raise
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
        raise FallBackToCPU()


class _NullContext:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
