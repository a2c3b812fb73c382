"""MODEL_CARD.md of the interactive-2d package, from its training state and the benchmark
output it was measured with (the printed lines are quoted with their commands)."""

from __future__ import annotations

from typing import Any

from medview.training.cards import DATA


def render(state: dict[str, Any], measured: list[tuple[str, str]], notes: list[str]) -> str:
    """``measured``: (command, printed output) pairs of benchmarks/bench_interactive.py."""
    split = state.get("split", {})
    hist = [h for h in state.get("history", []) if "val_score" in h]
    best = max(hist, key=lambda h: h["val_score"]) if hist else {}
    lines = [
        "# Interactive segmentation from clicks, boxes and scribbles (`interactive-2d`)", "",
        "**Intended use: research use only, not for diagnosis.** An annotation aid inside MedView (the AI assist "
        "tool of the annotation panel): the annotator's clicks, box or scribble say what to segment; every result "
        "is an ordinary, undoable edit that the annotator checks. Not cleared by any regulator.", "",
        "## Data", "",
        f"- Data sets: {DATA['interactive-2d']['short']}. {DATA['interactive-2d']['citation']}",
        f"- Licence / terms: {DATA['interactive-2d']['licence']}",
        f"- Split: {split.get('description', '')}.",
        "- Training objects: " + ", ".join(f"{k[6:]} {v}" for k, v in split.items() if k.startswith("train_"))
        + "; validation objects: " + ", ".join(f"{k[4:]} {v}" for k, v in split.items() if k.startswith("val_"))
        + ". Hippocampus objects are 2D slices (axial, coronal, sagittal; the whole structure and each of its "
        "two labels) of the training volumes.",
        "- Not used: BUSI (this copy has no masks), DRIVE (thin vessels, not objects), TCIA series (no masks).", "",
        "## Model", "",
        "- Network: MONAI `UNet` (2D, channels 16-32-64-128-256, 2 residual units per level), 6 input channels: "
        "the image (RGB, or grey repeated x3; z-score over the whole image) and three guidance channels: "
        "positive clicks/scribbles, negative clicks/scribbles (discs of radius 3 px at 128 px), previous mask.",
        "- Input: a square view of the image resized to 128 x 128: the whole image for the first click, then the "
        "square around the current mask and prompts enlarged 1.6x (RITM zoom-in); a box gives the view (1.3x), a "
        "positive click at its centre and the limit of the result. Output: softmax background / object, "
        "threshold 0.5, resampled to the image; parts no positive prompt touches are dropped; a small disc under "
        "each click follows the click.",
        "- 3D: the prompted slice is segmented, then its mask is carried slice by slice to the neighbours "
        "(each from the neighbour's mask, no click), until the mask vanishes, shrinks below 25% or grows beyond "
        "250% of its neighbour, overlaps it by IoU < 0.3, falls below 35% of the prompted slice's area (chosen on "
        "the validation volumes), agrees (Dice >= 0.9) with what the slice held, reaches a slice the user "
        "prompted, or Stop is pressed.",
        "- Prompted images are averaged with their left-right mirror (chosen on the polyp validation images: "
        "NoC@90 2.60 vs 2.90 without; four flips 2.86); propagation runs one pass per slice.", "",
        "## Training", "",
        f"- Command: `medview train interactive-2d --minutes {state.get('train_minutes', 0):g} --fresh` "
        f"(fixed seed {state.get('seed')}; initialised from the bundled `polyp` U-Net, the guidance input "
        "weights new; AdamW, cosine schedule over the time budget; checkpoint chosen on validation Dice after "
        "3 and 5 simulated clicks).",
        "- Simulated clicks (RITM / DeepEdit protocol): 1-3 positive clicks (inscribed centre or random interior "
        "points), 0-2 negative clicks near the object, a scribble in 15% of samples, a perturbed previous mask "
        "(grown / shrunk / shifted / cut / extra blob) with its corrective click at the largest error, the "
        "neighbouring slice's mask without clicks for propagation (targets may be empty past the object's end), "
        "and in 35% of batches one round of the network's own prediction as previous mask with a new "
        "corrective click; flips, 90-degree turns and intensity jitter.",
        f"- Time: {state.get('elapsed_s', 0) / 60:.1f} min on 2 CPU cores shared with other jobs, "
        f"{state.get('epoch')} epochs of 60 batches of 16; best validation score {state.get('best', 0):.4f} at "
        f"epoch {state.get('best_epoch')}"
        + (": " + ", ".join(f"{k[4:]} {v:.3f}" for k, v in best.items() if k.startswith("val_") and k != "val_score")
           if best else "") + ".", "",
        "## Measured (held-out images: the test splits of the bundled polyp, skin-lesion-seg and hippocampus "
        "models, never seen in training or checkpoint choice)", "",
        "Simulated annotator of `benchmarks/bench_interactive.py`: first click at the centre of the object's "
        "largest inscribed region, each next click at the centre of the largest error region; NoC@85/90 = clicks "
        "to reach Dice 0.85/0.90 (20 when never reached). The brush-only baseline paints one disc per click at "
        "the same points (the largest disc that fits the error there, radius at most 4% of the image's side).", "",
    ]
    for cmd, out in measured:
        lines += ["```", f"$ {cmd}", out.strip(), "```", ""]
    lines += ["## Known limits and failure modes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)
