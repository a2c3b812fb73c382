"""Turn a MONAI Bundle (folder or zip) into a MedView model package.

A bundle holds ``configs/metadata.json`` (with ``network_data_format``), an inference config
(``configs/inference.json``; YAML when PyYAML is installed) whose ``network_def`` names a MONAI
network, and weights as ``models/model.pt`` (a state dict) or ``models/model.ts`` (TorchScript).

Config expressions (``"$..."``) are Python code, ``"%..."`` macros pull in other config text,
and TorchScript is code too. MedView evaluates **no** expression, ever: the network is rebuilt
only from ``network_def``, whose ``_target_`` must be in the allow-list
(:mod:`medview.inference.networks`) and whose arguments must be literal JSON values (plain
``"@key"`` references to literal config values are followed; a reference to an expression, to
an object (``_target_``) or a ``%`` macro is refused with the reason). :func:`inspect_bundle`
reads the files and lists every expression, macro and reference in full; :func:`import_bundle`
writes the package only with ``trust_code=True`` (the CLI's ``--trust`` flag), which is needed
because TorchScript weights are deserialised (code) to copy them out. The result is a plain
MedView package: weights re-saved as safetensors, so running the imported model later never
evaluates bundle code and never unpickles anything.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medview.inference import networks
from medview.inference.package import ModelPackage, PackageError, write_package

_PALETTE = [
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40],
]
_MODALITY = {"mri": "MR", "mr": "MR", "ct": "CT", "pet": "PT", "us": "US", "ultrasound": "US", "xray": "DX",
             "x-ray": "DX", "cr": "CR", "dx": "DX", "endoscopy": "ES", "pathology": "SM"}


class BundleError(Exception):
    """The bundle cannot be imported; the message says why."""


@dataclass
class BundleReport:
    root: Path
    metadata: dict[str, Any]
    config_file: Path | None
    weights_file: Path | None
    architecture: str | None
    expressions: list[str] = field(default_factory=list)  # "$..." / "%..." strings found in the configs
    notes: list[str] = field(default_factory=list)  # what could not be reproduced, etc.
    manifest: dict[str, Any] | None = None  # the draft manifest
    expression_keys: list[str] = field(default_factory=list)  # "file: key path" of each expression
    refused: list[str] = field(default_factory=list)  # why network_def cannot be rebuilt without code

    def summary(self) -> str:
        lines = [
            f"MONAI bundle: {self.metadata.get('name', self.root.name)} (version {self.metadata.get('version', '?')})",
            f"  config:  {self.config_file.name if self.config_file else 'none'}",
            f"  weights: {self.weights_file.name if self.weights_file else 'none'}",
            f"  network: {self.architecture or 'unknown'}",
        ]
        if self.expressions:
            lines.append(f"  {len(self.expressions)} config expression(s) / macro(s): code that MedView never "
                         "evaluates (with or without --trust):")
            lines += [f"    {k} = {e}" for k, e in zip(self.expression_keys, self.expressions, strict=False)]
        if self.weights_file is not None and self.weights_file.suffix == ".ts":
            lines.append("  weights are TorchScript (code): with --trust they are deserialised once to copy the "
                         "weights out")
        lines += [f"  refused: {r}" for r in self.refused]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
def _open_bundle(path: Path, tmp: Path) -> Path:
    if path.is_dir():
        root = path
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                target = (tmp / name).resolve()
                if not str(target).startswith(str(tmp.resolve())):
                    raise BundleError(f"{path}: unsafe path in zip: {name}")
            zf.extractall(tmp)
        root = tmp
    else:
        raise BundleError(f"{path}: not a folder or a zip file")
    if (root / "configs" / "metadata.json").is_file():
        return root
    subs = [p for p in root.iterdir() if p.is_dir() and (p / "configs" / "metadata.json").is_file()]
    if len(subs) == 1:
        return subs[0]
    raise BundleError(f"{path}: no configs/metadata.json (not a MONAI bundle)")


def _read_config(p: Path) -> dict[str, Any]:
    if p.suffix == ".json":
        return json.loads(p.read_text(encoding="utf-8"))
    try:
        import yaml  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        raise BundleError(f"{p}: YAML configs need PyYAML, which is not installed") from exc
    return yaml.safe_load(p.read_text(encoding="utf-8"))


def _expressions(obj: Any, out: list[str], keys: list[str], where: str) -> None:
    """Every "$..." expression and "%..." macro, with its key path, in document order."""
    if isinstance(obj, str) and obj[:1] in ("$", "%"):
        out.append(obj)
        keys.append(where)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _expressions(v, out, keys, f"{where}#{k}" if where else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _expressions(v, out, keys, f"{where}#{i}")


def _literal(cfg: dict[str, Any], value: Any, depth: int = 0, top: bool = True) -> Any:
    """``value`` as literal JSON: plain "@key" references to literal config values are followed;
    anything that would need code raises _NeedsCode naming it in full ("$" expressions, "%"
    macros, references to expressions or to objects, nested ``_target_`` objects)."""
    if depth > 16:
        raise BundleError("reference chain too deep in the bundle config")
    if isinstance(value, str) and value.startswith("@"):
        node: Any = cfg
        for part in re.split(r"::|#", value[1:]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise _NeedsCode(f"reference {value} does not name a literal config value")
        if isinstance(node, dict) and "_target_" in node:
            raise _NeedsCode(f"reference {value} names an object ({node['_target_']}), which would be instantiated")
        try:
            return _literal(cfg, node, depth + 1, top=False)
        except _NeedsCode as exc:
            raise _NeedsCode(f"reference {value} -> {exc}") from None
    if isinstance(value, str) and value.startswith("$"):
        raise _NeedsCode(f"expression {value}")
    if isinstance(value, str) and value.startswith("%"):
        raise _NeedsCode(f"macro {value}")
    if isinstance(value, dict):
        if not top and "_target_" in value:
            raise _NeedsCode(f"object {value['_target_']} would be instantiated")
        return {k: _literal(cfg, v, depth + 1, top=False) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(cfg, v, depth + 1, top=False) for v in value]
    return value


class _NeedsCode(Exception):
    pass


def _arch_name(target: str) -> str:
    name = str(target).lstrip("$").split("(")[0]
    for prefix in ("monai.networks.nets.", "monai.networks.nets", "networks.nets."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return networks.canonical_name(name)


def _transforms(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    pre = cfg.get("preprocessing")
    if isinstance(pre, dict):
        pre = pre.get("transforms", [])
    return [t for t in (pre or []) if isinstance(t, dict)]


def _input_from_transforms(cfg: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    inp: dict[str, Any] = {"normalization": {"kind": "none"}}
    ignored = {"LoadImaged", "LoadImage", "EnsureChannelFirstd", "EnsureChannelFirst", "AddChanneld",
               "EnsureTyped", "EnsureType", "ToTensord", "CastToTyped", "CopyItemsd"}
    for t in _transforms(cfg):
        name = str(t.get("_target_", "")).split(".")[-1]
        try:
            args = {k: _literal(cfg, v) for k, v in t.items() if not k.startswith("_")}
        except (_NeedsCode, BundleError):
            notes.append(f"{name}: uses config expressions; not reproduced")
            continue
        if name in ("Orientationd", "Orientation") and args.get("axcodes"):
            inp["orientation"] = str(args["axcodes"]).upper()
        elif name in ("Spacingd", "Spacing") and args.get("pixdim"):
            pix = args["pixdim"]
            inp["spacing"] = [float(p) for p in (pix if isinstance(pix, list) else [pix] * 3)]
        elif name in ("ScaleIntensityRanged", "ScaleIntensityRange"):
            a0, a1 = float(args.get("a_min", 0)), float(args.get("a_max", 1))
            b0 = float(args.get("b_min") or 0.0)
            b1 = float(args["b_max"]) if args.get("b_max") is not None else 1.0
            if (b0, b1) != (0.0, 1.0):
                notes.append(f"{name}: output range [{b0}, {b1}] mapped to [0, 1]")
            inp["normalization"] = {"kind": "ct_window", "center": (a0 + a1) / 2, "width": a1 - a0}
        elif name in ("NormalizeIntensityd", "NormalizeIntensity"):
            inp["normalization"] = {"kind": "zscore", "nonzero": bool(args.get("nonzero", False))}
        elif name in ("ScaleIntensityRangePercentilesd", "ScaleIntensityRangePercentiles"):
            inp["normalization"] = {"kind": "percentile", "lower": float(args.get("lower", 0.5)),
                                    "upper": float(args.get("upper", 99.5))}
        elif name in ("ScaleIntensityd", "ScaleIntensity"):
            inp["normalization"] = {"kind": "minmax"}
        elif name in ("DivisiblePadd", "DivisiblePad") and args.get("k"):
            k = args["k"]
            inp["pad_to_multiple"] = int(max(k) if isinstance(k, list) else k)
        elif name in ("Resized", "Resize") and args.get("spatial_size"):
            inp["size"] = [int(s) for s in args["spatial_size"]]
        elif name not in ignored:
            notes.append(f"pre-processing transform {name} is not reproduced by MedView")
    inferer = cfg.get("inferer")
    if isinstance(inferer, dict) and "SlidingWindow" in str(inferer.get("_target_", "")):
        try:
            roi = _literal(cfg, inferer.get("roi_size"))
            if roi:
                inp["roi_size"] = [int(r) for r in roi]
            if inferer.get("overlap") is not None:
                inp["overlap"] = float(_literal(cfg, inferer["overlap"]))
        except (_NeedsCode, BundleError):
            notes.append("sliding-window inferer uses config expressions; roi_size not reproduced")
    return inp


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-._").lower()
    return (s or "imported-bundle")[:64]


def _find_config(root: Path) -> Path | None:
    for name in ("inference.json", "inference.yaml", "inference.yml", "train.json", "train.yaml"):
        p = root / "configs" / name
        if p.is_file():
            return p
    return None


def _find_weights(root: Path) -> Path | None:
    for name in ("model.pt", "model.ts", "model_key_metric.pt"):
        p = root / "models" / name
        if p.is_file():
            return p
    return None


def _draft_manifest(root: Path, meta: dict[str, Any], cfg: dict[str, Any], arch: str | None,
                    net_args: dict[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    ndf = meta.get("network_data_format", {}) or {}
    inputs = ndf.get("inputs", {}) or {}
    outputs = ndf.get("outputs", {}) or {}
    image = next(iter(inputs.values()), {}) if inputs else {}
    pred = next(iter(outputs.values()), {}) if outputs else {}
    fmt = str(pred.get("format", "")).lower()
    task = "classification" if "class" in fmt else ("regression" if "regress" in fmt else "segmentation")
    channel_def = pred.get("channel_def") or {}
    spatial_dims = (net_args or {}).get("spatial_dims") or len(image.get("spatial_shape", []) or []) or 3
    dims = 3 if int(spatial_dims) == 3 else 2
    n_in = int(image.get("num_channels", 1) or 1)
    inp = _input_from_transforms(cfg, notes)
    inp.update({"dims": dims, "channels": "rgb" if n_in == 3 else "grey"})
    for key in ("spacing", "size", "roi_size"):
        if key in inp and len(inp[key]) != dims and not (key == "spacing" and len(inp[key]) == 3):
            notes.append(f"{key} {inp[key]} does not match a {dims}D model; dropped")
            inp.pop(key)
    out: dict[str, Any] = {"activation": "softmax"}
    names = [str(channel_def[k]) for k in sorted(channel_def, key=lambda k: int(k))] if channel_def else []
    if task == "segmentation":
        n_out = int(pred.get("num_channels", len(names) or 2) or 2)
        if not names:
            names = ["background"] + [f"label {i}" for i in range(1, n_out)]
        out["labels"] = [{"value": i, "name": n, "color": _PALETTE[(i - 1) % len(_PALETTE)]}
                         for i, n in enumerate(names) if i > 0]
        if n_out == 1:
            out["activation"] = "sigmoid"
            out["labels"] = [{"value": 1, "name": names[-1] if names else "label 1", "color": _PALETTE[0]}]
    else:
        out["classes"] = names or [f"class {i}" for i in range(int(pred.get("num_channels", 2) or 2))]
    post = json.dumps(cfg.get("postprocessing", {}))
    if "sigmoid" in post and "true" in post.lower():
        out["activation"] = "sigmoid"
    raw_mod = image.get("modality") or meta.get("modality") or ""
    mods = raw_mod if isinstance(raw_mod, list) else [raw_mod]
    modality = [_MODALITY.get(str(m).lower().replace(" ", ""), str(m).upper()) for m in mods if m] or ["*"]
    m: dict[str, Any] = {
        "schema_version": 1,
        "id": _slug(str(meta.get("name", root.name))),
        "name": str(meta.get("name", root.name)),
        "version": str(meta.get("version", "0.0.0")),
        "task": task,
        "modality": modality,
        "body_part": str(meta.get("body_part", "")),
        "network": {"architecture": arch or "?", "args": net_args or {}},
        "input": inp,
        "output": out,
        "source": {"kind": "monai_bundle", "path": str(root)},
    }
    if task == "classification" and arch:
        layer = networks.default_gradcam_layer(arch, net_args)
        if layer:
            m["gradcam_layer"] = layer
    return m


def inspect_bundle(path: str | Path) -> BundleReport:
    """Read a bundle without evaluating anything; the report lists expressions and a draft manifest."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="medview-bundle-") as tmp:
        root = _open_bundle(path, Path(tmp))
        return _inspect(root, path)


def _inspect(root: Path, shown_path: Path) -> BundleReport:
    try:
        meta = json.loads((root / "configs" / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{shown_path}: configs/metadata.json is not readable JSON ({exc})") from exc
    cfg_path = _find_config(root)
    cfg = _read_config(cfg_path) if cfg_path else {}
    weights = _find_weights(root)
    report = BundleReport(root=shown_path, metadata=meta, config_file=cfg_path, weights_file=weights,
                          architecture=None)
    for name, c in (("metadata.json", meta), (cfg_path.name if cfg_path else "config", cfg)):
        keys: list[str] = []
        _expressions(c, report.expressions, keys, "")
        report.expression_keys += [f"{name}: {k}" for k in keys]
    net_def = cfg.get("network_def") if isinstance(cfg, dict) else None
    net_args = None
    if isinstance(net_def, dict) and "_target_" in net_def:
        try:
            report.architecture = _arch_name(net_def["_target_"])
        except networks.UnknownArchitecture as exc:
            report.notes.append(str(exc))
        net_args = {}
        for k, v in net_def.items():
            if k.startswith("_") and k != "_target_":
                report.refused.append(f"network_def#{k} = {json.dumps(v)}: MedView does not run config "
                                      "directives; remove it")
            elif not k.startswith("_"):
                try:
                    net_args[k] = _literal(cfg, v, top=False)
                except _NeedsCode as exc:
                    report.refused.append(f"network_def#{k} = {json.dumps(v)}: {exc}; MedView evaluates no "
                                          "config code: write the literal value instead")
        if not isinstance(net_def["_target_"], str) or net_def["_target_"][:1] in ("$", "@", "%"):
            report.refused.append(f"network_def#_target_ = {json.dumps(net_def['_target_'])}: must name an "
                                  "allow-listed network literally")
        if report.refused:
            net_args = None
    elif weights is not None and weights.suffix == ".ts":
        report.notes.append("TorchScript without a network_def: MedView runs only allow-listed networks, "
                            "so it needs configs/inference.json with network_def to rebuild the network")
    else:
        report.notes.append("no network_def in the inference config")
    if weights is None:
        report.notes.append("no models/model.pt or models/model.ts")
    report.manifest = _draft_manifest(root, meta, cfg if isinstance(cfg, dict) else {}, report.architecture,
                                      net_args, report.notes)
    return report


def _state_dict(weights: Path) -> dict[str, Any]:
    import torch

    if weights.suffix == ".ts":
        module = torch.jit.load(str(weights), map_location="cpu")  # TorchScript: code; only with trust
        return {k: v.detach().clone() for k, v in module.state_dict().items()}
    try:
        obj = torch.load(str(weights), map_location="cpu", weights_only=True)  # restricted unpickler
    except Exception as exc:  # noqa: BLE001
        raise BundleError(f"{weights}: not a plain state dict ({exc})") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise BundleError(f"{weights}: expected a state dict, found {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def import_bundle(path: str | Path, dest_root: str | Path | None = None, *, trust_code: bool = False,
                  model_id: str | None = None, overwrite: bool = False) -> ModelPackage:
    """Import a MONAI bundle as a MedView package (see the module docstring).

    Raises BundleError without ``trust_code`` (nothing is evaluated or written then), and when
    the network is not in the allow-list or the weights do not fit it.
    """
    from medview import config

    path = Path(path)
    if not trust_code:
        raise BundleError(
            f"{path}: importing a MONAI bundle deserialises its weights (TorchScript is code) and writes a "
            "model package; confirm with --trust to import (config expressions are never evaluated)"
        )
    dest_root = Path(dest_root) if dest_root else config.user_data_dir() / "models"
    with tempfile.TemporaryDirectory(prefix="medview-bundle-") as tmp:
        root = _open_bundle(path, Path(tmp))
        report = _inspect(root, path)
        if report.weights_file is None:
            raise BundleError(f"{path}: no models/model.pt or models/model.ts")
        cfg = _read_config(report.config_file) if report.config_file else {}
        if not isinstance(cfg, dict) or "network_def" not in cfg:
            raise BundleError(f"{path}: no network_def in the inference config; " + "; ".join(report.notes))
        if report.refused:  # nothing is evaluated, so network_def must be literal
            raise BundleError(f"{path}: network_def cannot be rebuilt without running bundle code: "
                              + "; ".join(report.refused))
        if report.architecture is None:
            raise BundleError(f"{path}: " + "; ".join(report.notes))
        net_args = dict(report.manifest["network"]["args"]) if report.manifest else {}
        net_args = json.loads(json.dumps(net_args, default=_jsonable))
        meta = report.metadata
        manifest = _draft_manifest(root, meta, cfg, report.architecture, net_args, report.notes)
        if model_id:
            manifest["id"] = model_id
        manifest["source"] = {"kind": "monai_bundle", "path": str(path),
                              "weights": report.weights_file.name,
                              "imported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        state = _state_dict(report.weights_file)
        folder = dest_root / manifest["id"]
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise BundleError(f"{folder} already exists (use --overwrite to replace it)")
        card = _model_card(meta, path, report)
        try:
            return write_package(folder, manifest, state, card)
        except (PackageError, ValueError) as exc:
            raise BundleError(f"{path}: {exc}") from exc


def _jsonable(o: Any) -> Any:
    if isinstance(o, tuple):
        return list(o)
    raise BundleError(f"network_def argument {o!r} is not a plain value; MedView cannot store it")


def _model_card(meta: dict[str, Any], path: Path, report: BundleReport) -> str:
    def field_(key: str) -> str:
        v = meta.get(key)
        if isinstance(v, (list, dict)):
            return json.dumps(v, indent=1)
        return str(v) if v else "not stated in the bundle"

    lines = [
        f"# {meta.get('name', path.name)} (imported MONAI bundle)",
        "",
        "**Research use only, not for diagnosis.**",
        "",
        f"Imported from `{path.name}` with `medview models import --trust`. The network and weights were "
        "copied out of the bundle (weights re-saved as safetensors); MedView's own pre-processing replaces "
        "the bundle's transforms, so check the results against the bundle's reference outputs before use.",
        "",
        f"- Version: {field_('version')}",
        f"- Authors: {field_('authors')}",
        f"- Description: {field_('description')}",
        f"- Intended use: {field_('intended_use')}",
        f"- Data: {field_('data_source')}",
        f"- License / copyright: {field_('copyright')}",
        f"- References: {field_('references')}",
    ]
    if report.notes:
        lines += ["", "## Import notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
