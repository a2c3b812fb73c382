"""Cross-validated fold ensembles: model choice over train + validation, not one small part.

The recipe's train and validation parts are pooled and dealt into K folds (group-aware, so
near-duplicates or one patient's images never straddle folds, and class-stratified). Member i
trains on the other K-1 folds and chooses its checkpoint on fold i, exactly as a single run
does on the validation part. Every pooled image is then predicted once by the member that never
trained on it (out-of-fold, "OOF"): the temperature (and class bias) is fitted on all those
predictions at once and folded into every member, and the OOF figures are the recipe's
cross-validated estimate on K times more images than the validation part. The package averages
the members' logits (``medview.inference.ensemble``). The test part plays no part.

Graded heads: an ordinal head's members regress one value each, and the package averages them,
so the cut points and sigma are fitted on the OOF values (one member's, slightly noisier than
the mean: sigma errs wide), and the flag threshold on the OOF flag probabilities. A recipe whose
validation part alone keeps the population's grade mix (``cv_fit="val"``: knee, whose training
part is capped per grade) fits them on the OOF predictions of its validation images only.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable

import numpy as np

from medview.progress import ProgressFn
from medview.training import checkpoint as ckpt
from medview.training import datasets, engine, metrics
from medview.training.recipes import RECIPES, Recipe


class FoldError(ValueError):
    """The recipe cannot be trained as a fold ensemble."""


def fold_parts(samples: list[datasets.Sample], k: int, seed: int = datasets.SEED) -> list[list[datasets.Sample]]:
    """``samples`` dealt into ``k`` folds: whole groups, class by class, each to the fold that
    has the fewest samples of that class so far (ties: the fewest samples overall)."""
    if k < 2:
        raise FoldError("a fold ensemble needs at least 2 folds")
    groups: dict[str, list[datasets.Sample]] = {}
    for s in sorted(samples, key=lambda s: str(s.image)):
        groups.setdefault(s.group or str(s.image), []).append(s)
    by_class: dict[Any, list[str]] = {}
    for g, members in sorted(groups.items()):
        by_class.setdefault(members[0].target, []).append(g)
    rng = random.Random(seed)
    folds: list[list[datasets.Sample]] = [[] for _ in range(k)]
    for key in sorted(by_class, key=str):
        names = by_class[key]
        rng.shuffle(names)
        names.sort(key=lambda g: -len(groups[g]))  # big groups first, so the sizes even out
        of_class = [0] * k
        for g in names:
            i = min(range(k), key=lambda j: (of_class[j], len(folds[j]), j))
            folds[i].extend(groups[g])
            of_class[i] += len(groups[g])
    if min(len(f) for f in folds) == 0:
        raise FoldError(f"{len(samples)} samples cannot fill {k} folds")
    return [sorted(f, key=lambda s: str(s.image)) for f in folds]


def fold_splits(split: datasets.Split, k: int) -> list[datasets.Split]:
    """K splits over ``split``'s train + validation parts; each keeps ``split``'s test part."""
    parts = fold_parts(split.train + split.val, k)
    out = []
    for i, val in enumerate(parts):
        train = [s for j, p in enumerate(parts) if j != i for s in p]
        out.append(datasets.Split(
            train, val, split.test,
            f"fold {i + 1} of {k} over the train + validation parts of: {split.description}"))
    return out


def member_name(model_id: str, i: int) -> str:
    """The checkpoint folder of member ``i`` (0-based) of ``model_id``'s ensemble."""
    return f"{model_id}-fold{i + 1}"


def train_member(model_id: str, i: int, k: int, name: str, split: datasets.Split,
                 progress: ProgressFn | None = None, **train_kw) -> tuple[dict[str, Any], Any]:
    """Member ``i`` of ``k``: trained into checkpoint ``name`` (uncalibrated: the ensemble is
    calibrated as a whole), returned with its best weights loaded, in eval mode."""
    from medview.training import runner

    def sub(f: float, msg: str = "") -> None:
        if progress:
            progress((i + f) / k, f"member {i + 1}/{k}: {msg}")

    st = runner.train_model(model_id, progress=sub, checkpoint_name=name, split=split, calibrate=False, **train_kw)
    recipe = RECIPES[model_id]
    net = runner._net(recipe, recipe.new_manifest())
    net.load_state_dict(ckpt.load_weights(ckpt.checkpoint_dir(name) / "best.safetensors"))
    return st, net.eval()


def save_ensemble(model_id: str, members: list, state: dict[str, Any]) -> None:
    """The members' weights as one ensemble checkpoint (``members.<i>.`` tensors) and its state."""
    from medview.inference.networks import stack_states

    d = ckpt.checkpoint_dir(model_id)
    d.mkdir(parents=True, exist_ok=True)
    ckpt.save_weights(stack_states([n.state_dict() for n in members]), d / "best.safetensors")
    ckpt.write_state(model_id, state)


def check_recipe(recipe: Recipe) -> None:
    if recipe.kind != "classification":
        raise FoldError(f"{recipe.id}: fold ensembles are for classifiers (this recipe is {recipe.kind})")
    if recipe.cv_fit not in ("pooled", "val"):
        raise FoldError(f"{recipe.id}: cv_fit must be 'pooled' or 'val', not {recipe.cv_fit!r}")


def train_folds(model_id: str, k: int, minutes: float | None = None, init: str | None = None,
                fresh: bool = False, progress: ProgressFn | None = None, cancelled=None,
                log: Callable[[str], None] = engine.say, max_epochs: int | None = None) -> dict[str, Any]:
    """Train the K members of ``model_id``'s ensemble, calibrate them on their OOF predictions and
    write the ensemble's checkpoint (``checkpoints/<model_id>/best.safetensors`` + state)."""
    from medview.inference import ordinal
    from medview.training import runner

    recipe = RECIPES[model_id]
    check_recipe(recipe)
    manifest = recipe.new_manifest()
    ordinal_head = ordinal.is_ordinal(manifest["output"])
    base = recipe.split()
    splits = fold_splits(base, k)
    t0 = time.monotonic()
    members, fold_states, oof = [], [], []
    for i, sp in enumerate(splits):
        log(f"{model_id}: member {i + 1} of {k}: train {len(sp.train)}, choose on {len(sp.val)}")

        st, net = train_member(model_id, i, k, member_name(model_id, i), sp, progress=progress, minutes=minutes,
                               init=init, fresh=fresh, cancelled=cancelled, log=log, max_epochs=max_epochs)
        items = runner.cache_items(recipe, sp.val, manifest)
        if ordinal_head:  # the regressed value, with the manifest's TTA as the app computes it
            oof.append((items, np.array([[runner.graded_values(recipe, net, it, manifest)] for it in items])))
        else:
            oof.append((items, _logits(net, items)))
        members.append(net)
        fold_states.append({"fold": i + 1, "train": len(sp.train), "val": len(sp.val),
                            "best": st["best"], "best_epoch": st["best_epoch"], "epochs": st.get("epoch"),
                            "elapsed_s": st.get("elapsed_s"), "val_names": [s.name for s in sp.val]})
    items = [it for its, _ in oof for it in its]
    logits = np.concatenate([lg for _, lg in oof])
    y = np.array([it["y"] for it in items])
    state: dict[str, Any] = {"folds": fold_states, "members": k, "init": init if init is not None else recipe.init_from,
                             "train_minutes": minutes if minutes is not None else recipe.minutes,
                             "seed": datasets.SEED, "elapsed_s": time.monotonic() - t0}
    val_names = {x.name for x in base.val}
    fit = np.array([recipe.cv_fit == "pooled" or it["name"] in val_names for it in items])
    fitted_on = (f"{int(fit.sum())} out-of-fold predictions"
                 + (" of the validation part's images (its natural grade mix)" if recipe.cv_fit == "val" else ""))
    if ordinal_head:
        from medview.training.ordinal_fit import fit as fit_cuts

        spec = fit_cuts(logits[fit, 0], y[fit], len(manifest["output"]["classes"]))
        manifest["output"]["ordinal"] = {"cut_points": spec["cut_points"], "sigma": spec["sigma"]}
        state["ordinal"] = {**spec, "fitted_on": fitted_on}
        probs = ordinal.probabilities_np(logits[:, 0], spec["cut_points"], spec["sigma"])
        log(f"ordinal head fitted on {fitted_on}: {spec}")
    else:
        if recipe.calibrate:
            from medview.training import calibration

            temp, bias, info = calibration.fit(logits[fit], y[fit], bias=recipe.calibrate == "temperature+bias")
            for net in members:
                calibration.fold(net, temp, bias)
            logits = logits / temp + bias
            state["calibration"] = {"temperature": temp, "bias": [float(b) for b in bias], **info,
                                    "fitted_on": fitted_on}
            log(f"calibration on the out-of-fold predictions: {state['calibration']}")
        probs = _softmax(logits)
    grading = manifest["output"].get("grading")
    if (grading or {}).get("flag"):
        flag = grading["flag"]
        lo = int(flag["min_grade"])
        thr = metrics.choose_flag_threshold(y[fit] >= lo, probs[fit, lo:].sum(1))
        flag["threshold"] = round(float(thr), 4)
        state["grading_threshold"] = thr
        log(f"{flag['name']} threshold chosen on {fitted_on} (Youden J): {thr:.4f}")
    values = logits[:, 0] if ordinal_head else None
    rep = runner.cls_metrics(recipe, probs, y, grading=grading)
    state["cv"] = _cv_record(rep, items, y, probs, values)
    if not fit.all():  # the figures on the part the head was fitted on: the model-choice score
        rep = runner.cls_metrics(recipe, probs[fit], y[fit], grading=grading)
        state["cv_fit"] = _cv_record(rep, [it for it, f in zip(items, fit, strict=True) if f], y[fit], probs[fit],
                                     None if values is None else values[fit])
        state["cv_fit"]["fitted_on"] = fitted_on
    state["best"] = float(rep[recipe.select])
    state["best_epoch"] = [f["best_epoch"] for f in fold_states]
    state["epoch"] = [f["epochs"] for f in fold_states]
    state["split"] = datasets.pooled_split_record(base, k)
    save_ensemble(model_id, members, state)
    log(f"{model_id}: {k} members; out-of-fold {recipe.select} {state['best']:.4f}, "
        f"accuracy {rep['accuracy']:.4f} on {int(fit.sum())} images")
    return state


def _cv_record(rep: dict, items: list[dict], y: np.ndarray, probs: np.ndarray,
               values: np.ndarray | None = None) -> dict[str, Any]:
    out = {key: v for key, v in rep.items() if isinstance(v, (int, float, list, str))}
    out["n"] = len(y)
    out["predictions"] = [{"name": it["name"], "truth": int(t), "probs": [round(float(p), 4) for p in pr]}
                          for it, t, pr in zip(items, y, probs, strict=True)]
    if values is not None:  # an ordinal head's raw OOF values (what the cut points were fitted on)
        for row, v in zip(out["predictions"], values, strict=True):
            row["value"] = round(float(v), 5)
    return out


def _logits(net, items: list[dict]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(it["x"][None])).numpy() for it in items])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
