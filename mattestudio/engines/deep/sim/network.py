"""SIM matting network (Sun, Tang, Tai, CVPR 2021), written from shared/reference/deep-models.md §1.

Names and Sequential indices match the published state dict (keys/sim_model.tsv) for strict
loading. The decoder's weight-standardised convs are standardised once after loading
(``standardise_``) instead of on every forward: same maths, no per-call cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WSConv2d(nn.Conv2d):
    """A conv whose weight is standardised per output filter (unbiased variance, as published)."""

    standardised = False

    @torch.no_grad()
    def standardise_(self) -> None:
        if self.standardised:
            return
        w = self.weight
        flat = w.reshape(w.shape[0], -1)
        centred = flat - flat.mean(dim=1, keepdim=True)
        std = torch.sqrt(centred.var(dim=1, unbiased=True, keepdim=True) + 1e-12) + 1e-5
        w.copy_((centred / std).reshape_as(w))
        self.standardised = True


def standardise_all_(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, WSConv2d):
            m.standardise_()


def _pointwise_op():
    mk = getattr(torch.ops, "mkldnn", None)
    try:
        return mk._convolution_pointwise if mk is not None else None
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return None


_POINTWISE = _pointwise_op()


def conv_act(
    x, conv: nn.Conv2d, norm: nn.Module, act: str | None = None, residual=None, slope: float = 0.01
):
    """``act(norm(conv(x)) + residual)``, with residual and activation fused into the oneDNN convolution
    when BN is folded (``norm`` is Identity) and the tensors are bf16 channels-last on CPU.

    Fusing saves one or two passes over each activation map per conv (the separate add and ReLU
    took about a fifth of SIM's time at 1 MP). fp32 keeps the plain reference ops."""
    if (
        _POINTWISE is not None
        and x.device.type == "cpu"
        and x.dtype == torch.bfloat16
        and conv.weight.dtype == torch.bfloat16
        and isinstance(norm, nn.Identity)
        and conv.groups == 1
        and not isinstance(conv.padding, str)
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        unary = {"relu": "relu", "lrelu": "leaky_relu"}.get(act) if act else None
        scalars = [slope] if act == "lrelu" else []
        args = (
            conv.weight,
            conv.bias,
            list(conv.padding),
            list(conv.stride),
            list(conv.dilation),
            1,
        )
        if residual is None:
            return _POINTWISE(x, *args, unary or "none", scalars, "")
        other = residual.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        return _POINTWISE.binary(x, other, *args, "add", None, unary, scalars, "")
    y = norm(conv(x))
    if residual is not None:
        y = y + residual
    if act == "relu":
        return F.relu(y)
    if act == "lrelu":
        return F.leaky_relu(y, slope)
    return y


def run_sequential(seq: nn.Sequential, x):
    """Run a conv / norm / activation Sequential, fusing each conv with the norm and activation after it."""
    items = list(seq)
    i = 0
    while i < len(items):
        m = items[i]
        if isinstance(m, nn.Conv2d):
            norm, act, j = nn.Identity(), None, i + 1
            if j < len(items) and isinstance(items[j], (nn.BatchNorm2d, nn.Identity)):
                norm, j = items[j], j + 1
            if j < len(items) and isinstance(items[j], nn.ReLU):
                act, j = "relu", j + 1
            elif j < len(items) and isinstance(items[j], nn.LeakyReLU):
                act, slope, j = "lrelu", items[j].negative_slope, j + 1
            x = conv_act(x, m, norm, act, slope=slope if act == "lrelu" else 0.01)
            i = j
        else:
            x = m(x)
            i += 1
    return x


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.downsample = downsample

    def forward(self, x):
        out = conv_act(x, self.conv1, self.bn1, "relu")
        out = conv_act(out, self.conv2, self.bn2, "relu")
        idn = x if self.downsample is None else run_sequential(self.downsample, x)
        return conv_act(out, self.conv3, self.bn3, "relu", residual=idn)


def make_layer(cin, width, blocks, stride=1, dilations=None):
    """A ResNet stage. ``dilations`` gives each block's conv2 dilation (the SIM encoder's no-stride rule)."""
    dilations = dilations or [1] * blocks
    down = None
    if stride != 1 or cin != width * 4:
        down = nn.Sequential(
            nn.Conv2d(cin, width * 4, 1, stride, bias=False), nn.BatchNorm2d(width * 4)
        )
    layers = [Bottleneck(cin, width, stride, dilations[0], down)]
    layers += [Bottleneck(width * 4, width, 1, d) for d in dilations[1:]]
    return nn.Sequential(*layers)


class SimEncoder(nn.Module):
    """Deep-stem ResNet-50 with output stride 8 (layer3 dilation 2, layer4 dilation 4)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(11, 64, 3, 2, 1, bias=False)
        self.conv1_side = nn.Conv2d(20, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.layer1 = make_layer(128, 64, 3)
        self.layer2 = make_layer(256, 128, 4, stride=2)
        self.layer3 = make_layer(512, 256, 6, dilations=[1] + [2] * 5)
        self.layer4 = make_layer(1024, 512, 3, dilations=[2, 4, 4])

    def forward(self, x11, smap):
        if isinstance(self.bn1, nn.Identity):  # folded: bn1's shift lives in conv1's bias
            x = conv_act(x11, self.conv1, self.bn1, "relu", residual=self.conv1_side(smap))
        else:
            x = F.relu(self.bn1(self.conv1(x11) + self.conv1_side(smap)))  # summed before bn1
        x = conv_act(x, self.conv2, self.bn2, "relu")
        stem = conv_act(x, self.conv3, self.bn3, "relu")
        x = F.max_pool2d(stem, 3, 2, 1)
        l1 = self.layer1(x)
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        l4 = self.layer4(l3)
        return stem, l1, l4


def _ws_bn_relu(cin, cout, k, dil=1):
    return nn.Sequential(
        WSConv2d(cin, cout, k, padding=dil if k == 3 else 0, dilation=dil, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def dilated_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 3x3 conv with dilation d and padding d, computed as one 1x1 conv producing every tap,
    then shifted sums. Same result; oneDNN's direct kernels for ASPP's dilations 12-36 run several
    times slower than this GEMM. Taps that fall wholly outside the map (d >= size) are skipped."""
    d = conv.dilation[0]
    w = conv.weight
    o = w.shape[0]
    h, wd = x.shape[-2:]
    taps = [
        (i, j) for i in range(3) for j in range(3) if abs(i - 1) * d < h and abs(j - 1) * d < wd
    ]
    stacked = getattr(conv, "_taps", None)  # (9*O, I, 1, 1), cached: weights are fixed at inference
    if (
        stacked is None
        or stacked.device != w.device
        or stacked.dtype != w.dtype
        or stacked.shape[1] != w.shape[1]
    ):
        stacked = torch.cat([w[:, :, i, j] for i in range(3) for j in range(3)], 0)[
            :, :, None, None
        ].detach()
        conv._taps = stacked
    if len(taps) < 9:
        keep = torch.cat([torch.arange(o) + (3 * i + j) * o for i, j in taps])
        stacked = stacked.index_select(0, keep.to(stacked.device))
    if (
        x.dtype == torch.bfloat16
        and x.device.type == "cpu"
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        return _dilated_taps_mm(x, stacked, taps, d, o, conv.bias)
    y = F.conv2d(x, stacked)
    out = y[:, taps.index((1, 1)) * o : (taps.index((1, 1)) + 1) * o].clone()
    for t, (i, j) in enumerate(taps):
        dy, dx = (i - 1) * d, (j - 1) * d
        if dy == 0 and dx == 0:
            continue
        out[:, :, max(0, -dy) : h - max(0, dy), max(0, -dx) : wd - max(0, dx)] += y[
            :, t * o : (t + 1) * o, max(0, dy) : h - max(0, -dy), max(0, dx) : wd - max(0, -dx)
        ]
    if conv.bias is not None:
        out = out + conv.bias.to(out.dtype).reshape(1, -1, 1, 1)
    return out


def _dilated_taps_mm(x, stacked, taps, d, o, bias):
    """bf16 channels-last variant of the above: a channels-last map is an (N*H*W, C) row-major
    matrix, so the taps are one matrix product. oneDNN picks a far slower kernel for this 1x1
    conv with 9 x 256 outputs (measured at 1 MP: 1.0 s as a conv, 0.3 s as mm on one thread)."""
    n, c, h, wd = x.shape
    y = torch.mm(x.permute(0, 2, 3, 1).reshape(n * h * wd, c), stacked[:, :, 0, 0].t())
    y = y.view(n, h, wd, len(taps), o)
    out = y[:, :, :, taps.index((1, 1))].clone()  # n, h, w, o
    for t, (i, j) in enumerate(taps):
        dy, dx = (i - 1) * d, (j - 1) * d
        if dy == 0 and dx == 0:
            continue
        out[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : wd - max(0, dx)] += y[
            :, max(0, dy) : h - max(0, -dy), max(0, dx) : wd - max(0, -dx), t
        ]
    if bias is not None:
        out += bias.to(out.dtype)
    return out.permute(0, 3, 1, 2)  # channels-last N x O x H x W view


class ASPP(nn.Module):
    def __init__(self, cin=2048, width=256, rates=(12, 24, 36)):
        super().__init__()
        branches = [_ws_bn_relu(cin, width, 1)] + [_ws_bn_relu(cin, width, 3, r) for r in rates]
        branches.append(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                WSConv2d(cin, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
        )
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            WSConv2d(width * 5, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
        )

    def forward(self, x):
        outs = [run_sequential(self.convs[0], x)]
        outs += [F.relu_(b[1](dilated_conv(x, b[0]))) for b in self.convs[1:-1]]
        pooled = run_sequential(self.convs[-1], x)
        outs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return run_sequential(self.project, torch.cat(outs, 1))


def _ws_bn_lrelu(cin, cout):
    return [WSConv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU()]


def _head(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, 32, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv2d(32, 16, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv2d(16, cout, 1, bias=False),
    )


def _up2(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class SimDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.global_module = ASPP()
        self.conv_up1 = nn.Sequential(*_ws_bn_lrelu(2304, 256), *_ws_bn_lrelu(256, 256))
        self.conv_up2 = nn.Sequential(*_ws_bn_lrelu(512, 256))
        self.conv_up3 = nn.Sequential(*_ws_bn_lrelu(384, 64))
        self.conv_up4_alpha = _head(72, 1)
        self.conv_up4_fb = _head(72, 6)
        self.conv_up4_attn = _head(64, 3)  # training-time loss weights; loaded, never run

    def forward(self, stem, l1, l4, image_n, image, two_chan, want_fb=False):
        x = torch.cat([l4, self.global_module(l4)], 1)
        x = _up2(run_sequential(self.conv_up1, x))
        x = _up2(run_sequential(self.conv_up2, torch.cat([x, l1.to(x.dtype)], 1)))
        x = _up2(run_sequential(self.conv_up3, torch.cat([x, stem.to(x.dtype)], 1)))
        dt = x.dtype
        y = torch.cat([x, image_n.to(dt), image.to(dt), two_chan.to(dt)], 1)
        alpha = torch.clamp(
            run_sequential(self.conv_up4_alpha, y).float(), 0, 1
        )  # no sigmoid, as published
        if not want_fb:
            return alpha, None
        fb = torch.sigmoid(run_sequential(self.conv_up4_fb, y).float())
        return alpha, fb


class SimMatting(nn.Module):
    multiple = 8

    def __init__(self):
        super().__init__()
        self.encoder = SimEncoder()
        self.decoder = SimDecoder()

    def forward(self, image, two_chan, image_n, clicks, smap, want_fb=False):
        x11 = torch.cat([image_n, clicks, two_chan], 1)
        stem, l1, l4 = self.encoder(x11, smap)
        return self.decoder(stem, l1, l4, image_n, image, two_chan, want_fb)

    def finalize_(self) -> SimMatting:
        from mattestudio.engines.deep.fold import fold_batchnorm_

        standardise_all_(self)  # before folding: standardisation applies to the raw weights
        return fold_batchnorm_(self)


class SimClassifier(nn.Module):
    """torchvision-style ResNet-50, 4 input channels, 20 classes; returns the class activation map."""

    def __init__(self, classes: int = 20):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = make_layer(64, 64, 3)
        self.layer2 = make_layer(256, 128, 4, stride=2)
        self.layer3 = make_layer(512, 256, 6, stride=2)
        self.layer4 = make_layer(1024, 512, 3, stride=2)
        self.fc = nn.Linear(2048, classes)

    def finalize_(self) -> SimClassifier:
        from mattestudio.engines.deep.fold import fold_batchnorm_

        return fold_batchnorm_(self)

    def forward(self, x):
        x = F.max_pool2d(conv_act(x, self.conv1, self.bn1, "relu"), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        # CAM: the fc weights applied per pixel, without the fc bias (as published).
        return torch.einsum("kc,nchw->nkhw", self.fc.weight.to(x.dtype), x)
