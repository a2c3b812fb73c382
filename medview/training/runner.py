"""Train a recipe: load + cache data, build network, loop, predict, measure on validation.

``train_model`` is a plain function (progress callback, cancel check) so the CLI, tests and a
notebook call the same code; held-out evaluation of a package is ``medview.training.evaluation``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from medview.inference import ordinal
from medview.progress import ProgressFn
from medview.training import checkpoint as ckpt
from medview.training import datasets, engine, metrics
from medview.training.inputs import prepare, resize_label, resize_prob
from medview.training.recipes import RECIPES, Recipe


# ---------------------------------------------------------------------------------------------
# data caching (preprocessed exactly as the manifest says)
def _read_target(recipe: Recipe, s: datasets.Sample):
    if "label_array" in s.extra:  # annotation export (already read)
        return np.asarray(s.extra["label_array"]).astype(np.int64)
    if recipe.kind == "classification":
        return int(s.target)
    if recipe.kind == "seg3d":
        return datasets.read_volume(s.target).astype(np.int64)
    return datasets.read_mask(s.target).astype(np.int64)


def _read_input(recipe: Recipe, s: datasets.Sample) -> np.ndarray:
    if "array" in s.extra:
        return s.extra["array"]
    if recipe.kind == "seg3d":
        return datasets.read_volume(s.image)
    return datasets.read_image(s.image)


def cache_items(recipe: Recipe, samples: list[datasets.Sample], manifest: dict | None = None,
                progress: ProgressFn | None = None) -> list[dict[str, Any]]:
    """Per sample: ``x`` network input (C, ...), ``y`` target (class or label map at network
    resolution), ``y_full`` label at the original resolution, ``fov`` when the data set has one."""
    inp = (manifest or recipe.manifest)["input"]
    out = []
    for i, s in enumerate(samples):
        raw = _read_input(recipe, s)
        rgb = False if recipe.kind == "seg3d" else s.extra.get("rgb")
        x = prepare(raw, inp, rgb=rgb)
        item: dict[str, Any] = {"name": s.name, "x": x}
        target = _read_target(recipe, s)
        if recipe.kind == "classification":
            item["y"] = target
        else:
            item["y_full"] = target
            item["y"] = resize_label(target, x.shape[1:]) if target.shape != x.shape[1:] else target
            if "fov" in s.extra:
                item["fov"] = datasets.read_mask(s.extra["fov"])
        out.append(item)
        if progress:
            progress((i + 1) / len(samples), f"reading {s.name}")
    return out


# ---------------------------------------------------------------------------------------------
# prediction the way the inference pipeline does it
def predict_probs(recipe: Recipe, net, item: dict[str, Any], manifest: dict | None = None,
                  setting: str = "accurate", whole: bool = False) -> np.ndarray:
    """Class probabilities (classification) or per-class probability maps at the ORIGINAL
    image resolution (segmentation). ``setting``: the TTA views ("accurate": the manifest's
    output.tta, "fast": one pass); ``whole``: one pass over the whole image, as the app does
    when it fits memory (else sliding windows of input.roi_size)."""
    import torch
    from monai.inferers import sliding_window_inference

    from medview.inference import preprocess as pp
    from medview.inference.package import ModelPackage
    from medview.inference.pipeline import class_outputs, tta_mean, tta_mode

    m = manifest or recipe.manifest
    pkg = ModelPackage(Path("."), m)
    x = item["x"]
    if recipe.kind == "classification":
        with torch.no_grad():  # the pipeline's own function: same TTA as the app
            return class_outputs(pkg, net, torch.from_numpy(x[None]), setting)[0].numpy()
    inp = m["input"]
    xp, pads = pp.pad_to_multiple(x, int(inp.get("pad_to_multiple") or 1))
    roi = list(xp.shape[1:]) if whole else (inp.get("roi_size") or list(xp.shape[1:]))
    def probs(t):
        return torch.softmax(sliding_window_inference(t, roi, 4, net, overlap=0.25, mode="gaussian"), 1)

    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(xp[None]))
        mode = tta_mode(pkg, t.ndim - 2, setting)
        prob = (tta_mean(mode, probs, t, dense=True) if mode else probs(t))[0].numpy()
    prob = pp.unpad(prob, pads)
    full = item["y_full"].shape
    if tuple(prob.shape[1:]) != tuple(full):
        prob = resize_prob(prob, full)
    return prob


def seg_metrics(recipe: Recipe, probs: list[np.ndarray], items: list[dict], with_auc: bool = False,
                threshold: float = 0.5) -> dict[str, Any]:
    labels = recipe.manifest["output"]["labels"]
    out: dict[str, Any] = {}
    if recipe.id == "retina-vessels":
        scores, truth, per = [], [], []
        for p, it in zip(probs, items, strict=False):
            fov = it["fov"].astype(bool)
            pv, tv = p[1][fov], it["y_full"][fov] > 0
            scores.append(pv)
            truth.append(tv)
            per.append(metrics.dice(pv >= threshold, tv))
        s, t = np.concatenate(scores), np.concatenate(truth)
        out["f1"] = metrics.dice(s >= threshold, t)  # pixel-pooled inside FOV (F1 == Dice)
        out["f1_mean_per_image"] = float(np.mean(per))
        if with_auc:
            out["auc"] = metrics.roc_auc_fast(t, s)
        out["threshold"] = threshold
        return out
    per_label: dict[str, list[float]] = {lab["name"]: [] for lab in labels}
    vols: dict[str, list[tuple[float, float]]] = {lab["name"]: [] for lab in labels}
    for p, it in zip(probs, items, strict=False):
        pred = p.argmax(0)
        for lab in labels:
            per_label[lab["name"]].append(metrics.dice(pred == lab["value"], it["y_full"] == lab["value"]))
            vols[lab["name"]].append((float((pred == lab["value"]).sum()), float((it["y_full"] == lab["value"]).sum())))
    for name, v in per_label.items():
        out[f"dice_{name.replace(' ', '_')}"] = float(np.mean(v))
    out["mean_dice"] = float(np.mean([np.mean(v) for v in per_label.values()]))
    out["dice"] = out["mean_dice"]
    out["_volumes_voxels"] = vols
    return out


def cls_metrics(recipe: Recipe, probs: np.ndarray, y: np.ndarray, threshold: float | None = None,
                grading: dict | None = None) -> dict:
    classes = recipe.manifest["output"]["classes"]
    rep = metrics.classification_report(y, probs, classes, positive=recipe.positive, threshold=threshold)
    rep["accuracy_plus_macro_auc"] = rep["accuracy"] + rep.get("macro_auc", float("nan"))
    if recipe.positive:
        rep[f"{recipe.positive}_auc"] = rep["positive_auc"]
        rep["melanoma_auc_plus_acc"] = rep["positive_auc"] + rep["accuracy"]
    grading = grading or recipe.manifest["output"].get("grading")
    if grading:
        rep.update(metrics.grading_report(y, probs, grading))
        rep["qwk_plus_flag_auc"] = rep["qwk"] + rep.get("flag_auc", float("nan"))
    return rep


# ---------------------------------------------------------------------------------------------
def _net(recipe: Recipe, manifest: dict):
    """One network of the recipe (a fold ensemble trains its members one by one)."""
    from medview.inference.networks import build_network

    return build_network(manifest["network"]["architecture"], manifest["network"]["args"])


def init_weights(net, state: dict, log: Callable[[str], None] = print) -> None:
    """Copy every tensor whose name and shape fit; an RGB first conv is built from a grey one
    (weights repeated over channels / 3). Classifier heads of another size are left random."""
    own = net.state_dict()
    used, skipped = 0, []
    for k, v in state.items():
        if k.startswith(("fc.", "class_layers.")):  # another task's classifier head: start fresh
            skipped.append(k)
            continue
        if k not in own:
            skipped.append(k)
            continue
        if own[k].shape == v.shape:
            own[k] = v.clone()
            used += 1
        elif v.ndim >= 3 and own[k].ndim == v.ndim and v.shape[1] == 1 and own[k].shape[0] == v.shape[0] \
                and own[k].shape[2:] == v.shape[2:]:
            own[k] = v.repeat(1, own[k].shape[1], *([1] * (v.ndim - 2))) / own[k].shape[1]
            used += 1
        else:
            skipped.append(k)
    net.load_state_dict(own)
    log(f"initialised {used} tensors from the given weights; {len(skipped)} left as built: {skipped[:6]}")


def ordinal_loss(ce, weight: float):
    """Cross-entropy plus ``weight`` x the squared error of the expected grade (in grade units)."""
    import torch

    def loss(logits, y):
        p = torch.softmax(logits, dim=1)
        grades = torch.arange(p.shape[1], dtype=p.dtype, device=p.device)
        return ce(logits, y) + weight * ((p * grades).sum(1) - y.to(p.dtype)).pow(2).mean()
    return loss


def _batches_cls(recipe: Recipe, cfg: engine.TrainConfig):
    import torch

    def make(data, rng):
        X, Y = data
        order = rng.permutation(len(Y))
        for i in range(0, len(order) - cfg.batch_size // 2 + 1 if len(order) > cfg.batch_size else 1,
                       cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            x = torch.from_numpy(X[idx].copy())
            x, _ = engine.augment_2d(x, None, rng, recipe.augment)
            yield x, torch.from_numpy(Y[idx])
    return make


def _batches_seg2d(recipe: Recipe, cfg: engine.TrainConfig):
    import torch

    def make(data, rng):
        xs, ys = data
        order = np.concatenate([rng.permutation(len(xs)) for _ in range(cfg.patches_per_image)])
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            bx, by = engine.random_crops([xs[j] for j in idx], [ys[j] for j in idx], cfg.patch, rng)
            x, y = engine.augment_2d(torch.from_numpy(bx), torch.from_numpy(by), rng, recipe.augment)
            yield x.contiguous(), y[:, None].contiguous()
    return make


def _batches_seg3d(recipe: Recipe, cfg: engine.TrainConfig):
    import torch

    def make(data, rng):
        xs, ys = data
        order = rng.permutation(len(xs))
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            bx, by = engine.random_crops([xs[j] for j in idx], [ys[j] for j in idx], cfg.patch, rng,
                                         fg_fraction=0.0)
            x = torch.from_numpy(bx)
            g = recipe.augment.get("gain", 0.0)
            if g:
                b = x.shape[0]
                x = x * torch.from_numpy(rng.uniform(1 - g, 1 + g, (b, 1, 1, 1, 1)).astype(np.float32)) \
                    + torch.from_numpy(rng.uniform(-g, g, (b, 1, 1, 1, 1)).astype(np.float32))
            if recipe.augment.get("flip_lr", False):
                m = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
                x[m] = x[m].flip(-1)
                by = torch.from_numpy(by)
                by[m] = by[m].flip(-1)
                by = by.numpy()
            yield x.contiguous(), torch.from_numpy(by)[:, None].contiguous()
    return make


def train_model(
    model_id: str,
    minutes: float | None = None,
    data: Path | None = None,
    init: str | None = None,
    out: Path | None = None,
    fresh: bool = False,
    progress: ProgressFn | None = None,
    cancelled=None,
    log: Callable[[str], None] = engine.say,
    max_epochs: int | None = None,
    checkpoint_name: str | None = None,
    lr: float | None = None,
    split: datasets.Split | None = None,
    calibrate: bool = True,
    seed: int | None = None,
) -> dict[str, Any]:
    """Train ``model_id`` (a recipe id) and return the training state (best epoch, history).

    With ``data`` (an annotation training-set export) the recipe's data set is replaced by that
    export, and ``init`` names the model package whose weights start the training. ``lr``
    replaces the peak learning rate (default: the recipe's, halved with ``init``). ``split``
    replaces the recipe's split (a cross-validation fold); ``calibrate=False`` leaves the
    recipe's calibration to the caller (a fold ensemble calibrates on all its folds at once).
    ``seed`` replaces the fixed seed (a seed ensemble's members).
    """
    import torch

    recipe = RECIPES[model_id]
    if recipe.kind == "interactive2d":  # its own loop: simulated clicks (medview.interactive.training)
        from medview.interactive import training as interactive

        return interactive.train(minutes if minutes is not None else recipe.minutes, fresh=fresh,
                                 init=recipe.init_from if init is None else (init or None), log=log,
                                 progress=progress, max_epochs=max_epochs or recipe.max_epochs)
    if recipe.kind == "interactive3d":  # its own loop: simulated 3D clicks (medview.interactive.training3d)
        from medview.interactive import training3d

        return training3d.train(minutes if minutes is not None else recipe.minutes, fresh=fresh,
                                init=recipe.init_from if init is None else (init or None), log=log,
                                progress=progress, max_epochs=max_epochs or recipe.max_epochs)
    manifest = recipe.new_manifest()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if data is not None:
        from medview.training import export_data

        split = export_data.export_split(Path(data), recipe)
    elif split is None:
        split = recipe.split()
    log(f"{model_id}: split {split.summary()}")
    t0 = time.monotonic()
    train_items = cache_items(recipe, split.train, manifest)
    val_items = cache_items(recipe, split.val, manifest) if split.val else train_items[: max(1, len(train_items) // 5)]
    log(f"{model_id}: data cached in {time.monotonic() - t0:.1f} s")
    seed = datasets.SEED if seed is None else int(seed)
    engine.seed_everything(seed)
    net = _net(recipe, manifest)
    init = init if init is not None else (recipe.init_from if data is None else None)
    if init:
        init_weights(net, _init_state(init, log), log)
    cfg = engine.TrainConfig(
        model_id=checkpoint_name or (model_id if data is None else f"{model_id}-finetune"),
        kind=recipe.kind, minutes=minutes if minutes is not None else recipe.minutes,
        max_epochs=max_epochs or recipe.max_epochs, batch_size=recipe.batch_size, lr=recipe.lr,
        patch=recipe.patch, val_every=recipe.val_every, seed=seed, augment=recipe.augment,
        fresh=fresh, warmup_s=min(20.0, (minutes if minutes is not None else recipe.minutes) * 6),
    )
    if init:
        cfg.lr = recipe.lr / 2
    if lr is not None:
        cfg.lr = lr
    if recipe.kind == "classification":
        import torch.nn as nn

        X = np.stack([it["x"] for it in train_items]).astype(np.float32)
        Y = np.array([it["y"] for it in train_items], dtype=np.int64)
        counts = np.bincount(Y, minlength=len(manifest["output"]["classes"])).astype(np.float64)
        w = counts.sum() / np.maximum(counts, 1) / len(counts)
        ce = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
        loss_fn = ordinal_loss(ce, recipe.ordinal_weight) if recipe.ordinal_weight else ce
        ordinal_head = ordinal.is_ordinal(manifest["output"])
        if ordinal_head:  # one graded value, regressed on the grade; cut points fitted on validation
            def loss_fn(out, y):
                return torch.nn.functional.smooth_l1_loss(out[:, 0], y.to(out.dtype))
        data_, make = (X, Y), _batches_cls(recipe, cfg)

        def recalibrate(n):  # with the training augmentation, so the statistics match training
            engine.recalibrate_batchnorm(n, (x for x, _ in make(data_, np.random.default_rng(0))))

        def validate(n):
            if ordinal_head:  # cut points + sigma for these weights, on validation (saved with the best)
                fit_ordinal_head(recipe, n, val_items, manifest)
            probs = np.stack([predict_probs(recipe, n, it, manifest) for it in val_items])
            rep = cls_metrics(recipe, probs, np.array([it["y"] for it in val_items]))
            sel = rep[recipe.select]
            sel = -1.0 if np.isnan(sel) else float(sel)
            return sel + 1e-3 * (-_nll(probs, [it["y"] for it in val_items])), {
                "acc": rep["accuracy"], "auc": rep.get("macro_auc", float("nan"))}
    else:
        from monai.losses import DiceCELoss

        recalibrate = None

        dl = DiceCELoss(to_onehot_y=True, softmax=True)
        loss_fn = dl
        xs = [it["x"] for it in train_items]
        ys = [it["y"] for it in train_items]
        if recipe.kind == "seg3d":
            cfg.patch = recipe.patch
            make = _batches_seg3d(recipe, cfg)
        else:
            cfg.patches_per_image = max(1, 200 // max(len(xs), 1)) if len(xs) < 100 else 1
            make = _batches_seg2d(recipe, cfg)
        data_ = (xs, ys)

        def validate(n):
            probs = [predict_probs(recipe, n, it, manifest) for it in val_items]
            rep = seg_metrics(recipe, probs, val_items)
            return float(rep[recipe.select]), {k: v for k, v in rep.items() if not k.startswith("_")
                                               and isinstance(v, float)}

    state = engine.train(cfg, net, data_, validate, make, loss_fn, progress=progress, cancelled=cancelled, log=log,
                         recalibrate=recalibrate if recipe.kind == "classification" else None)
    if recipe.calibrate and recipe.kind == "classification" and calibrate:
        state["calibration"] = calibrate_checkpoint(recipe, cfg.model_id, net, val_items, log)
    if recipe.kind == "classification" and ordinal.is_ordinal(manifest["output"]):
        net.load_state_dict(ckpt.load_weights(ckpt.checkpoint_dir(cfg.model_id) / "best.safetensors"))
        net.eval()
        state["ordinal"] = fit_ordinal_head(recipe, net, val_items, manifest)
        log(f"ordinal head fitted on validation with the best weights: {state['ordinal']}")
    if recipe.kind == "classification" and (manifest["output"].get("grading") or {}).get("flag"):
        state["grading_threshold"] = choose_grading_threshold(recipe, cfg.model_id, net, val_items, manifest, log)
    state["train_minutes"] = cfg.minutes
    state["split"] = {"description": split.description, **split.summary(),
                      "test": [s.name for s in split.test]}
    state["init"] = init
    state["seed"] = seed
    ckpt.write_state(cfg.model_id, state)
    if data is not None:
        _write_finetuned(recipe, manifest, cfg, init, out, state, log)
    return state


def calibrate_checkpoint(recipe: Recipe, name: str, net, val_items: list[dict], log=engine.say) -> dict:
    """Temperature (+ class bias) fitted on validation, folded into best.safetensors; the
    uncalibrated weights stay in best_raw.safetensors (the source when run again)."""
    import shutil

    from medview.training import calibration

    d = ckpt.checkpoint_dir(name)
    if not (d / "best_raw.safetensors").exists():
        shutil.copy2(d / "best.safetensors", d / "best_raw.safetensors")
    net.load_state_dict(ckpt.load_weights(d / "best_raw.safetensors"))
    info = calibration.calibrate(net, val_items, bias=recipe.calibrate == "temperature+bias")
    ckpt.save_weights(net.state_dict(), d / "best.safetensors")
    log(f"calibration on validation: {info}")
    return info


def default_setting(manifest: dict) -> str:
    """The TTA setting a package runs at unless asked otherwise (``output.tta_default``). A graded
    head's cut points and flag threshold are fitted on values at this setting: fitted on averaged
    views but run on one pass, the values would spread wider than the cut points expect."""
    from medview.inference.package import ModelPackage
    from medview.inference.tta import resolve_setting

    return resolve_setting(ModelPackage(Path("."), manifest), None)


def graded_values(recipe: Recipe, net, item: dict[str, Any], manifest: dict) -> float:
    """An ordinal head's raw value for one item, at the package's default TTA setting."""
    import torch

    from medview.inference.package import ModelPackage
    from medview.inference.tta import tta_mean, tta_mode

    x = torch.from_numpy(item["x"][None])
    mode = tta_mode(ModelPackage(Path("."), manifest), x.ndim - 2, default_setting(manifest))
    with torch.no_grad():
        out = tta_mean(mode, net, x, dense=False) if mode else net(x)
    return float(out[0, 0])


def fit_ordinal_head(recipe: Recipe, net, val_items: list[dict], manifest: dict) -> dict[str, Any]:
    """Fit ``output.ordinal`` (cut points, sigma) on VALIDATION and write it into ``manifest``."""
    from medview.training.ordinal_fit import fit

    v = np.array([graded_values(recipe, net, it, manifest) for it in val_items])
    spec = fit(v, np.array([it["y"] for it in val_items]), len(manifest["output"]["classes"]))
    manifest["output"]["ordinal"] = {"cut_points": spec["cut_points"], "sigma": spec["sigma"]}
    return spec


def choose_grading_threshold(recipe: Recipe, name: str, net, val_items: list[dict], manifest: dict,
                             log=engine.say) -> float:
    """The flag threshold (P(grade >= min_grade)) maximising Youden's J on VALIDATION, with the
    chosen (best) weights at the package's default TTA setting; written into the package's
    output.grading.flag.threshold."""
    net.load_state_dict(ckpt.load_weights(ckpt.checkpoint_dir(name) / "best.safetensors"))
    net.eval()
    flag = manifest["output"]["grading"]["flag"]
    probs = np.stack([predict_probs(recipe, net, it, manifest, setting=default_setting(manifest))
                      for it in val_items])
    y = np.array([it["y"] for it in val_items])
    thr = metrics.choose_flag_threshold(y >= int(flag["min_grade"]), probs[:, int(flag["min_grade"]):].sum(1))
    log(f"{flag['name']} threshold chosen on validation (Youden J): {thr:.4f}")
    return thr


def _nll(probs: np.ndarray, y) -> float:
    y = np.asarray(y)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1))))


def _init_state(init: str, log: Callable[[str], None] = engine.say) -> dict:
    """Weights to start from: a package id / folder (hash-checked) or a safetensors file. A fold
    ensemble's weights start one network from its first member (each member is a whole network)."""
    p = Path(init)
    if p.suffix == ".safetensors" and p.is_file():
        state = ckpt.load_weights(p)
    else:
        from medview.inference.package import find_package, load_network

        state = load_network(find_package(init)).state_dict()
    first = "members.0."
    if state and all(k.startswith("members.") for k in state):
        log(f"{init} is a fold ensemble: starting from its first member")
        state = {k[len(first):]: v for k, v in state.items() if k.startswith(first)}
    return state


def _write_finetuned(recipe: Recipe, manifest: dict, cfg: engine.TrainConfig, init: str | None,
                     out: Path | None, state: dict, log) -> None:
    from medview import config
    from medview.inference.package import write_package

    new_id = f"{recipe.id}-finetuned"
    folder = Path(out) if out else config.user_data_dir() / "models" / new_id
    m = dict(manifest)
    m["id"] = new_id
    m["name"] = manifest["name"] + " (fine-tuned)"
    m["training"] = {"command": f"medview train {recipe.id} --data ... --init {init}", "init": init,
                     "best_epoch": state["best_epoch"], "validation_score": state["best"]}
    sd = ckpt.load_weights(ckpt.checkpoint_dir(cfg.model_id) / "best.safetensors")
    card = (f"# {m['name']}\n\nResearch use only, not for diagnosis.\n\nFine-tuned from `{init}` on an "
            f"annotation export for {cfg.minutes} min; best validation {recipe.select} "
            f"{state['best']:.4f} at epoch {state['best_epoch']} (validation = 20% of the export).\n")
    write_package(folder, m, sd, card)
    log(f"wrote fine-tuned package {folder}")


def save_json(obj: Any, path: Path) -> None:
    def default(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(type(o))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=default))
