"""Write a bundled model package (models/<id>/) from the best checkpoint, with its card."""

from __future__ import annotations

from pathlib import Path

from medview.config import bundled_models_dir
from medview.training import cards
from medview.training import checkpoint as ckpt
from medview.training.recipes import RECIPES, train_command

__all__ = ["package_from_checkpoint", "train_command"]


def package_from_checkpoint(model_id: str, out: Path | None = None, checkpoint_name: str | None = None,
                            card: str | None = None) -> Path:
    from medview.inference.package import write_package

    recipe = RECIPES[model_id]
    interactive = recipe.kind in ("interactive2d", "interactive3d")
    if interactive:
        from medview.interactive import card as interactive_card  # also registers their card data
    name = checkpoint_name or model_id
    state = ckpt.read_state(name) or {}
    sd = ckpt.load_weights(ckpt.checkpoint_dir(name) / "best.safetensors")
    m = recipe.new_manifest()
    if state.get("members"):  # an ensemble (medview.training.folds / .seeds), of the size it was trained with
        m["network"]["members"] = int(state["members"])
    if state.get("ordinal"):  # an ordinal head's cut points and sigma, fitted on validation
        m["output"]["ordinal"] = {"cut_points": state["ordinal"]["cut_points"], "sigma": state["ordinal"]["sigma"]}
    if state.get("grading_threshold") is not None:
        m["output"]["grading"]["flag"]["threshold"] = round(float(state["grading_threshold"]), 4)
    m["training"] = {
        "command": train_command(model_id, state),
        "data": cards.DATA[model_id]["short"],
        "split": state.get("split", {}).get("description", ""),
        "minutes": state.get("train_minutes"),
        "epochs": state.get("epoch"),
        "best_epoch": state.get("best_epoch"),
        "seed": state.get("seed"),
        "init": state.get("init"),
        "elapsed_s": state.get("elapsed_s"),
        "best_score": state.get("best"),  # so a card can be rebuilt from the package alone
    }
    if state.get("ensemble") == "seeds":
        m["training"]["ensemble"] = "seeds"
        m["training"]["seeds"] = [{k: r[k] for k in ("member", "seed", "best", "best_epoch")}
                                  for r in state.get("seeds", [])]
    elif state.get("members"):
        m["training"]["ensemble"] = "folds"
        m["training"]["folds"] = [{k: f[k] for k in ("fold", "train", "val", "best", "best_epoch")}
                                  for f in state.get("folds", [])]
        m["training"]["cross_validation"] = {k: v for k, v in (state.get("cv") or {}).items()
                                             if isinstance(v, (int, float))}
    folder = Path(out) if out else bundled_models_dir() / model_id
    if card is None and interactive:
        # new weights: the old card's figures no longer describe them; the measured section comes
        # from benchmarks/bench_interactive.py (`python -m medview.interactive.card`)
        render = interactive_card.render_3d if recipe.kind == "interactive3d" else interactive_card.render
        card = render(state, [], ["Not measured yet (benchmarks/bench_interactive.py)."])
    existing = folder / "MODEL_CARD.md"
    text = card or (existing.read_text() if existing.exists() else cards.render(model_id, state, None))
    write_package(folder, m, sd, text)
    return folder
