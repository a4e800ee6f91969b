"""Faster CPU inference for transformers' ``Sam2Model``: the same computation, results equal to
float rounding, measured in benchmarks/bench_sam2.py (docs/benchmarks.md, SAM 2 section).

What ``accelerate(model)`` changes, each for a measured reason (single thread, 1 MP image):

- Linear layers run through oneDNN with weights packed once. torch's fp32 ``addmm`` calls MKL,
  which on AMD CPUs takes its AVX2 code path (~95 GFLOP/s on one core here) while oneDNN uses
  AVX-512 on any vendor (~210 GFLOP/s). An MLP's GELU (exact, erf) or ReLU runs inside the same
  oneDNN call, which saves a pass over the largest activations.
- Hiera's attention: transformers' ``Sam2MultiScaleAttention`` computes an attention matrix it then
  throws away (``attn_weights`` before the real attention call); ours does not. The three global
  attention blocks (4096 tokens) use oneDNN matmuls over chunks of queries, faster here than
  torch's fp32 flash attention, which also goes through MKL.
- Position encodings that depend only on the weights and the feature size (Hiera's interpolated
  window embedding, the FPN neck's sine encodings, which transformers caches one shape at a time
  and so recomputes four times per image) are kept per shape.
- The FPN neck's and the mask decoder's 1x1 convolutions run as packed oneDNN matmuls on the
  channels-last data they receive (torch picks a slow convolution path for that layout).

Nothing changes under bf16 autocast (the patched calls fall back to the stock ones there: autocast
already sends bf16 matmuls to oneDNN). The model's parameters and state dict are untouched; the
packed weights are extra memory (one more copy of the linear and 1x1 weights, ~120 MB for
hiera-tiny). Each patch is applied only where the module looks as this code expects, so another
transformers version that renamed something runs unpatched there, never wrongly.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

# Queries per oneDNN attention chunk: the chunk's score matrix (CHUNK x 4096 floats, 4 MB) stays
# in cache between the two matmuls and the softmax (256 was fastest of 128-4096 here).
ATTENTION_CHUNK = 256
# Below this many query x key pairs, torch's own attention is as fast (windowed blocks).
ONEDNN_ATTENTION_MIN = 1024 * 1024


def onednn_available() -> bool:
    """torch has the oneDNN packed-linear op, and it computes what F.linear does."""
    ops = getattr(torch.ops, "mkldnn", None)
    if not torch.backends.mkldnn.is_available() or ops is None:
        return False
    try:
        w, b, x = torch.randn(8, 16), torch.randn(8), torch.randn(3, 16)
        packed = ops._reorder_linear_weight(w, 3)
        y = ops._linear_pointwise(x, packed, b, "none", [], "")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return bool(torch.allclose(y, F.linear(x, w, b), atol=1e-5))


def _autocast_on() -> bool:
    return torch.is_autocast_enabled("cpu")


def _pack(weight: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), 4096)


def _linear(lin: nn.Linear, packed: torch.Tensor, x: torch.Tensor, attr: str = "none"):
    if _autocast_on() or x.dtype != torch.float32:
        y = F.linear(x, lin.weight, lin.bias)
        return F.gelu(y) if attr == "gelu" else F.relu(y) if attr == "relu" else y
    algorithm = "none" if attr == "gelu" else ""
    return torch.ops.mkldnn._linear_pointwise(x, packed, lin.bias, attr, [], algorithm)


def _patch_linear(lin: nn.Linear) -> None:
    lin._ms_packed = _pack(lin.weight)
    lin.forward = functools.partial(_fast_linear_forward, lin)


def _fast_linear_forward(lin: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return _linear(lin, lin._ms_packed, x)


def _fused_activation(module) -> str | None:
    """'gelu' (exact) or 'relu' when ``module`` is one oneDNN can fuse, else None."""
    act = getattr(module, "activation", None)
    if isinstance(act, nn.ReLU):
        return "relu"
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    if type(act).__name__ == "GELUActivation" and getattr(act, "act", None) is F.gelu:
        return "gelu"
    return None


def _patch_feed_forward(ff) -> bool:
    """Sam2FeedForward: proj_in -> act -> (layer -> act)* -> proj_out [-> sigmoid]."""
    attr = _fused_activation(ff)
    parts = ("proj_in", "proj_out", "layers", "sigmoid_output")
    if attr is None or not all(hasattr(ff, p) for p in parts):
        return False

    def forward(hidden_states):
        h = _linear(ff.proj_in, ff.proj_in._ms_packed, hidden_states, attr)
        for layer in ff.layers:
            h = _linear(layer, layer._ms_packed, h, attr)
        h = ff.proj_out(h)
        return torch.sigmoid(h) if ff.sigmoid_output else h

    ff.forward = forward
    return True


def attention(q, k, v, scale: float, onednn: bool = True) -> torch.Tensor:
    """softmax(q k^T * scale) v for (B, heads, L, d) tensors; long sequences through oneDNN."""
    b, h, n_q, _ = q.shape
    n_k = k.shape[2]
    small = n_q * n_k < ONEDNN_ATTENTION_MIN
    if not onednn or small or _autocast_on() or q.dtype != torch.float32:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    lp = torch.ops.mkldnn._linear_pointwise
    out = torch.empty_like(q)
    for bi in range(b):
        for hi in range(h):
            kh = k[bi, hi].contiguous()
            vt = v[bi, hi].t().contiguous()  # (d, n_k): "weight" of the second matmul
            for i in range(0, n_q, ATTENTION_CHUNK):
                scores = lp(q[bi, hi, i : i + ATTENTION_CHUNK] * scale, kh, None, "none", [], "")
                probs = torch.softmax(scores, dim=-1)
                out[bi, hi, i : i + ATTENTION_CHUNK] = lp(probs, vt, None, "none", [], "")
    return out


def _patch_hiera_attention(attn, onednn: bool) -> bool:
    """Sam2MultiScaleAttention without the discarded attention matrix."""
    needed = ("qkv", "proj", "num_attention_heads", "scale", "query_stride")
    if not all(hasattr(attn, a) for a in needed):
        return False

    def forward(hidden_states, **_kwargs):
        b, height, width, _ = hidden_states.shape
        n_heads = attn.num_attention_heads
        qkv = attn.qkv(hidden_states).reshape(b, height * width, 3, n_heads, -1)
        q, k, v = torch.unbind(qkv, 2)
        if attn.query_stride:  # Q pooling at a stage change
            q = q.reshape(b, height, width, -1).permute(0, 3, 1, 2)
            stride = attn.query_stride
            q = F.max_pool2d(q, kernel_size=stride, stride=stride, ceil_mode=False)
            q = q.permute(0, 2, 3, 1)
            height, width = q.shape[1:3]
            q = q.reshape(b, height * width, n_heads, -1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        out = attention(q, k, v, attn.scale, onednn)
        out = out.transpose(1, 2).reshape(b, height, width, -1)
        return attn.proj(out)

    attn.forward = forward
    return True


def _patch_one_by_one_conv(conv: nn.Conv2d) -> bool:
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding != (0, 0):
        return False
    if conv.groups != 1 or conv.dilation != (1, 1):
        return False
    packed = _pack(conv.weight[:, :, 0, 0])

    def forward(x):
        if _autocast_on() or x.dtype != torch.float32 or x.dim() != 4:
            return F.conv2d(x, conv.weight, conv.bias)
        y = torch.ops.mkldnn._linear_pointwise(
            x.permute(0, 2, 3, 1), packed, conv.bias, "none", [], ""
        )
        return y.permute(0, 3, 1, 2)  # N C H W with channels-last strides

    conv.forward = forward
    return True


def _cache_per_shape(module, name: str, key_of) -> None:
    """Memoise ``module.name(*args)`` by ``key_of(*args)`` (None: do not cache that call)."""
    original = getattr(module, name)
    cache: dict = {}

    def cached(*args, **kwargs):
        key = key_of(*args, **kwargs)
        if key is None:
            return original(*args, **kwargs)
        if key not in cache:
            cache[key] = original(*args, **kwargs)
        return cache[key]

    setattr(module, name, cached)


def accelerate(model) -> list[str]:
    """Apply the speed-ups above to ``model`` (a Sam2Model in eval mode) in place; returns what
    was applied, e.g. ['onednn-linear x101', ...], empty where nothing applied. A second call on
    the same model changes nothing and returns the first call's list."""
    previous = getattr(model, "_mattestudio_speedups", None)
    if previous is not None:
        return list(previous)
    done: list[str] = []
    counts: dict[str, int] = {}

    def count(what: str) -> None:
        counts[what] = counts.get(what, 0) + 1

    onednn = onednn_available()
    for module in model.modules():
        kind = type(module).__name__
        if kind == "Sam2MultiScaleAttention" and _patch_hiera_attention(module, onednn):
            count("hiera-attention")
        elif kind == "Sam2SinePositionEmbedding" and hasattr(module, "forward"):
            _cache_per_shape(
                module,
                "forward",
                lambda shape, device, dtype, mask=None: (
                    None if mask is not None else (tuple(shape), str(device), dtype)
                ),
            )
            count("position-cache")
        elif kind == "Sam2HieraDetModel" and hasattr(module, "_get_pos_embed"):
            _cache_per_shape(module, "_get_pos_embed", lambda hw: tuple(int(v) for v in hw))
            count("position-cache")
    if onednn:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                _patch_linear(module)
                count("onednn-linear")
            elif isinstance(module, nn.Conv2d) and _patch_one_by_one_conv(module):
                count("onednn-1x1-conv")
        for module in model.modules():
            if type(module).__name__ == "Sam2FeedForward" and _patch_feed_forward(module):
                count("fused-activation")
    for what, n in counts.items():
        done.append(f"{what} x{n}")
    model._mattestudio_speedups = tuple(done)
    return done
