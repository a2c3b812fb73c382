"""Seed ensembles: K runs of one recipe on its own split, differing only in their random seed.

Unlike a fold ensemble (``medview.training.folds``), every member trains on the same training
part and chooses its checkpoint on the same validation part, with seed ``SEED + i`` (head
initialisation, batch order, augmentation draws). What averaging buys is the members'
disagreement: each run's value is noisy around the same answer. The package averages the
members' outputs (``medview.inference.ensemble``), and everything a single run fits on
validation is fitted once more for the mean: an ordinal head's cut points and sigma, the
temperature, a graded flag's threshold. The validation part is therefore still a fair place to
compare the ensemble with one run (the members never trained on it); the test part plays no part.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from medview.progress import ProgressFn
from medview.training import datasets, engine
from medview.training.folds import save_ensemble, train_member
from medview.training.recipes import RECIPES


class SeedError(ValueError):
    """The recipe cannot be trained as a seed ensemble."""


def member_name(model_id: str, i: int) -> str:
    """The checkpoint folder of member ``i`` (0-based) of ``model_id``'s seed ensemble."""
    return f"{model_id}-seed{i + 1}"


def member_seed(i: int) -> int:
    return datasets.SEED + i


def train_seeds(model_id: str, k: int, minutes: float | None = None, init: str | None = None,
                fresh: bool = False, progress: ProgressFn | None = None, cancelled=None,
                log: Callable[[str], None] = engine.say, max_epochs: int | None = None) -> dict[str, Any]:
    """Train ``k`` members of ``model_id`` with seeds SEED..SEED+k-1, fit the ensemble's head on
    validation and write its checkpoint (``checkpoints/<model_id>/best.safetensors`` + state)."""
    from medview.inference.ensemble import MeanOfMembers
    from medview.inference.ordinal import is_ordinal
    from medview.training import runner

    recipe = RECIPES[model_id]
    if recipe.kind != "classification":
        raise SeedError(f"{model_id}: seed ensembles are for classifiers (this recipe is {recipe.kind})")
    if k < 2:
        raise SeedError("a seed ensemble needs at least 2 members")
    manifest = recipe.new_manifest()
    manifest["network"]["members"] = k
    split = recipe.split()
    t0 = time.monotonic()
    members, records = [], []
    for i in range(k):
        log(f"{model_id}: member {i + 1} of {k} (seed {member_seed(i)})")
        st, net = train_member(model_id, i, k, member_name(model_id, i), split, progress=progress, minutes=minutes,
                               init=init, fresh=fresh, cancelled=cancelled, log=log, max_epochs=max_epochs,
                               seed=member_seed(i))
        members.append(net)
        records.append({"member": i + 1, "seed": member_seed(i), "best": st["best"],
                        "best_epoch": st["best_epoch"], "epochs": st.get("epoch"), "elapsed_s": st.get("elapsed_s")})
    ensemble = MeanOfMembers(members).eval()
    val_items = runner.cache_items(recipe, split.val, manifest)
    state: dict[str, Any] = {"members": k, "ensemble": "seeds", "seeds": records,
                             "init": init if init is not None else recipe.init_from,
                             "train_minutes": minutes if minutes is not None else recipe.minutes,
                             "seed": datasets.SEED}
    if is_ordinal(manifest["output"]):
        state["ordinal"] = runner.fit_ordinal_head(recipe, ensemble, val_items, manifest)
        log(f"ordinal head fitted on validation with the members' mean: {state['ordinal']}")
    elif recipe.calibrate:
        from medview.training import calibration
        from medview.training.folds import _logits

        logits = _logits(ensemble, val_items)
        y = np.array([it["y"] for it in val_items])
        temp, bias, info = calibration.fit(logits, y, bias=recipe.calibrate == "temperature+bias")
        for net in members:  # the mean of the scaled logits is the scaled mean
            calibration.fold(net, temp, bias)
        state["calibration"] = {"temperature": temp, "bias": [float(b) for b in bias], **info}
        log(f"calibration of the members' mean on validation: {state['calibration']}")
    grading = manifest["output"].get("grading")
    setting = runner.default_setting(manifest)
    probs = np.stack([runner.predict_probs(recipe, ensemble, it, manifest, setting=setting) for it in val_items])
    y = np.array([it["y"] for it in val_items])
    if (grading or {}).get("flag"):
        from medview.training import metrics

        flag = grading["flag"]
        lo = int(flag["min_grade"])
        state["grading_threshold"] = metrics.choose_flag_threshold(y >= lo, probs[:, lo:].sum(1))
        flag["threshold"] = round(float(state["grading_threshold"]), 4)
        log(f"{flag['name']} threshold chosen on validation (Youden J): {state['grading_threshold']:.4f}")
    rep = runner.cls_metrics(recipe, probs, y, grading=grading)
    state["best"] = float(rep[recipe.select])
    state["best_epoch"] = [r["best_epoch"] for r in records]
    state["epoch"] = [r["epochs"] for r in records]
    state["elapsed_s"] = time.monotonic() - t0
    state["split"] = {"description": split.description, **split.summary(), "test": [s.name for s in split.test]}
    save_ensemble(model_id, members, state)
    log(f"{model_id}: {k} seed members; ensemble validation {recipe.select} {state['best']:.4f}, "
        f"accuracy {rep['accuracy']:.4f} on {len(y)} images")
    return state
