"""A classifier built from the encoder half of MONAI's UNet.

Why: it lets a classifier start from a segmenter trained in this project (transfer learning
without downloads). The encoder blocks keep MONAI's parameter names (``model.0``,
``model.1.submodule.0``, ...), so a UNet segmenter's state dict initialises it by name; the
decoder is removed. Features of every encoder level are average-pooled and concatenated
(fine levels carry texture, coarse levels shape), then one ``fc`` layer gives the logits.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class UNetEncoderClassifier(nn.Module):
    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int],
        strides: Sequence[int],
        num_res_units: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from monai.networks.layers.simplelayers import SkipConnection
        from monai.networks.nets import UNet

        unet = UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=2,
                    channels=channels, strides=strides, num_res_units=num_res_units)
        self.model = unet.model
        self.blocks: list[nn.Module] = []  # forward order; registered through self.model
        level = self.model
        # MONAI nests each level as Sequential(down, SkipConnection(inner), up).
        while isinstance(level, nn.Sequential) and len(level) == 3 and isinstance(level[1], SkipConnection):
            self.blocks.append(level[0])
            level[2] = nn.Identity()  # the decoder half is not used: drop its parameters
            inner = level[1].submodule
            if isinstance(inner, nn.Sequential) and len(inner) == 3 and isinstance(inner[1], SkipConnection):
                level = inner
            else:
                self.blocks.append(inner)  # the bottom block
                break
        self.spatial_dims = spatial_dims
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(sum(int(c) for c in channels), num_classes)

    @property
    def bottom_layer_name(self) -> str:
        names = {id(m): n for n, m in self.named_modules()}
        return names[id(self.blocks[-1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, 2 + self.spatial_dims))
        pooled = []
        for block in self.blocks:
            x = block(x)
            pooled.append(x.mean(dim=dims))
        return self.fc(self.dropout(torch.cat(pooled, dim=1)))
