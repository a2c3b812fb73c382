"""`medview train ID --data EXPORT --init ID` fine-tunes on an annotation training-set export
(written by medview.annotation.training_set, the app's own exporter) and writes a usable
package; plus the split / export readers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medview.training import datasets, export_data
from medview.training.recipes import RECIPES


def _blob_case(rng, shape=(20, 24, 20)):
    """A synthetic T1-like crop: two touching ellipsoids (labels 1 and 2) brighter than around."""
    z, y, x = np.indices(shape)
    c = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
    r = ((z - c[0]) / 5) ** 2 + ((y - c[1]) / 9) ** 2 + ((x - c[2]) / 4) ** 2
    lab = np.zeros(shape, np.uint8)
    lab[(r < 1) & (y < c[1])] = 1
    lab[(r < 1) & (y >= c[1])] = 2
    img = (40 + 60 * (lab > 0) + rng.normal(0, 5, shape)).astype(np.int16)
    return img, lab


def _export(tmp_path, n=3, binary=False, name="export"):
    from medview.annotation.labelmap import Label, LabelMap
    from medview.annotation.training_set import export_training_case
    from medview.io.volume import Volume

    rng = np.random.default_rng(0)
    out = tmp_path / name
    for i in range(n):
        img, lab = _blob_case(rng)
        if binary:
            lab = (lab > 0).astype(np.uint8)
        vol = Volume(img, meta={"Modality": "MR", "source_path": f"case{i}.nii.gz"})
        labels = [Label(1, "anterior hippocampus", (255, 200, 0)), Label(2, "posterior hippocampus", (0, 180, 255))]
        lm = LabelMap.from_array(vol, lab, labels[:1] if binary else labels)
        export_training_case(vol, lm, out, case_id=f"case{i}")
    return out


def test_export_reader_pairs_cases(tmp_path):
    out = _export(tmp_path)
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 3
    split = export_data.export_split(out, RECIPES["hippocampus"])
    assert len(split.train) + len(split.val) == 3 and split.val
    s = split.train[0]
    assert s.extra["array"].shape == s.extra["label_array"].shape == (20, 24, 20)
    assert set(np.unique(s.extra["label_array"])) == {0, 1, 2}
    # label values the model does not know are refused, naming the file
    with pytest.raises(export_data.ExportError, match="label value 2"):
        export_data.export_split(out, RECIPES["polyp"])
    # 2D recipes take every labelled slice of the export as one image
    split2d = export_data.export_split(_export(tmp_path, binary=True, name="bin"), RECIPES["polyp"])
    assert len(split2d.train) + len(split2d.val) > 3
    assert all(s.extra["array"].ndim == 2 and s.extra["label_array"].max() == 1 for s in split2d.train)
    with pytest.raises(export_data.ExportError):
        export_data.export_split(out, RECIPES["xray-view"])
    with pytest.raises(export_data.ExportError):
        export_data.export_split(tmp_path / "nothing-here", RECIPES["hippocampus"])


@pytest.mark.slow
def test_finetune_from_bundled_package_writes_usable_package(tmp_path, monkeypatch):
    from medview.config import bundled_models_dir
    from medview.inference.package import validate
    from medview.training.runner import train_model

    if not (bundled_models_dir() / "hippocampus" / "model.json").is_file():
        pytest.skip("hippocampus package not bundled yet")
    monkeypatch.setenv("MEDVIEW_CHECKPOINTS", str(tmp_path / "ckpt"))
    out = _export(tmp_path)
    dest = tmp_path / "pkg"
    state = train_model("hippocampus", minutes=0.2, data=out, init="hippocampus", out=dest, max_epochs=1,
                        log=lambda s: None, progress=lambda f, s: None)
    assert state["epoch"] == 1 and state["init"] == "hippocampus"
    pkg = validate(dest)
    assert pkg.ok, pkg.reason
    assert pkg.id == "hippocampus-finetuned"
    assert pkg.manifest["training"]["init"] == "hippocampus"
    # the fine-tuned weights start from the bundled ones, so they still segment: run them
    from medview.inference.pipeline import run_model
    from medview.io.volume import Volume

    img, lab = _blob_case(np.random.default_rng(5))
    pred = run_model(pkg, Volume(img, meta={"Modality": "MR"}), device="cpu")
    assert pred.labels.array.shape == lab.shape


def test_splits_are_deterministic_and_disjoint(shared_data):
    for fn in (datasets.xray_view, datasets.hippocampus, datasets.drive, datasets.ph2):
        a, b = fn(shared_data), fn(shared_data)
        parts = [[s.name for s in p] for p in (a.train, a.val, a.test)]
        assert parts == [[s.name for s in p] for p in (b.train, b.val, b.test)]
        flat = sum(parts, [])
        assert len(flat) == len(set(flat))


def test_busi_near_duplicates_never_straddle_parts(shared_data):
    split = datasets.busi(shared_data)
    where = {}
    for part, samples in (("train", split.train), ("val", split.val), ("test", split.test)):
        for s in samples:
            where.setdefault(s.group, set()).add(part)
    assert all(len(v) == 1 for v in where.values())
    assert any(len([s for s in split.train + split.val + split.test if s.group == g]) > 1 for g in where)
