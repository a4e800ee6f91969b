"""The three DIM networks whose published checkpoints users can get (see models/README.md).

Module names and nn.Sequential indices follow the published state dicts exactly, so the files
load with strict=True. All three are VGG-16 encoders with max-pool indices reused for unpooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_VGG = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # convs per stage, width


def _pool(x):
    return F.max_pool2d(x, 2, 2, return_indices=True)


def _unpool(x, idx, size=None):
    return F.max_unpool2d(x, idx, 2, 2, output_size=size)


class _Refiner(nn.Module):
    """Stage-3 refinement: 3 ReLU convs on (normalised RGB, coarse alpha); residual added to the logit."""

    def __init__(self):
        super().__init__()
        self.refine_conv1 = nn.Conv2d(4, 64, 3, padding=1)
        self.refine_conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.refine_conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.refine_pred = nn.Conv2d(64, 1, 3, padding=1)

    def forward(self, rgb, pred):
        x = F.relu(self.refine_conv1(torch.cat([rgb, pred.to(rgb.dtype)], 1)))
        x = F.relu(self.refine_conv2(x))
        x = F.relu(self.refine_conv3(x))
        return self.refine_pred(x)


# --------------------------------------------------------------------------------------------
# HUO (huochaitiantang/pytorch-deep-image-matting, class VGG16): flat names, no BatchNorm.
# --------------------------------------------------------------------------------------------
class HuoDIM(nn.Module):
    """``conv6_k`` is 3 for files since 2019-09 (V1.5, v1.4), 1 before. V1.5 adds encoder skips."""

    multiple = 32

    def __init__(self, refine: bool = False, conv6_k: int = 3, skip: bool = True):
        super().__init__()
        cin = 4
        for s, (n, w) in enumerate(_VGG, 1):
            for i in range(1, n + 1):
                setattr(self, f"conv{s}_{i}", nn.Conv2d(cin, w, 3, padding=1))
                cin = w
        self.conv6_1 = nn.Conv2d(512, 512, conv6_k, padding=conv6_k // 2)
        self.deconv6_1 = nn.Conv2d(512, 512, 1)
        for s, (cin, cout) in zip(
            (5, 4, 3, 2, 1), ((512, 512), (512, 256), (256, 128), (128, 64), (64, 64))
        ):
            setattr(self, f"deconv{s}_1", nn.Conv2d(cin, cout, 5, padding=2))
        self.deconv1 = nn.Conv2d(64, 1, 5, padding=2)
        self.skip = skip
        self.refine = refine
        if refine:  # same flat names as the refiner module's children
            for name, m in _Refiner().named_children():
                setattr(self, name, m)

    def forward(self, x):
        feats, idxs = [], []
        h = x
        for s, (n, _) in enumerate(_VGG, 1):
            for i in range(1, n + 1):
                h = F.relu(getattr(self, f"conv{s}_{i}")(h))
            feats.append(h)
            h, idx = _pool(h)
            idxs.append(idx)
        h = F.relu(self.conv6_1(h))
        h = F.relu(self.deconv6_1(h))
        for s in (5, 4, 3, 2, 1):
            h = _unpool(h, idxs[s - 1])
            if self.skip:
                h = h + feats[s - 1]
            h = F.relu(getattr(self, f"deconv{s}_1")(h))
        raw = self.deconv1(h).float()
        if not self.refine:
            return torch.sigmoid(raw)
        r = _Refiner.forward(self, x[:, :3], torch.sigmoid(raw))
        return torch.sigmoid(raw + r.float())


# --------------------------------------------------------------------------------------------
# MMAGIC (open-mmlab/mmagic): backbone.encoder VGG16 + PlainDecoder, optional PlainRefiner.
# --------------------------------------------------------------------------------------------
class _MMEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        cin = 4
        for s, (n, w) in enumerate(_VGG, 1):
            layers = []
            for _ in range(n):
                layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU(inplace=True)]
                cin = w
            setattr(self, f"layer{s}", nn.Sequential(*layers))
        self.conv6 = nn.Conv2d(512, 512, 1)


class _MMDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.deconv6_1 = nn.Conv2d(512, 512, 1)
        for s, (cin, cout) in zip(
            (5, 4, 3, 2, 1), ((512, 512), (512, 256), (256, 128), (128, 64), (64, 64))
        ):
            setattr(self, f"deconv{s}_1", nn.Conv2d(cin, cout, 5, padding=2))
        self.deconv1 = nn.Conv2d(64, 1, 5, padding=2)


class _MMBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = _MMEncoder()
        self.decoder = _MMDecoder()


class MMagicDIM(nn.Module):
    multiple = 32

    def __init__(self, refine: bool = True):
        super().__init__()
        self.backbone = _MMBackbone()
        self.refine = refine
        if refine:
            self.refiner = _Refiner()

    def forward(self, x):
        enc, dec = self.backbone.encoder, self.backbone.decoder
        h, idxs = x, []
        for s in range(1, 6):
            h, idx = _pool(getattr(enc, f"layer{s}")(h))
            idxs.append(idx)
        h = F.relu(enc.conv6(h))
        h = F.relu(dec.deconv6_1(h))
        for s in (5, 4, 3, 2, 1):  # no skips in the plain decoder
            h = F.relu(getattr(dec, f"deconv{s}_1")(_unpool(h, idxs[s - 1])))
        raw = dec.deconv1(h).float()
        if not self.refine:
            return torch.sigmoid(raw)
        return torch.sigmoid(raw + self.refiner(x[:, :3], torch.sigmoid(raw)).float())


# --------------------------------------------------------------------------------------------
# FOAM (foamliu/Deep-Image-Matting-PyTorch, DIMModel): SegNet-style with BatchNorm, any size.
# --------------------------------------------------------------------------------------------
class _CBR(nn.Module):
    def __init__(self, cin, cout, k, relu=True):
        super().__init__()
        layers = [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        self.cbr_unit = nn.Sequential(*layers)

    def forward(self, x):
        return self.cbr_unit(x)


class _Down(nn.Module):
    def __init__(self, n, cin, cout):
        super().__init__()
        for i in range(1, n + 1):
            setattr(self, f"conv{i}", _CBR(cin if i == 1 else cout, cout, 3))
        self.n = n

    def forward(self, x):
        for i in range(1, self.n + 1):
            x = getattr(self, f"conv{i}")(x)
        size = x.shape[-2:]
        x, idx = _pool(x)
        return x, idx, size


class _Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = _CBR(cin, cout, 5, relu=False)  # the decoder has no activation

    def forward(self, x, idx, size):
        return self.conv(_unpool(x, idx, size))


class FoamDIM(nn.Module):
    multiple = 1  # unpooling to the remembered size makes any H x W work

    def __init__(self):
        super().__init__()
        for i, (n, cin, cout) in enumerate(
            ((2, 4, 64), (2, 64, 128), (3, 128, 256), (3, 256, 512), (3, 512, 512)), 1
        ):
            setattr(self, f"down{i}", _Down(n, cin, cout))
        for i, (cin, cout) in zip(
            (5, 4, 3, 2, 1), ((512, 512), (512, 256), (256, 128), (128, 64), (64, 1))
        ):
            setattr(self, f"up{i}", _Up(cin, cout))

    def finalize_(self) -> FoamDIM:
        from mattestudio.engines.deep.fold import fold_batchnorm_

        return fold_batchnorm_(self)

    def forward(self, x):
        saved = []
        for i in range(1, 6):
            x, idx, size = getattr(self, f"down{i}")(x)
            saved.append((idx, size))
        for i in (5, 4, 3, 2, 1):
            x = getattr(self, f"up{i}")(x, *saved[i - 1])
        return torch.sigmoid(x.float())
