"""Inference-only rewrite: fold each BatchNorm into the convolution(s) feeding it.

conv -> BN in eval mode is one affine map per channel, so the conv's weight and bias can absorb it
and the BN becomes Identity: the same output up to float rounding, with one pass over the
activations less per layer. Applied after strict loading, so key checks still see the published
layout.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def _fold(convs: list[nn.Conv2d], bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    for i, conv in enumerate(convs):
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        bias = conv.bias * scale if conv.bias is not None else torch.zeros_like(scale)
        if i == 0:  # summed convs (SIM's conv1 + conv1_side) take the shift once
            bias = bias + shift
        conv.bias = nn.Parameter(bias)


def fold_batchnorm_(root: nn.Module) -> nn.Module:
    """Fold every Conv->BN pair found in Sequentials and by attribute naming (convN/bnN)."""
    from mattestudio.engines.deep.sim.network import SimEncoder

    for module in list(root.modules()):
        if isinstance(module, nn.Sequential):
            items = list(module)
            for i in range(len(items) - 1):
                if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                    _fold([items[i]], items[i + 1])
                    module[i + 1] = nn.Identity()
        pairs = [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                convs = (
                    [conv, module.conv1_side]
                    if isinstance(module, SimEncoder) and conv_name == "conv1"
                    else [conv]
                )
                _fold(convs, bn)
                setattr(module, bn_name, nn.Identity())
    return root
