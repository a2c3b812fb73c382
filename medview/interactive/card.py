"""MODEL_CARD.md of the interactive packages (interactive-2d, interactive-3d), from their
training state and the benchmark output they were measured with (the printed lines are quoted
with their commands).

    python -m medview.interactive.card interactive-3d --bench "COMMAND" OUTPUT.txt [...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medview.training.cards import DATA
from medview.training.recipes import RECIPES, train_command

DATA.setdefault("interactive-3d", {
    "short": "MSD Task04 Hippocampus (training part of the bundled hippocampus model's split)",
    "citation": DATA["hippocampus"]["citation"],
    "licence": "CC-BY-SA 4.0 (MSD). The weights are MedView's own.",
})


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


OLD_ITER_P = (0.25, 0.25, 0.2, 0.15, 0.15)  # the rounds of runs made before the state recorded them


def _rounds_text(iter_p) -> str:
    p = [float(v) for v in iter_p]
    return f"0-{len(p) - 1} rounds (probabilities " + " / ".join(f"{v:g}" for v in p) + ")"


def render_3d(state: dict[str, Any], measured: list[tuple[str, str]], notes: list[str]) -> str:
    """The card of ``interactive-3d``; ``measured``: (command, printed output) pairs of
    benchmarks/bench_interactive.py."""
    split = state.get("split", {})
    hist = [h for h in state.get("history", []) if "val_score" in h]
    best = max(hist, key=lambda h: h["val_score"]) if hist else {}
    d = DATA["interactive-3d"]
    lines = [
        "# Interactive segmentation from clicks, 3D (`interactive-3d`)", "",
        "**Intended use: research use only, not for diagnosis.** An annotation aid inside MedView (the AI assist "
        "tool of the annotation panel on a 3D MR series): the annotator's clicks say what to segment; every result "
        "is an ordinary, undoable edit that the annotator checks. Not cleared by any regulator.", "",
        "## Data", "",
        f"- Data set: {d['short']}. {d['citation']}",
        f"- Licence / terms: {d['licence']}",
        f"- Split: {split.get('description', '')}.",
        f"- Training volumes: {split.get('train_volumes')}; validation volumes: {split.get('val_volumes')} "
        f"({split.get('val_objects')} objects: the whole hippocampus of every second volume, label 1 or 2 of "
        "the others).", "",
        "## Model", "",
        "- Network: MONAI `UNet` (3D, channels 16-32-64-128-256, strides 2, 2 residual units per level), 4 input "
        "channels: the image (z-score over the part of the box inside the volume) and three guidance channels: "
        "balls (radius 2 cells) at the positive clicks, at the negative clicks, and the previous mask; softmax "
        f"background / object, threshold {RECIPES['interactive-3d'].manifest['output']['threshold']:g} "
        "(chosen on the validation volumes: `python -m medview.interactive.training3d --val-settings --threshold`, "
        "see Known limits).",
        "- Input box (`medview.interactive.model3d.choose_crop`): a 48 x 64 x 48 grid of 1 mm cells; a volume "
        "that fits is seen whole (every MSD hippocampus crop); a larger one through a box around the clicks and "
        "the current mask, zoomed out uniformly until the object's extent x1.4 fits. Voxels of other sizes are "
        "resampled to 1 mm cells (unit steps within 10%). Outside the box the previous mask is kept. The network "
        "sees every series in the orientation of its training volumes (RAS, as the MSD files are stored): a "
        "series stored otherwise (a DICOM series is usually LPS) is permuted / flipped into it first, exactly, "
        "and the mask mapped back (`medview.inference.geometry.AxisMap`; on the sample study's LPS hippocampus "
        "crop one click scores Dice 0.93 against the bundled hippocampus model's labels this way, 0.49 as "
        "stored; `medview self-test` checks it).",
        "- Output: the connected parts a positive click touches; the voxels under each click (radius 1) follow the "
        "click. In the app (`medview.interactive.session.AssistSession`) each click on any slice of a 3D series "
        "is a 3D click: one network pass updates the whole object, one undo step, provenance `interactive-3d "
        "<version>`. Used instead of the 2D network + slice propagation when this package fits the series "
        "(MR or modality unknown, grey, 3D).", "",
        "## Training", "",
        f"- Command: `{train_command('interactive-3d', state)}` (fixed seed {state.get('seed')}; "
        + ("the first command starts from the bundled `hippocampus` segmentation U-Net, each later one continues "
           "from the package the one before made (every tensor copied, half the learning rate); "
           if state.get("init") == "interactive-3d" else
           f"initialised from the bundled `{state.get('init')}` segmentation U-Net, ")
        + "trained on the same training volumes as that U-Net: its input convolution widened with small random "
        "weights for the guidance channels, its output layers cut to background / object; AdamW, cosine schedule "
        "over the time budget; checkpoint chosen on the validation volumes by the mean Dice after 3 and 5 "
        "simulated clicks).",
        "- Simulated clicks (DeepGrow / RITM protocol): objects are the whole hippocampus (50%) and each of its two "
        "labels (25% each); a first click at the object's inscribed centre (70%) or a random deep interior point, "
        "sometimes a second positive click; in 30% of samples a perturbed previous mask (grown / shrunk / shifted / "
        "cut by a plane / an extra blob) with 1-2 corrective clicks at its largest errors; then "
        + _rounds_text(state.get("iter_p") or OLD_ITER_P)
        + " in which the network's own prediction becomes the previous mask and a corrective click is added at "
        "the centre of its largest error region; box jitter of +-3 voxels, left-right mirror, intensity gain / "
        "offset. Loss: Dice + cross-entropy"
        + (" with the cross-entropy of voxels within {1} cells of a click weighted {0:g}x".format(
            1 + state["click_weight"][0], state["click_weight"][1]) if (state.get("click_weight") or [0])[0] else "")
        + ".",
        f"- Time: a {state.get('train_minutes', 0):g}-minute budget ({state.get('elapsed_s', 0) / 60:.1f} min with "
        f"the last validation) on 2 CPU cores (OMP_NUM_THREADS=2, nice {state.get('niceness', 12)}), "
        f"{state.get('epoch')} epochs of up to {state.get('steps_per_epoch', 30)} batches of 4 (the budget cuts "
        "the last ones short); best validation score "
        f"{state.get('best', 0):.4f} at epoch {state.get('best_epoch')}"
        + (": " + ", ".join(f"{k[4:]} {v:.3f}" for k, v in best.items() if k.startswith("val_") and k != "val_score")
           if best else "") + ".", "",
        "## Measured (held-out volumes: the test split of the bundled hippocampus model, never seen in training or "
        "checkpoint choice)", "",
        "Simulated annotator of `benchmarks/bench_interactive.py`: first click at the centre of the object's "
        "largest inscribed region (the whole hippocampus, mask > 0), each next click at the centre of the largest "
        "3D error region; NoC@85/90 = clicks to reach Dice 0.85/0.90 (20 when never reached); latency per click = "
        "the whole interaction. The 2D comparison runs the `interactive-2d` network on the clicked axial slice "
        "with propagation through the neighbouring slices (what AI assist did on 3D series before this model).", "",
    ]
    for cmd, out in measured:
        lines += ["```", f"$ {cmd}", out.strip(), "```", ""]
    lines += [EVALUATE_3D, ""]
    lines += ["## Known limits and failure modes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


EVALUATE_3D = ("`medview evaluate interactive-3d` re-measures the Dice after 1, 3 and 5 simulated clicks on the "
               "held-out volumes (the whole hippocampus and each of its two labels as objects); the figures above "
               "are the benchmark's, which adds NoC, the brush baseline and latency.")


def main(argv=None) -> int:
    """Rewrite a package's MODEL_CARD.md from its checkpoint state and benchmark outputs."""
    from medview.inference.package import find_package
    from medview.training import checkpoint as ckpt

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_id", choices=["interactive-3d"])
    ap.add_argument("--bench", nargs=2, action="append", default=[], metavar=("COMMAND", "OUTPUT"),
                    help="a benchmark command and the file holding what it printed (summary lines are quoted)")
    ap.add_argument("--note", action="append", default=[], help="a 'Known limits' line")
    ap.add_argument("--notes-file", type=Path, default=None, help="'Known limits' lines, one per line")
    args = ap.parse_args(argv)
    if args.notes_file:
        args.note += [t.strip() for t in args.notes_file.read_text(encoding="utf-8").splitlines() if t.strip()]
    state = ckpt.read_state(args.model_id)
    if not state:
        print(f"no checkpoint state for {args.model_id} on this machine", file=sys.stderr)
        return 2
    measured = []
    for cmd, out in args.bench:
        text = Path(out).read_text(encoding="utf-8").splitlines()
        keep = [t for t in text if not t[:1].isdigit() and not t.startswith(("skip", "wrote"))]
        measured.append((cmd, "\n".join(keep)))
    pkg = find_package(args.model_id)
    pkg.card_path.write_text(render_3d(state, measured, args.note), encoding="utf-8")
    print(f"wrote {pkg.card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
