"""Packaging an interactive model's checkpoint (`medview train interactive-3d --out DIR`) writes a
package with a fresh card to DIR and leaves the bundled package and its card alone."""

from __future__ import annotations

from medview.config import bundled_models_dir
from medview.inference.networks import build_network
from medview.inference.package import find_package
from medview.training import checkpoint as ckpt
from medview.training.packaging import package_from_checkpoint
from medview.training.recipes import RECIPES


def test_interactive_3d_packaged_to_out_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEW_CHECKPOINTS", str(tmp_path / "ckpt"))
    m = RECIPES["interactive-3d"].manifest
    net = build_network(m["network"]["architecture"], m["network"]["args"])
    ckpt.checkpoint_dir("interactive-3d").mkdir(parents=True)
    ckpt.save_weights(net.state_dict(), ckpt.checkpoint_dir("interactive-3d") / "best.safetensors")
    ckpt.write_state("interactive-3d", {"epoch": 2, "best_epoch": 1, "best": 0.5, "seed": 1, "train_minutes": 1,
                                        "init": "interactive-3d", "split": {"description": "toy"}})
    bundled_card = (bundled_models_dir() / "interactive-3d" / "MODEL_CARD.md").read_text()
    out = package_from_checkpoint("interactive-3d", out=tmp_path / "pkg")
    pkg = find_package(str(out))
    assert pkg.id == "interactive-3d" and (out / "weights.safetensors").is_file()
    card = (out / "MODEL_CARD.md").read_text()
    assert "Not measured yet" in card and "research use only" in card.lower()
    assert (bundled_models_dir() / "interactive-3d" / "MODEL_CARD.md").read_text() == bundled_card
