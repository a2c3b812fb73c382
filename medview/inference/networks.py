"""The allow-list of network architectures a model package may name.

A package is data, not code: ``model.json`` names an architecture *key* from ``ARCHITECTURES``
and its keyword arguments; nothing else is ever imported or evaluated. Adding an architecture
means adding one entry here (reviewed code), never running something a package names.

torch / monai are imported lazily (inside functions) so importing this module is cheap.
"""

from __future__ import annotations

from typing import Any, Callable

# key -> (monai.networks.nets attribute or "medview:Class", fixed keyword overrides, default Grad-CAM layer or None)
# Fixed overrides make sure nothing is downloaded (pretrained=False) at build time.
_ALLOWED: dict[str, tuple[str, dict[str, Any], str | None]] = {
    # segmentation
    "UNet": ("UNet", {}, None),
    "BasicUNet": ("BasicUNet", {}, None),
    "AttentionUnet": ("AttentionUnet", {}, None),
    "SegResNet": ("SegResNet", {}, None),
    "DynUNet": ("DynUNet", {}, None),
    "UNETR": ("UNETR", {}, None),
    "SwinUNETR": ("SwinUNETR", {}, None),
    # classification / regression
    "DenseNet121": ("DenseNet121", {"pretrained": False}, "class_layers.relu"),
    "DenseNet169": ("DenseNet169", {"pretrained": False}, "class_layers.relu"),
    "resnet10": ("resnet10", {"pretrained": False}, "layer4"),
    "resnet18": ("resnet18", {"pretrained": False}, "layer4"),
    "resnet34": ("resnet34", {"pretrained": False}, "layer4"),
    "resnet50": ("resnet50", {"pretrained": False}, "layer4"),
    "EfficientNetBN": ("EfficientNetBN", {"pretrained": False}, "_bn1"),
    # defined in this project (medview/inference/unet_classifier.py); Grad-CAM on the bottom block,
    # whose name depends on the depth: see default_gradcam_layer
    "UNetEncoderClassifier": ("medview:UNetEncoderClassifier", {}, "model"),
}

# Case-insensitive aliases (MONAI bundle configs and people spell these differently).
_ALIASES = {k.lower(): k for k in _ALLOWED}
_ALIASES.update({"attentionunet": "AttentionUnet", "densenet": "DenseNet121", "resnet": "resnet18"})


class UnknownArchitecture(ValueError):
    """The manifest names an architecture that is not in the allow-list."""


def architectures() -> list[str]:
    """The architecture keys a manifest may use."""
    return sorted(_ALLOWED)


def canonical_name(architecture: str) -> str:
    """The allow-list key for ``architecture`` (case-insensitive); raises UnknownArchitecture."""
    if architecture in _ALLOWED:
        return architecture
    key = _ALIASES.get(str(architecture).lower())
    if key is None:
        raise UnknownArchitecture(
            f"unknown network architecture {architecture!r}; allowed: {', '.join(architectures())}"
        )
    return key


def is_known(architecture: str) -> bool:
    try:
        canonical_name(architecture)
        return True
    except UnknownArchitecture:
        return False


def default_gradcam_layer(architecture: str, args: dict[str, Any] | None = None) -> str | None:
    """A sensible Grad-CAM target layer for a classifier architecture (None for segmenters).

    The UNet-encoder classifier's bottom block sits one ``.1.submodule`` deeper per stride (MONAI
    nests the levels), so its name comes from ``args["strides"]`` (4 strides by default)."""
    key = canonical_name(architecture)
    layer = _ALLOWED[key][2]
    if key == "UNetEncoderClassifier":
        depth = len((args or {}).get("strides") or [2, 2, 2, 2])
        return layer + ".1.submodule" * depth
    return layer


def _constructor(key: str) -> Callable[..., Any]:
    name = _ALLOWED[key][0]
    if name.startswith("medview:"):
        from medview.inference import unet_classifier

        return getattr(unet_classifier, name.split(":", 1)[1])
    import monai.networks.nets as nets

    return getattr(nets, name)


def build_network(architecture: str, args: dict[str, Any] | None = None):
    """Build an allow-listed MONAI network with the manifest's keyword ``args``.

    Lists in ``args`` are passed as given (MONAI accepts sequences); ``pretrained`` is always
    forced off, so nothing is downloaded. Raises ``UnknownArchitecture`` for a name outside the
    allow-list and ``ValueError`` (naming the architecture) when the arguments do not fit it.
    """
    key = canonical_name(architecture)
    kwargs = dict(args or {})
    kwargs.update(_ALLOWED[key][1])
    ctor = _constructor(key)
    try:
        net = ctor(**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for network {key}: {exc}") from exc
    except (ValueError, AssertionError, KeyError) as exc:
        raise ValueError(f"cannot build network {key} with {kwargs}: {exc}") from exc
    return net


MAX_MEMBERS = 16  # a fold ensemble's size limit (each member is a full network in memory)


def members(spec: dict[str, Any]) -> int:
    """How many members a manifest's ``network`` averages (1: a single network)."""
    return int(spec.get("members") or 1)


def member_prefix(i: int) -> str:
    return f"members.{i}."


def stack_states(states: list[dict]) -> dict:
    """One ensemble state dict from the members' state dicts (in member order)."""
    return {member_prefix(i) + k: v for i, sd in enumerate(states) for k, v in sd.items()}


def build_from_spec(spec: dict[str, Any]):
    """The network a manifest's ``network`` object describes: one allow-listed network, or with
    ``members`` K >= 2 a fold ensemble of K of them (``medview.inference.ensemble``)."""
    k = members(spec)
    if k == 1:
        return build_network(spec["architecture"], spec.get("args", {}))
    from medview.inference.ensemble import MeanOfMembers

    return MeanOfMembers([build_network(spec["architecture"], spec.get("args", {})) for _ in range(k)])


def network_spatial_dims(architecture: str, args: dict[str, Any]) -> int | None:
    """spatial_dims from the arguments (MONAI's defaults when absent), or None if unknown."""
    key = canonical_name(architecture)
    if "spatial_dims" in args:
        return int(args["spatial_dims"])
    if "dimensions" in args:
        return int(args["dimensions"])
    import inspect

    try:
        p = inspect.signature(_constructor(key)).parameters.get("spatial_dims")
    except (TypeError, ValueError):
        return None
    if p is not None and isinstance(p.default, int):
        return p.default
    if key.startswith("resnet"):
        return 3
    return None
