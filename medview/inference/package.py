"""Model packages: discover, validate, write and load them (no Qt; torch imported lazily).

A package is a folder with ``model.json`` (see docs/MODEL_PACKAGE.md), ``weights.safetensors``
and ``MODEL_CARD.md``. A bad package (missing file, schema error, hash mismatch, unknown
architecture) is listed with ``status == "unusable"`` and a reason, and ``load_network``
refuses it. Weights are read with safetensors only, never through pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from medview.inference import acceptance, grading, networks, ordinal, preprocess
from medview.inference.acceptance import InputCheck

SCHEMA_VERSION = 1
MANIFEST = "model.json"
WEIGHTS = "weights.safetensors"
CARD = "MODEL_CARD.md"
TASKS = ("classification", "regression", "segmentation", "interactive-segmentation")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PackageError(Exception):
    """A package cannot be used; the message names the package and the reason."""


@dataclass
class ModelPackage:
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # "ok" | "unusable"
    reason: str = ""
    source: str = ""  # "env" | "user" | "bundled" | "" (given explicitly)

    # ---- convenience views of the manifest ----
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def id(self) -> str:
        return str(self.manifest.get("id") or self.path.name)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name") or self.id)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", ""))

    @property
    def task(self) -> str:
        return str(self.manifest.get("task", ""))

    @property
    def sha256(self) -> str:
        return str((self.manifest.get("weights") or {}).get("sha256", ""))

    @property
    def input(self) -> dict[str, Any]:
        return dict(self.manifest.get("input") or {})

    @property
    def output(self) -> dict[str, Any]:
        return dict(self.manifest.get("output") or {})

    @property
    def dims(self) -> int:
        return int(self.input.get("dims", 2))

    @property
    def modalities(self) -> list[str]:
        m = self.manifest.get("modality", [])
        return [m] if isinstance(m, str) else list(m or [])

    @property
    def classes(self) -> list[str]:
        return list(self.output.get("classes") or [])

    @property
    def labels(self) -> list[dict[str, Any]]:
        return list(self.output.get("labels") or [])

    @property
    def weights_path(self) -> Path:
        return self.path / str((self.manifest.get("weights") or {}).get("file", WEIGHTS))

    @property
    def card_path(self) -> Path:
        return self.path / CARD

    @property
    def gradcam_layer(self) -> str | None:
        layer = self.manifest.get("gradcam_layer")
        if layer:
            return str(layer)
        try:
            net = self.manifest["network"]
            return networks.default_gradcam_layer(net["architecture"], net.get("args"))
        except Exception:
            return None

    def cache_key(self) -> str:
        return f"{self.id}@{self.version}#{self.sha256[:16]}"

    @property
    def accepts(self) -> dict[str, Any]:
        """What the model accepts (``accepts`` in the manifest; see docs/MODEL_PACKAGE.md).

        Without an ``accepts`` block the legacy top-level ``modality`` list is used. ``""``
        (unknown) never counts as an accepted modality: an image without modality information
        is *unverified*, never silently fitting."""
        acc = self.manifest.get("accepts")
        if isinstance(acc, dict):
            return dict(acc)
        mods = [m for m in self.modalities if m]
        return {"modality": mods or ["*"]}

    def check_input(self, volume) -> InputCheck:
        """Whether this model may run on ``volume`` (a medview Volume): ok, unverified (what is
        unknown about the image) or refused (a known mismatch, with the reason)."""
        return acceptance.check_input(self, volume)

    def fits(self, volume) -> tuple[bool, str]:
        """(may run, reason); an unverified input may run once the user chooses the model
        explicitly, so it "fits" here with the reason saying what is unknown."""
        chk = self.check_input(volume)
        return chk.verdict != "refused", chk.reason

    def __repr__(self) -> str:
        extra = f", reason={self.reason!r}" if self.reason else ""
        return f"ModelPackage({self.id!r} v{self.version}, {self.task}, {self.status}{extra}, path={str(self.path)!r})"


# ---------------------------------------------------------------------------------------------
# manifest validation
# ---------------------------------------------------------------------------------------------
def load_manifest(folder: str | Path) -> dict[str, Any]:
    """Read ``model.json``; raises PackageError naming the file on a missing file or bad JSON."""
    p = Path(folder) / MANIFEST
    if not p.is_file():
        raise PackageError(f"{p}: missing {MANIFEST}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{p}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{p}: the manifest must be a JSON object")
    return data


def manifest_errors(m: dict[str, Any]) -> list[str]:
    """Schema problems of a manifest (empty list = valid). Does not look at files."""
    errs: list[str] = []

    def need(key: str, types: type | tuple[type, ...], where: dict = m, prefix: str = "") -> Any:
        if key not in where:
            errs.append(f"missing {prefix}{key}")
            return None
        if not isinstance(where[key], types):
            errs.append(f"{prefix}{key} has the wrong type ({type(where[key]).__name__})")
            return None
        return where[key]

    sv = need("schema_version", int)
    if sv is not None and sv > SCHEMA_VERSION:
        errs.append(f"schema_version {sv} is newer than this MedView understands ({SCHEMA_VERSION})")
    mid = need("id", str)
    if mid is not None and not _ID_RE.match(mid):
        errs.append(f"id {mid!r} must be 1-64 letters, digits, '.', '_' or '-'")
    need("name", str)
    need("version", str)
    task = need("task", str)
    if task is not None and task not in TASKS:
        errs.append(f"task {task!r} is not one of {', '.join(TASKS)}")
    if "modality" in m and not isinstance(m["modality"], (str, list)):
        errs.append("modality must be a string or a list of strings")
    errs += acceptance.acceptance_errors(m.get("accepts"))

    net = need("network", dict)
    if net is not None:
        arch = need("architecture", str, net, "network.")
        args = net.get("args", {})
        if not isinstance(args, dict):
            errs.append("network.args must be an object")
        if arch is not None and not networks.is_known(arch):
            errs.append(f"unknown network architecture {arch!r} (allowed: {', '.join(networks.architectures())})")
        k = net.get("members", 1)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= networks.MAX_MEMBERS:
            errs.append(f"network.members must be an integer from 1 to {networks.MAX_MEMBERS} (a fold ensemble's size)")

    inp = need("input", dict)
    if inp is not None:
        dims = inp.get("dims", 2)
        if dims not in (2, 3):
            errs.append(f"input.dims must be 2 or 3, got {dims!r}")
        try:
            preprocess.n_channels(inp.get("channels", "grey"))
        except ValueError as exc:
            errs.append(f"input.channels: {exc}")
        norm = inp.get("normalization", {"kind": "none"})
        kind = norm.get("kind") if isinstance(norm, dict) else norm
        if kind not in preprocess.NORMALIZATIONS:
            errs.append(f"input.normalization kind {kind!r} is not one of {', '.join(preprocess.NORMALIZATIONS)}")
        if isinstance(norm, dict) and kind == "ct_window":
            if not isinstance(norm.get("center"), (int, float)) or not isinstance(norm.get("width"), (int, float)):
                errs.append("input.normalization ct_window needs numeric center and width")
        for key in ("size", "spacing", "roi_size"):
            v = inp.get(key)
            if v is not None:
                if not isinstance(v, list) or not all(isinstance(x, (int, float)) and x > 0 for x in v):
                    errs.append(f"input.{key} must be a list of positive numbers or null")
                elif isinstance(dims, int) and len(v) != dims and not (key == "spacing" and len(v) == 3):
                    errs.append(f"input.{key} has {len(v)} values for a {dims}D model")
        ori = inp.get("orientation")
        if ori is not None and (not isinstance(ori, str) or len(ori) != 3 or set(ori.upper()) - set("LRAPSI")):
            errs.append(f"input.orientation {ori!r} must be a 3-letter code such as RAS or LPS")
        tfa = inp.get("tta_flip_axes")
        if tfa is not None and (not isinstance(tfa, list) or not all(
                isinstance(a, int) and 0 <= a < (dims if isinstance(dims, int) else 3) for a in tfa)):
            errs.append("input.tta_flip_axes must be a list of spatial axis numbers (0 .. dims-1)")
        ptm = inp.get("pad_to_multiple")
        if ptm is not None and (not isinstance(ptm, int) or ptm < 1):
            errs.append("input.pad_to_multiple must be a positive integer")
        mx = inp.get("max_extent_mm")
        if mx is not None and (isinstance(mx, bool) or not isinstance(mx, (int, float)) or mx <= 0):
            errs.append("input.max_extent_mm must be a positive number of millimetres")

    out = need("output", dict)
    if out is not None and task in TASKS:
        if task in ("classification", "regression"):
            cls = out.get("classes")
            if not isinstance(cls, list) or not cls or not all(isinstance(c, str) for c in cls):
                errs.append("output.classes must be a non-empty list of names")
        else:
            labels = out.get("labels")
            if not isinstance(labels, list) or not labels:
                errs.append("output.labels must be a non-empty list of {value, name, color}")
            else:
                for i, lab in enumerate(labels):
                    if not isinstance(lab, dict) or not isinstance(lab.get("value"), int) or lab["value"] <= 0:
                        errs.append(f"output.labels[{i}] needs an integer value > 0")
                    elif not isinstance(lab.get("name"), str):
                        errs.append(f"output.labels[{i}] needs a name")
                    col = lab.get("color") if isinstance(lab, dict) else None
                    if col is not None and (not isinstance(col, list) or len(col) not in (3, 4)):
                        errs.append(f"output.labels[{i}].color must be [r, g, b]")
        fov = out.get("fov_threshold")
        if fov is not None and (isinstance(fov, bool) or not isinstance(fov, (int, float)) or not 0 < fov < 1
                                or task != "segmentation"):
            errs.append("output.fov_threshold must be a number between 0 and 1, for a segmentation model")
        if task == "classification":
            errs.extend(grading.validate_grading(out))
        if "keep_largest" in out and (not isinstance(out["keep_largest"], bool) or task != "segmentation"):
            errs.append("output.keep_largest must be true or false, for a segmentation model")
        tta = out.get("tta")
        if tta is not None and (tta not in ("dihedral", "hflip") or task not in ("classification", "segmentation")
                                or (isinstance(inp, dict) and inp.get("dims") != 2)):
            errs.append("output.tta may only be \"dihedral\" or \"hflip\", for a 2D classification or "
                        "segmentation model")
        if out.get("tta_default") not in (None, "fast", "accurate"):
            errs.append("output.tta_default must be \"fast\" (one pass) or \"accurate\" (the mean over output.tta)")
        act = out.get("activation", "softmax")
        if act == ordinal.ACTIVATION:
            if task != "classification":
                errs.append("output.activation ordinal_probit is for a graded classification model")
            errs.extend(ordinal.validate(out, len(out.get("classes") or [])))
        elif act not in ("softmax", "sigmoid", "none"):
            errs.append(f"output.activation {act!r} must be softmax, sigmoid, none or ordinal_probit")

    w = need("weights", dict)
    if w is not None:
        f = w.get("file", WEIGHTS)
        if not isinstance(f, str) or "/" in f or "\\" in f or f.startswith(".") or not f.endswith(".safetensors"):
            errs.append("weights.file must be a plain *.safetensors file name inside the package")
        sha = w.get("sha256")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            errs.append("weights.sha256 must be 64 lowercase hex digits")
    return errs


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def _cached_sha(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = sha256_file(path)
    return _HASH_CACHE[key]


def validate(folder: str | Path, source: str = "") -> ModelPackage:
    """Check a package folder completely; never raises. ``status`` says whether it is usable."""
    folder = Path(folder)
    pkg = ModelPackage(path=folder, source=source)
    try:
        pkg.manifest = load_manifest(folder)
    except PackageError as exc:
        pkg.status, pkg.reason = "unusable", str(exc).split(": ", 1)[-1]
        return pkg
    errs = manifest_errors(pkg.manifest)
    if errs:
        pkg.status, pkg.reason = "unusable", "; ".join(errs)
        return pkg
    if not pkg.weights_path.is_file():
        pkg.status, pkg.reason = "unusable", f"missing weights file {pkg.weights_path.name}"
        return pkg
    if not pkg.card_path.is_file():
        pkg.status, pkg.reason = "unusable", f"missing {CARD}"
        return pkg
    try:
        actual = _cached_sha(pkg.weights_path)
    except OSError as exc:
        pkg.status, pkg.reason = "unusable", f"cannot read weights: {exc}"
        return pkg
    if actual != pkg.sha256:
        pkg.status, pkg.reason = "unusable", (
            f"weights sha256 mismatch (manifest {pkg.sha256[:12]}..., file {actual[:12]}...)"
        )
        return pkg
    return pkg


# ---------------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------------
def search_paths() -> list[tuple[str, Path]]:
    """(source, folder) in priority order: $MEDVIEW_MODELS, the user's folder, bundled models/."""
    from medview import config

    out: list[tuple[str, Path]] = []
    env = os.environ.get("MEDVIEW_MODELS", "")
    for part in env.split(os.pathsep):
        if part.strip():
            out.append(("env", Path(part.strip()).expanduser()))
    out.append(("user", config.user_data_dir() / "models"))
    out.append(("bundled", config.bundled_models_dir()))
    return out


def _package_folders(root: Path) -> Iterable[Path]:
    if (root / MANIFEST).is_file():  # $MEDVIEW_MODELS may point at one package directly
        yield root
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    yield from children


def discover_packages(paths: list[tuple[str, Path]] | None = None) -> list[ModelPackage]:
    """Every package folder found, usable or not (unusable ones carry the reason).

    The first package with a given id wins ($MEDVIEW_MODELS, then user, then bundled); a later
    one with the same id is listed as unusable, "shadowed by" the first, *also when the first is
    unusable* (e.g. its weights fail their sha256): a broken package never falls back silently
    to another copy with the same id.
    """
    found: list[ModelPackage] = []
    seen: dict[str, ModelPackage] = {}
    for source, root in paths if paths is not None else search_paths():
        if not root.is_dir():
            continue
        for folder in _package_folders(root):
            pkg = validate(folder, source=source)
            first = seen.get(pkg.id)
            if first is None:
                seen[pkg.id] = pkg
            else:
                why = f"shadowed by {first.path} (same id)"
                if not first.ok:
                    why += f", which is unusable: {first.reason}"
                pkg.status, pkg.reason = "unusable", why if pkg.ok else f"{why}; itself: {pkg.reason}"
            found.append(pkg)
    return found


def find_package(model_id: str, packages: list[ModelPackage] | None = None) -> ModelPackage:
    """The package with this id (or a folder path); raises PackageError with the reason when it
    is unusable. The first package with the id decides: an unusable one is never replaced by a
    later copy with the same id."""
    p = Path(model_id)
    if (p / MANIFEST).is_file():
        pkg = validate(p)
        if not pkg.ok:
            raise PackageError(f"model package {p} is unusable: {pkg.reason}")
        return pkg
    pkgs = discover_packages() if packages is None else packages
    matches = [k for k in pkgs if k.id == model_id]
    if matches and matches[0].ok:
        return matches[0]
    if matches:
        first = matches[0]
        others = [str(k.path) for k in matches[1:]]
        extra = f"; not falling back to {', '.join(others)}" if others else ""
        raise PackageError(f"model {model_id!r} is unusable: {first.reason} ({first.path}){extra}")
    known = ", ".join(sorted({k.id for k in pkgs})) or "none"
    raise PackageError(f"no model package with id {model_id!r} (known: {known})")


# ---------------------------------------------------------------------------------------------
# writing and loading
# ---------------------------------------------------------------------------------------------
def write_package(
    folder: str | Path, manifest: dict[str, Any], state_dict: dict[str, Any], model_card: str
) -> ModelPackage:
    """Write weights.safetensors, put its sha256 into the manifest, write model.json and the card.

    ``state_dict`` maps names to torch tensors (a module's ``state_dict()``). Tensors are made
    contiguous and de-aliased (safetensors refuses shared storage). The manifest is validated
    first (with a placeholder hash) so a bad manifest never produces a half-written package.
    Returns the validated package (raises PackageError if it is still not usable).
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    m = json.loads(json.dumps(manifest))  # deep copy, and proves it is JSON-serialisable
    m.setdefault("schema_version", SCHEMA_VERSION)
    m.setdefault("weights", {})
    m["weights"].setdefault("file", WEIGHTS)
    m["weights"]["sha256"] = "0" * 64
    errs = manifest_errors(m)
    if errs:
        raise PackageError(f"invalid manifest for {folder}: {'; '.join(errs)}")
    # the state dict must build into the named network (catches wrong args early)
    net = networks.build_from_spec(m["network"])
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    try:
        net.load_state_dict(tensors, strict=True)  # names and shapes must fit exactly
    except RuntimeError as exc:
        raise PackageError(f"state_dict does not fit {m['network']['architecture']}: {exc}") from exc
    folder.mkdir(parents=True, exist_ok=True)
    wpath = folder / m["weights"]["file"]
    save_file(tensors, str(wpath), metadata={"format": "pt", "medview_id": str(m.get("id", ""))})
    m["weights"]["sha256"] = sha256_file(wpath)
    (folder / MANIFEST).write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    (folder / CARD).write_text(model_card if model_card.endswith("\n") else model_card + "\n", encoding="utf-8")
    pkg = validate(folder)
    if not pkg.ok:
        raise PackageError(f"written package {folder} is unusable: {pkg.reason}")
    return pkg


def load_network(package: ModelPackage, device: Any = "cpu"):
    """Build the package's network and load its weights (hash-checked, safetensors only).

    The weights file is read once into memory, hashed, and those same bytes are decoded, so the
    hash check cannot be bypassed by a file changing in between. Returns the module in eval mode
    on ``device``. Raises PackageError naming the package on any problem.
    """
    import torch
    from safetensors.torch import load as st_load

    if not package.ok:
        raise PackageError(f"model package {package.path} is unusable: {package.reason}")
    try:
        data = package.weights_path.read_bytes()
    except OSError as exc:
        raise PackageError(f"{package.weights_path}: cannot read weights ({exc})") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != package.sha256:
        raise PackageError(
            f"{package.weights_path}: sha256 mismatch (manifest {package.sha256[:12]}..., file {actual[:12]}...)"
        )
    try:
        state = st_load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise PackageError(f"{package.weights_path}: not a valid safetensors file ({exc})") from exc
    net_spec = package.manifest["network"]
    try:
        net = networks.build_from_spec(net_spec)
        net.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as exc:
        raise PackageError(f"model {package.id}: weights do not fit the network ({exc})") from exc
    net.eval()
    return net.to(torch.device(device) if isinstance(device, str) else device)
