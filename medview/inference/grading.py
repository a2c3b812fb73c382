"""Graded (ordinal) outputs: grade, continuous value on the scale, and a threshold flag.

A graded package is a classification package whose ``output`` carries a ``grading`` block::

    "grading": {"scale": "KL", "words": ["none", "doubtful", "minimal", "moderate", "severe"],
                "flag": {"name": "OA present", "min_grade": 2, "threshold": 0.5}}

The classes are the grades in order (0, 1, ...). From the class probabilities ``p``:

* grade: the class with the highest probability (argmax), so the grade shown and the
  probabilities never disagree;
* continuous value: the expected grade ``sum_k k * p_k`` (the ordinal output, in grade units;
  it is shown marked on the scale, e.g. "KL 2.4");
* flag: ``P(grade >= min_grade) = sum_{k >= min_grade} p_k`` compared with ``threshold``
  (chosen on validation, written into the manifest by training).

No Qt here; the app's models panel, ``medview infer`` and ``medview evaluate`` share it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def grading_spec(output: Mapping[str, Any]) -> dict[str, Any] | None:
    g = output.get("grading")
    return dict(g) if isinstance(g, Mapping) else None


def validate_grading(output: Mapping[str, Any]) -> list[str]:
    """Manifest errors of an ``output.grading`` block (empty list when fine or absent)."""
    g = output.get("grading")
    if g is None:
        return []
    if not isinstance(g, Mapping):
        return ["output.grading must be an object"]
    errs = []
    k = len(output.get("classes") or [])
    words = g.get("words")
    if words is not None and (not isinstance(words, list) or len(words) != k):
        errs.append("output.grading.words must list one word per class")
    flag = g.get("flag")
    if flag is not None:
        if not isinstance(flag, Mapping) or not isinstance(flag.get("name"), str):
            errs.append("output.grading.flag needs a name")
        else:
            mg, thr = flag.get("min_grade"), flag.get("threshold", 0.5)
            if not isinstance(mg, int) or isinstance(mg, bool) or not 0 < mg < k:
                errs.append("output.grading.flag.min_grade must be a grade index between 1 and the last class")
            if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 < thr < 1:
                errs.append("output.grading.flag.threshold must be a number between 0 and 1")
    return errs


def expected_grade(probs: Sequence[float] | np.ndarray) -> float:
    p = np.asarray(probs, dtype=np.float64)
    return float((p * np.arange(p.shape[-1])).sum(-1) / max(p.sum(-1), 1e-12))


def flag_probability(probs: Sequence[float] | np.ndarray, min_grade: int) -> float:
    p = np.asarray(probs, dtype=np.float64)
    return float(p[..., min_grade:].sum(-1))


def grade_result(classes: Sequence[str], probs: Sequence[float] | np.ndarray,
                 spec: Mapping[str, Any]) -> dict[str, Any]:
    """The graded reading of one probability vector (what prediction.json carries)."""
    p = np.asarray(probs, dtype=np.float64)
    k = int(p.argmax())
    words = list(spec.get("words") or classes)
    out: dict[str, Any] = {
        "scale": spec.get("scale", ""),
        "grade": k, "grade_name": classes[k], "grade_word": words[k],
        "value": round(expected_grade(p), 4),
        "max_grade": len(classes) - 1,
        "probabilities": {c: round(float(v), 6) for c, v in zip(classes, p, strict=False)},
    }
    flag = spec.get("flag")
    if flag:
        pf = flag_probability(p, int(flag["min_grade"]))
        thr = float(flag.get("threshold", 0.5))
        out["flag"] = {"name": flag["name"], "min_grade": int(flag["min_grade"]),
                       "probability": round(pf, 6), "threshold": thr, "positive": bool(pf >= thr)}
    return out


def grade_text(g: Mapping[str, Any]) -> str:
    """One line: "KL 2.4: minimal (KL2, p 0.61); OA present: yes (p 0.83 >= 0.50)"."""
    scale = g.get("scale") or "grade"
    s = f"{scale} {g['value']:.1f}: {g['grade_word']} ({g['grade_name']}, p {g['probabilities'][g['grade_name']]:.2f})"
    f = g.get("flag")
    if f:
        s += (f"; {f['name']}: {'yes' if f['positive'] else 'no'} "
              f"(p {f['probability']:.2f} {'>=' if f['positive'] else '<'} {f['threshold']:.2f})")
    return s
