"""Held-out metrics (numpy only): AUC, accuracy, Dice/F1, calibration."""

from __future__ import annotations

from typing import Any

import numpy as np


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN with one class only."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks for ties
    i = 0
    r = np.arange(1, len(s) + 1, dtype=np.float64)
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        r[i : j + 1] = (i + j + 2) / 2.0
        i = j + 1
    ranks[order] = r
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc_fast(y_true: np.ndarray, score: np.ndarray, bins: int = 100000) -> float:
    """AUC for millions of pixels: scores in [0, 1] histogrammed into ``bins`` (error < 1e-4)."""
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.clip(np.asarray(score, dtype=np.float64).ravel(), 0, 1)
    idx = np.minimum((s * bins).astype(np.int64), bins - 1)
    pos = np.bincount(idx[y], minlength=bins).astype(np.float64)
    neg = np.bincount(idx[~y], minlength=bins).astype(np.float64)
    if pos.sum() == 0 or neg.sum() == 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg
    return float(((pos * neg_below).sum() + 0.5 * (pos * neg).sum()) / (pos.sum() * neg.sum()))


def classification_report(y_true: np.ndarray, probs: np.ndarray, classes: list[str],
                          positive: str | None = None, threshold: float | None = None) -> dict[str, Any]:
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probs, dtype=np.float64)
    pred = p.argmax(1)
    k = len(classes)
    conf = np.zeros((k, k), dtype=int)
    for t, q in zip(y, pred, strict=False):
        conf[t, q] += 1
    out: dict[str, Any] = {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "confusion": conf.tolist(),
        "per_class_auc": {c: roc_auc(y == i, p[:, i]) for i, c in enumerate(classes)},
    }
    aucs = [v for v in out["per_class_auc"].values() if not np.isnan(v)]
    out["macro_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["ece"], out["reliability"] = calibration(y, p)
    if positive is not None:
        i = classes.index(positive)
        pos = y == i
        out["positive"] = positive
        out["positive_auc"] = roc_auc(pos, p[:, i])
        for name, decided in (("argmax", pred == i), ("threshold", p[:, i] >= (threshold or 0.5))):
            tp = int((decided & pos).sum())
            tn = int((~decided & ~pos).sum())
            out[f"sensitivity_{name}"] = tp / max(int(pos.sum()), 1)
            out[f"specificity_{name}"] = tn / max(int((~pos).sum()), 1)
        out["threshold"] = threshold or 0.5
        out["positive_ece"], out["positive_reliability"] = calibration(pos.astype(int), np.stack(
            [1 - p[:, i], p[:, i]], 1), binary=True)
    return out


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 5, binary: bool = False):
    """Expected calibration error and reliability bins.

    Top-label confidence vs accuracy by default; with ``binary`` the positive-class probability
    vs the observed positive frequency."""
    if binary:
        conf = p[:, 1]
        hit = (y == 1).astype(float)
    else:
        conf = p.max(1)
        hit = (p.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        m = (conf >= lo) & ((conf < hi) if hi < 1 else (conf <= hi))
        if m.any():
            table.append({"bin": [round(lo, 2), round(hi, 2)], "n": int(m.sum()),
                          "mean_confidence": float(conf[m].mean()), "observed": float(hit[m].mean())})
            ece += m.mean() * abs(conf[m].mean() - hit[m].mean())
    return float(ece), table


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    pred, truth = pred.astype(bool), truth.astype(bool)
    s = pred.sum() + truth.sum()
    return 1.0 if s == 0 else float(2.0 * (pred & truth).sum() / s)


def reliability_png(table: list[dict], path, title: str) -> None:
    """A small reliability diagram (PIL only): observed frequency vs mean confidence per bin."""
    from PIL import Image, ImageDraw

    w = h = 360
    m = 40
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)

    def xy(px: float, py: float) -> tuple[float, float]:
        return m + px * (w - 2 * m), h - m - py * (h - 2 * m)

    d.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    d.line([xy(0, 0), xy(1, 1)], fill=(150, 150, 150), width=1)
    for t in (0.25, 0.5, 0.75):
        d.text((xy(t, 0)[0] - 8, h - m + 4), f"{t:.2f}", fill="black")
        d.text((4, xy(0, t)[1] - 6), f"{t:.2f}", fill="black")
    pts = [xy(r["mean_confidence"], r["observed"]) for r in table]
    if len(pts) > 1:
        d.line(pts, fill=(200, 40, 40), width=2)
    for r, (px, py) in zip(table, pts, strict=False):
        rad = 3 + min(r["n"], 40) / 6
        d.ellipse([px - rad, py - rad, px + rad, py + rad], outline=(200, 40, 40), width=2)
        d.text((px + rad + 2, py - 6), f"n={r['n']}", fill=(120, 0, 0))
    d.text((m, 8), title[:52], fill="black")
    d.text((w // 2 - 50, h - 16), "predicted probability", fill="black")
    d.text((2, m - 14), "observed", fill="black")
    im.save(path)


# ---------------------------------------------------------------------------------------------
# graded models: QWK, MAE, flag AUC / sensitivity / specificity
def quadratic_weighted_kappa(y_true, y_pred, k: int) -> float:
    y, q = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    o = np.zeros((k, k))
    for a, b in zip(y, q, strict=False):
        o[a, b] += 1
    w = (np.subtract.outer(np.arange(k), np.arange(k)) ** 2) / max((k - 1) ** 2, 1)
    e = np.outer(o.sum(1), o.sum(0)) / max(o.sum(), 1)
    den = (w * e).sum()
    return float(1.0 - (w * o).sum() / den) if den > 0 else float("nan")


def choose_flag_threshold(flag_true: np.ndarray, flag_prob: np.ndarray) -> float:
    """Threshold maximising Youden's J (sensitivity + specificity - 1); meant for validation."""
    t, p = np.asarray(flag_true, dtype=bool), np.asarray(flag_prob, dtype=np.float64)
    if t.all() or (~t).all():
        return 0.5
    best, best_thr = -1.0, 0.5
    for thr in np.unique(np.round(p, 4)):
        pos = p >= thr
        j = pos[t].mean() + (~pos[~t]).mean() - 1
        if j > best:
            best, best_thr = j, float(thr)
    return float(min(max(best_thr, 0.01), 0.99))


def grading_report(y: np.ndarray, probs: np.ndarray, spec: dict[str, Any]) -> dict[str, Any]:
    """QWK, accuracy, MAE (argmax and expected value), flag AUC and sensitivity/specificity at the
    manifest's threshold."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    pred = p.argmax(1)
    ev = (p * np.arange(k)).sum(1)
    rep: dict[str, Any] = {
        "qwk": quadratic_weighted_kappa(y, pred, k),
        "mae": float(np.abs(pred - y).mean()),
        "mae_expected": float(np.abs(ev - y).mean()),
    }
    flag = spec.get("flag")
    if flag:
        mg, thr = int(flag["min_grade"]), float(flag.get("threshold", 0.5))
        t = y >= mg
        pf = p[:, mg:].sum(1)
        pos = pf >= thr
        rep.update({
            "flag_name": flag["name"], "flag_threshold": thr,
            "flag_auc": float(roc_auc(t, pf)) if 0 < t.sum() < len(t) else float("nan"),
            "flag_sensitivity": float(pos[t].mean()) if t.any() else float("nan"),
            "flag_specificity": float((~pos[~t]).mean()) if (~t).any() else float("nan"),
            "flag_n_positive": int(t.sum()),
        })
    return rep
