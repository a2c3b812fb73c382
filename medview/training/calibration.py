"""Post-hoc calibration of a classifier on its VALIDATION part, folded into the last layer.

Temperature scaling (Guo et al., ICML 2017), optionally with a per-class logit bias ("vector
scaling" restricted to a shared temperature), fitted by minimising the validation negative
log-likelihood. The result is written into the final ``Linear`` layer (``W / T``, ``b / T + c``)
so the package stays a plain allow-listed network and the app needs no extra step. The test
split plays no part.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fit(logits: np.ndarray, y: np.ndarray, bias: bool) -> tuple[float, np.ndarray, dict[str, float]]:
    import torch

    z = torch.tensor(logits, dtype=torch.float64)
    t = torch.tensor(np.asarray(y), dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    c = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=bias)
    params = [log_t] + ([c] if bias else [])
    opt = torch.optim.LBFGS(params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")
    ce = torch.nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        temp = log_t.clamp(np.log(0.25), np.log(10.0)).exp()
        loss = ce(z / temp + c, t) + (1e-2 * (c**2).sum() if bias else 0.0)
        loss.backward()
        return loss

    before = float(ce(z, t))
    opt.step(closure)
    temp = float(log_t.detach().clamp(np.log(0.25), np.log(10.0)).exp())
    cb = c.detach().numpy().copy() if bias else np.zeros(z.shape[1])
    cb -= cb.mean()
    after = float(ce(z / temp + torch.tensor(cb), t))
    return temp, cb, {"val_nll_before": before, "val_nll_after": after}


def fold(net, temperature: float, bias: np.ndarray, layer: str = "fc") -> None:
    import torch

    lin = dict(net.named_modules())[layer]
    with torch.no_grad():
        lin.weight.div_(temperature)
        lin.bias.div_(temperature).add_(torch.tensor(bias, dtype=lin.bias.dtype))


def calibrate(net, val_items: list[dict[str, Any]], bias: bool) -> dict[str, Any]:
    """Fit on the validation items (``x`` prepared inputs, ``y`` classes) and fold into ``net``."""
    import torch

    net.eval()
    with torch.no_grad():
        logits = np.concatenate([net(torch.from_numpy(it["x"][None])).numpy() for it in val_items])
    y = np.array([it["y"] for it in val_items])
    temp, b, info = fit(logits, y, bias)
    fold(net, temp, b)
    return {"temperature": temp, "bias": [float(v) for v in b], **info,
            "val_accuracy_before": float((logits.argmax(1) == y).mean()),
            "val_accuracy_after": float(((logits / temp + b).argmax(1) == y).mean())}
