"""Versions of a model fine-tuned on site corrections, and which one is active.

Every fine-tuned version is an ordinary package in the user's model folder with its own id
(``<family>-v<version>``, e.g. ``skin-lesion-seg-v1.1.0``), so every version stays listed and
selectable (`medview models`, the app's model panel, ``--model ID``). Its manifest's
``lineage`` names the family, the parent package (id, version, sha256), the data it was tuned
on and the held-out figures of parent and child. ``active_models.json`` in the user data folder
says which version a family uses now (default: the family's own package, e.g. the bundled
one); ``FAMILY@active`` resolves to it wherever campaigns take a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ACTIVE_FILE = "active_models.json"


def _active_path() -> Path:
    from medview import config

    return config.user_data_dir() / "campaigns" / ACTIVE_FILE


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_active_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    p = _active_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, p)


def family_of(pkg) -> str:
    return str((pkg.manifest.get("lineage") or {}).get("family") or pkg.id)


def versions(family: str, packages: list | None = None) -> list:
    """Every usable package of the family (the base package first, then by version)."""
    from medview.inference.package import discover_packages

    pkgs = [p for p in (packages if packages is not None else discover_packages()) if p.ok]
    members = [p for p in pkgs if family_of(p) == family]
    return sorted(members, key=lambda p: (p.id != family, _version_key(p.version)))


def _version_key(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


def next_version(family: str, packages: list | None = None) -> str:
    """One minor step above the highest version of the family (1.0.0 -> 1.1.0)."""
    have = [_version_key(p.version) for p in versions(family, packages)] or [(1, 0, 0)]
    top = max(have)
    major = top[0] if top else 1
    minor = max(k[1] if len(k) > 1 else 0 for k in have if k[0] == major) + 1
    return f"{major}.{minor}.0"


def version_id(family: str, version: str) -> str:
    return f"{family}-v{version}"


def active_id(family: str) -> str:
    return str((_read().get(family) or {}).get("active") or family)


def set_active(family: str, package_id: str, reason: str = "") -> None:
    """Make ``package_id`` the family's active version (the history keeps every switch)."""
    from medview.annotation.labelmap import now_iso

    data = _read()
    entry = data.setdefault(family, {"active": family, "history": []})
    entry["history"].append({"time": now_iso(), "from": entry.get("active", family), "to": package_id,
                             "reason": reason})
    entry["active"] = package_id
    _write(data)


def history(family: str) -> list[dict[str, Any]]:
    return list((_read().get(family) or {}).get("history", []))


def resolve(model: str):
    """A package for ``ID``, a package folder, or ``FAMILY@active``."""
    from medview.inference.package import find_package

    if model.endswith("@active"):
        return find_package(active_id(model[: -len("@active")]))
    return find_package(model)
