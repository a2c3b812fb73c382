import json

import pytest

from medview.config import resources_dir
from medview.viewing.hanging import (
    Protocol,
    choose,
    load_protocols,
    protocol_matches,
    save_protocol,
    series_matches,
)


def _s(mod, desc, date="20200101", n=20, study="1", body=""):
    return {"modality": mod, "description": desc, "study_date": date, "n_images": n, "rows": 256,
            "columns": 256, "study_uid": study, "body_part": body}


def test_bundled_protocols_load_and_pick_mr_brain_with_its_prior():
    protos = load_protocols([resources_dir() / "hanging_protocols"])
    assert not protos.errors and len(protos) >= 4
    current = [_s("MR", "T2reg", "20210301"), _s("MR", "T1post", "20210301", n=30),
               _s("MR", "T1prereg", "20210301", n=60), _s("MR", "FLAIRreg", "20210301")]
    priors = [_s("MR", "T1prereg", "20190101", study="0"), _s("MR", "T1post", "20200601", study="p"),
              _s("MR", "T2reg", "20200601", study="p")]
    p, primary, compare = choose(protos, current, priors)
    assert p.name.startswith("MR brain") and p.layout == "1x3" and p.link == "world"
    assert primary["description"] == "T1post"  # post-contrast first, though the pre has more images
    assert compare["description"] == "T1post" and compare["study_date"] == "20200601"  # latest prior
    assert p.window is None  # MR keeps the scanner's stored window


def test_rules_modality_description_count_and_priority():
    ct = Protocol.from_dict({"name": "ct lung", "priority": 5,
                             "match": {"modality": "CT", "series_description": "lung"},
                             "window": {"preset": "Lung"}})
    any_ = Protocol.from_dict({"name": "any", "priority": -1, "layout": "1x1"})
    big = Protocol.from_dict({"name": "many", "priority": 9, "match": {"min_series": 3}, "layout": "2x2"})
    lung = [_s("CT", "Lung 1mm"), _s("CT", "Soft tissue")]
    assert protocol_matches(ct, lung) and not protocol_matches(ct, [_s("CT", "Abdomen")])
    assert not protocol_matches(big, lung)
    assert choose([ct, any_, big], lung)[0].name == "ct lung"
    assert choose([ct, any_, big], lung + [_s("CT", "x")])[0].name == "many"
    assert choose([ct, any_], [_s("MR", "T1")])[0].name == "any"
    assert Protocol.from_dict({"name": "keep"}).layout is None  # no layout: the user's stays
    assert choose([ct], [_s("MR", "T1")]) is None
    # body part: checked where the series names it, skipped where it does not
    rule = {"body_part": "BRAIN"}
    assert series_matches(_s("MR", "T1", body="BRAIN"), rule)
    assert not series_matches(_s("MR", "T1", body="KNEE"), rule)
    assert series_matches(_s("MR", "T1"), rule)


def test_bad_protocols_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        Protocol.from_dict({"name": "x", "layout": "3x3"})
    with pytest.raises(ValueError, match="regex"):
        Protocol.from_dict({"name": "x", "match": {"modality": "("}})
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "ok.json").write_text(json.dumps({"name": "ok"}))
    protos = load_protocols([tmp_path])
    assert [p.name for p in protos] == ["ok"] and "broken.json" in protos.errors[0]


def test_saved_protocol_overrides_the_bundled_one_of_that_name(tmp_path):
    user = tmp_path / "user"
    p = Protocol.from_dict({"name": "Any study: the largest series, layout as it is", "priority": -100,
                            "layout": "2x2"})
    path = save_protocol(p, user)
    assert path.exists() and json.loads(path.read_text())["layout"] == "2x2"
    protos = load_protocols([resources_dir() / "hanging_protocols", user])
    assert next(x for x in protos if x.name == p.name).layout == "2x2"
