"""A fold ensemble: K copies of one allow-listed network whose logits are averaged.

Why logits and not probabilities: the mean of the members' logits is itself a logit, so the
rest of the pipeline (softmax, TTA, an ordinal head's value, Grad-CAM's class score, the
temperature folded into each member) works on the ensemble exactly as on one network. A package
says ``"network": {"architecture": ..., "args": ..., "members": K}``; its weights are the
members' tensors under ``members.<i>.`` in one safetensors file (one sha256).
"""

from __future__ import annotations

import torch
from torch import nn


class MeanOfMembers(nn.Module):
    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.members[0](x)
        for m in self.members[1:]:
            out = out + m(x)
        return out / len(self.members)
