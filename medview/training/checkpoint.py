"""Resumable training checkpoints, as safetensors (never pickle) plus a small JSON state.

``checkpoints/<model-id>/``: ``last.safetensors`` (weights), ``last_optim.safetensors`` (optimizer
tensors), ``best.safetensors`` (weights chosen on validation) and ``state.json`` (epoch, elapsed
seconds, best validation score, history, optimizer hyper-parameters).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medview.config import PROJECT_ROOT


def checkpoint_dir(model_id: str) -> Path:
    root = Path(os.environ.get("MEDVIEW_CHECKPOINTS", PROJECT_ROOT / "checkpoints"))
    return root / model_id


def _contiguous(sd: dict) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in sd.items()}


def save_weights(state_dict: dict, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(_contiguous(state_dict), str(tmp))
    os.replace(tmp, path)


def load_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def save_optimizer(optimizer, path: Path) -> dict[str, Any]:
    """Tensors to safetensors; returns the JSON-able rest (param groups, scalar steps)."""
    import torch

    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for name, value in st.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    save_weights(tensors, path)
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return {"param_groups": groups, "scalars": scalars}


def load_optimizer(optimizer, path: Path, meta: dict[str, Any]) -> None:
    tensors = load_weights(path)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for key, value in meta.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def write_state(model_id: str, state: dict[str, Any]) -> None:
    d = checkpoint_dir(model_id)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, d / "state.json")


def read_state(model_id: str) -> dict[str, Any] | None:
    p = checkpoint_dir(model_id) / "state.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())
