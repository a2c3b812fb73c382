"""Fine-tune from corrections: held-out cases never trained on, both figures, a new versioned
package that becomes active only when better, the parent kept and selectable."""

import json

import numpy as np
import pytest

from medview.campaign import finetune, versions


def _blob_export(folder, n=4, seed=0):
    """Corrected cases as the app exports them: two touching ellipsoids (labels 1, 2) per crop."""
    from medview.annotation.labelmap import Label, LabelMap
    from medview.annotation.training_set import export_training_case
    from medview.io.volume import Volume

    rng = np.random.default_rng(seed)
    shape = (20, 24, 20)
    for i in range(n):
        z, y, x = np.indices(shape)
        c = np.array(shape) / 2 + rng.uniform(-2, 2, 3)
        r = ((z - c[0]) / 5) ** 2 + ((y - c[1]) / 9) ** 2 + ((x - c[2]) / 4) ** 2
        lab = np.zeros(shape, np.uint8)
        lab[(r < 1) & (y < c[1])] = 1
        lab[(r < 1) & (y >= c[1])] = 2
        img = (40 + 60 * (lab > 0) + rng.normal(0, 5, shape)).astype(np.int16)
        vol = Volume(img, meta={"Modality": "MR", "source_path": f"case{i}.nii.gz"})
        labels = [Label(1, "anterior hippocampus", (255, 200, 0)), Label(2, "posterior hippocampus", (0, 180, 255))]
        export_training_case(vol, LabelMap.from_array(vol, lab, labels), folder, case_id=f"case{i}")
    return folder


def test_case_split_keeps_held_out_cases_apart(tmp_path):
    pairs = [(tmp_path / f"c{i}.nii.gz", tmp_path / f"l{i}.nii.gz") for i in range(8)]
    train, held = finetune.split_cases(pairs, 0.25, seed=3)
    assert len(held) == 2 and len(train) == 6 and not set(train) & set(held)
    assert finetune.split_cases(list(reversed(pairs)), 0.25, seed=3) == (train, held)  # order-free
    with pytest.raises(finetune.FinetuneError, match="at least 3"):
        finetune.split_cases(pairs[:2], 0.25, seed=3)


def test_version_numbers_and_active_pointer(tmp_path):
    assert versions.active_id("polyp") == "polyp"
    versions.set_active("polyp", "polyp-v1.1.0", "better")
    assert versions.active_id("polyp") == "polyp-v1.1.0"
    assert versions.history("polyp")[-1]["from"] == "polyp" and versions.history("polyp")[-1]["reason"] == "better"
    assert versions.next_version("polyp") == "1.1.0"  # the bundled polyp is 1.0.0


@pytest.mark.slow
def test_finetune_writes_a_new_version_and_activates_it_only_if_better(tmp_path):
    from medview.config import bundled_models_dir
    from medview.inference.package import discover_packages, find_package

    if not (bundled_models_dir() / "hippocampus" / "model.json").is_file():
        pytest.skip("hippocampus package not bundled")
    export = _blob_export(tmp_path / "export", n=4)
    seen = []
    res = finetune.finetune("hippocampus", export, minutes=0.2, max_epochs=1, log=lambda s: None,
                            progress=lambda f, s: seen.append(f))
    assert res.package_id == "hippocampus-v1.1.0" and res.parent["id"] == "hippocampus"
    assert len(res.held_out_cases) == 1 and res.held_out_cases[0] not in res.train_cases
    assert 0.0 <= res.parent_score <= 1.0 and 0.0 <= res.new_score <= 1.0
    assert res.activated == (res.new_score > res.parent_score)
    assert versions.active_id("hippocampus") == ("hippocampus-v1.1.0" if res.activated else "hippocampus")
    new = find_package("hippocampus-v1.1.0")
    lin = new.manifest["lineage"]
    assert lin["family"] == "hippocampus" and lin["parent"]["id"] == "hippocampus"
    assert lin["held_out"]["parent"] == round(res.parent_score, 4) and lin["held_out"]["new"] == round(res.new_score, 4)
    assert f"{res.new_score:.4f}" in new.card_path.read_text()
    ids = {p.id for p in discover_packages() if p.ok}
    assert {"hippocampus", "hippocampus-v1.1.0"} <= ids  # the old version stays selectable
    assert [p.id for p in versions.versions("hippocampus")][:2] == ["hippocampus", "hippocampus-v1.1.0"]
    assert seen and seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:], strict=False))
    assert not list((tmp_path / "medview-home" / "models").glob(".finetune-*"))  # work folder removed
    json.dumps(res.summary())
