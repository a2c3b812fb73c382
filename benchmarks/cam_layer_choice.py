"""Which Grad-CAM target layer and method put the most mass inside the known finding region?
Chosen on the VALIDATION part (the test part is for the card only).

    .venv/bin/python benchmarks/cam_layer_choice.py skin-lesion [--part val] [--layers L1 L2 ...] [--package DIR]

Each candidate layer is written into a temporary copy of the package's manifest (same weights) and
measured with ``medview.training.cam_metrics.cam_in_region`` (as `medview evaluate ID --cam-region`);
one line per layer x method.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medview.inference.package import find_package  # noqa: E402
from medview.training.cam_metrics import cam_in_region  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_id")
    ap.add_argument("--part", default="val", choices=["val", "test"])
    ap.add_argument("--layers", nargs="*", help="default: the encoder's blocks from the bottom up "
                                                 "(UNetEncoderClassifier) or layer1..layer4 (ResNet)")
    ap.add_argument("--package", help="a package folder to measure (default: the bundled MODEL_ID)")
    args = ap.parse_args()
    src = Path(find_package(args.package or args.model_id).path)
    manifest = json.loads((src / "model.json").read_text())
    layers = args.layers
    if not layers:
        if manifest["network"]["architecture"] == "UNetEncoderClassifier":
            layers = ["model" + ".1.submodule" * k + ".0" for k in (3, 2, 1, 0)]
        else:
            layers = ["layer4", "layer3", "layer2", "layer1"]
    with tempfile.TemporaryDirectory() as tmp:
        for layer in layers:
            d = Path(tmp) / layer.replace(".", "_")
            shutil.copytree(src, d)
            m = dict(manifest, gradcam_layer=layer)
            (d / "model.json").write_text(json.dumps(m, indent=2))
            for method in ("gradcam", "gradcam++"):
                r = cam_in_region(args.model_id, package=d, part=args.part, method=method)
                f, a = r["finding_predictions"], r["all_with_mask"]
                print(f"{args.part} layer={layer} method={method}: finding-predicted n={f['n']} "
                      f"inside={f.get('inside_mean')} lift={f.get('lift')}; all n={a['n']} "
                      f"inside={a['inside_mean']} lift={a['lift']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
