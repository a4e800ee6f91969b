"""Faster CPU inference for transformers' ``Sam2Model``: the same computation, results equal to
float rounding, measured in benchmarks/bench_sam2.py (docs/benchmarks.md, SAM 2 section).

What ``accelerate(model)`` changes, each for a measured reason (single thread, 1 MP image):

- Linear layers run through oneDNN with weights packed once. torch's fp32 ``addmm`` calls MKL,
  which on AMD CPUs takes its AVX2 code path (~95 GFLOP/s on one core here) while oneDNN uses
  AVX-512 on any vendor (~210 GFLOP/s). An MLP's GELU (exact, erf) or ReLU runs inside the same
  oneDNN call, which saves a pass over the largest activations.
- Hiera's attention: transformers' ``Sam2MultiScaleAttention`` computes an attention matrix it then
  throws away (``attn_weights`` before the real attention call); ours does not. The three global
  attention blocks (4096 tokens) use oneDNN matmuls over chunks of queries when torch runs on one
  thread (0.6x of torch's fp32 flash attention, which goes through MKL too); with more threads
  they keep torch's attention, which copes better with a busy machine.
- Position encodings that depend only on the weights and the feature size (Hiera's interpolated
  window embedding, the FPN neck's sine encodings, which transformers caches one shape at a time
  and so recomputes four times per image) are kept per shape.
- The FPN neck's and the mask decoder's 1x1 convolutions, and the decoder's 2x2 stride-2
  upscaling, run as packed oneDNN matmuls on the channels-last data they receive (torch picks a
  slow convolution path for that layout).
- A click (the mask decoder for one set of prompts) skips four ``repeat_interleave`` copies by 1
  (about 20 MB per click), and what its first two-way block computes from the image alone (image
  + position, three projections of the 4096 image tokens) is kept until the image changes.

The linear and convolution patches fall back to the stock calls under bf16 autocast (autocast
already sends bf16 matmuls to oneDNN); the others apply to both precisions. The model's parameters and state dict are untouched; the
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
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


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
    # Several threads: torch's one flash-attention call. The chunked loop is hundreds of short
    # parallel regions, and on a loaded machine each waits for a descheduled thread (measured:
    # as slow as stock with 2 threads at load 7, where SDPA took 0.6x of stock's CPU time).
    threaded = torch.get_num_threads() > 1
    if not onednn or small or threaded or _autocast_on() or q.dtype != torch.float32:
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


def _patch_upscale_conv(conv: nn.ConvTranspose2d) -> bool:
    """A transposed convolution whose kernel equals its stride (the mask decoder's 2x2 stride-2
    upscaling) is one matmul per input pixel: oneDNN on the channels-last input, then the 2x2
    blocks interleaved. torch runs these on a slow path for the strided input they get."""
    k = tuple(conv.kernel_size)
    if k != tuple(conv.stride) or conv.padding != (0, 0) or conv.output_padding != (0, 0):
        return False
    if conv.groups != 1 or conv.dilation != (1, 1):
        return False
    c_in, c_out, kh, kw = conv.weight.shape
    # Rows ordered (c_out, a, b): output pixel (kh*i + a, kw*j + b) of channel c_out.
    packed = _pack(conv.weight.permute(1, 2, 3, 0).reshape(c_out * kh * kw, c_in))
    bias = None if conv.bias is None else conv.bias.detach().repeat_interleave(kh * kw)

    def forward(x, output_size=None):
        if output_size is not None or _autocast_on() or x.dtype != torch.float32 or x.dim() != 4:
            return F.conv_transpose2d(x, conv.weight, conv.bias, conv.stride)
        n, _, h, w = x.shape
        y = torch.ops.mkldnn._linear_pointwise(x.permute(0, 2, 3, 1), packed, bias, "none", [], "")
        y = y.view(n, h, w, c_out, kh, kw).permute(0, 3, 1, 4, 2, 5)
        return y.reshape(n, c_out, h * kh, w * kw)

    conv.forward = forward
    return True


def _project_attend(attn, q, k, v, batch: int, point_batch: int) -> torch.Tensor:
    """Sam2Attention.forward after its input projections: heads, attention, output projection."""
    shape = (batch * point_batch, -1, attn.num_attention_heads, attn.head_dim)
    q, k, v = (t.view(*shape).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    out = out.transpose(1, 2).reshape(
        batch, point_batch, -1, attn.num_attention_heads * attn.head_dim
    )
    return attn.o_proj(out)


def _two_way_ok(tr) -> bool:
    block = ["self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token", "mlp"]
    block += [f"layer_norm{i}" for i in range(1, 5)] + ["skip_first_layer_pe"]
    attn = ("q_proj", "k_proj", "v_proj", "o_proj", "num_attention_heads", "head_dim", "scaling")
    if not all(hasattr(tr, a) for a in ("layers", "final_attn_token_to_image")):
        return False
    if not hasattr(tr, "layer_norm_final_attn") or len(tr.layers) == 0:
        return False
    blocks_ok = all(all(hasattr(b, a) for a in block) for b in tr.layers)
    attns = [tr.final_attn_token_to_image]
    for b in tr.layers:
        attns += [b.self_attn, b.cross_attn_token_to_image, b.cross_attn_image_to_token]
    return blocks_ok and all(all(hasattr(a, n) for n in attn) for a in attns)


class _ImageSide:
    """What the two-way transformer's first block computes from the image alone: the same for
    every click on one image (keys + position, and three projections of 4096 x 256 tokens)."""

    def __init__(self, tr, image, dense, pe):
        first = tr.layers[0]
        self.image, self.dense, self.pe = image, dense, pe  # held: storage cannot be reused
        self.autocast = _autocast_on()  # bf16 projections are not reused by an fp32 click
        self.keys = (image + dense).flatten(2).transpose(1, 2).unsqueeze(1)
        self.key_pe = pe.flatten(2).transpose(1, 2).unsqueeze(1)
        self.key0 = self.keys + self.key_pe
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        self.t2i_k, self.t2i_v = t2i.k_proj(self.key0), t2i.v_proj(self.keys)
        self.i2t_q = i2t.q_proj(self.key0)

    def matches(self, image, dense, pe) -> bool:
        """The same image tensor (held, so a pointer match is the same storage), and equal
        dense and position encodings (a new tensor per click, 1 M values: ~1 ms to compare)."""
        if image.data_ptr() != self.image.data_ptr() or image.shape != self.image.shape:
            return False
        if self.autocast != _autocast_on():
            return False
        if image.stride() != self.image.stride() or dense.shape != self.dense.shape:
            return False
        return bool(torch.equal(dense, self.dense) and torch.equal(pe, self.pe))


def _two_way(tr, tokens, side: _ImageSide):
    """Sam2TwoWayTransformer.forward for one prompt set, ``side`` holding the image-only part
    of the first block; keys + position is computed once per block instead of twice."""
    batch, point_batch = tokens.shape[:2]
    keys, key_pe = side.keys, side.key_pe
    queries = tokens
    for i, blk in enumerate(tr.layers):
        if blk.skip_first_layer_pe:
            queries, _ = blk.self_attn(query=queries, key=queries, value=queries)
        else:
            q = queries + tokens
            attn_out, _ = blk.self_attn(query=q, key=q, value=queries)
            queries = queries + attn_out
        queries = blk.layer_norm1(queries)
        t2i, i2t = blk.cross_attn_token_to_image, blk.cross_attn_image_to_token
        q = queries + tokens
        if i == 0:
            key, k_t2i, v_t2i = side.key0, side.t2i_k, side.t2i_v
        else:
            key = keys + key_pe
            k_t2i, v_t2i = t2i.k_proj(key), t2i.v_proj(keys)
        queries = queries + _project_attend(t2i, t2i.q_proj(q), k_t2i, v_t2i, batch, point_batch)
        queries = blk.layer_norm2(queries)
        queries = blk.layer_norm3(queries + blk.mlp(queries))
        q = queries + tokens
        q_i2t = side.i2t_q if i == 0 else i2t.q_proj(key)
        attn_out = _project_attend(
            i2t, q_i2t, i2t.k_proj(q), i2t.v_proj(queries), batch, point_batch
        )
        keys = blk.layer_norm4(keys + attn_out)
    final = tr.final_attn_token_to_image
    q, key = queries + tokens, keys + key_pe
    attn_out = _project_attend(
        final, final.q_proj(q), final.k_proj(key), final.v_proj(keys), batch, point_batch
    )
    return tr.layer_norm_final_attn(queries + attn_out), keys


def _patch_mask_decoder(dec) -> bool:
    """Sam2MaskDecoder without its per-click copies for one prompt set (``repeat_interleave``
    by 1 of the image embedding, its position encoding and both high-resolution feature maps:
    about 20 MB copied per click). Other calls run the stock forward."""
    needed = (
        "obj_score_token",
        "iou_token",
        "mask_tokens",
        "transformer",
        "upscale_conv1",
        "upscale_conv2",
        "upscale_layer_norm",
        "activation",
        "output_hypernetworks_mlps",
        "iou_prediction_head",
        "pred_obj_score_head",
        "num_mask_tokens",
        "dynamic_multimask_via_stability",
        "_dynamic_multimask_via_stability",
    )
    if not all(hasattr(dec, a) for a in needed) or not _two_way_ok(dec.transformer):
        return False
    stock = dec.forward
    sides: list[_ImageSide] = []  # the last image's first-block part

    def forward(
        image_embeddings,
        image_positional_embeddings,
        sparse_prompt_embeddings,
        dense_prompt_embeddings,
        multimask_output,
        high_resolution_features,
        attention_similarity=None,
        target_embedding=None,
        **kwargs,
    ):
        batch_size, n_channels, height, width = image_embeddings.shape
        point_batch = sparse_prompt_embeddings.shape[1]
        if (
            point_batch != 1
            or attention_similarity is not None
            or target_embedding is not None
            or sparse_prompt_embeddings.shape[0] == 0
            or dec.training
        ):
            return stock(
                image_embeddings,
                image_positional_embeddings,
                sparse_prompt_embeddings,
                dense_prompt_embeddings,
                multimask_output,
                high_resolution_features,
                attention_similarity,
                target_embedding,
                **kwargs,
            )
        out_tokens = torch.cat(
            [dec.obj_score_token.weight, dec.iou_token.weight, dec.mask_tokens.weight], dim=0
        )
        out_tokens = out_tokens.expand(batch_size, 1, -1, -1)
        tokens = torch.cat((out_tokens, sparse_prompt_embeddings), dim=2)
        tokens = tokens.to(dec.iou_token.weight.dtype)
        pe, dense = image_positional_embeddings, dense_prompt_embeddings
        if not sides or not sides[0].matches(image_embeddings, dense, pe):
            sides[:] = [_ImageSide(dec.transformer, image_embeddings, dense, pe)]
        tokens, image = _two_way(dec.transformer, tokens, sides[0])
        iou_token_out = tokens[:, :, 1, :]
        mask_tokens_out = tokens[:, :, 2 : 2 + dec.num_mask_tokens, :]
        image = image.transpose(2, 3).view(batch_size, n_channels, height, width)
        feat_s0, feat_s1 = high_resolution_features
        up = dec.upscale_conv1(image) + feat_s1
        up = dec.activation(dec.upscale_layer_norm(up))
        up = dec.activation(dec.upscale_conv2(up) + feat_s0)
        hyper_in = torch.stack(
            [
                mlp(mask_tokens_out[:, :, i, :])
                for i, mlp in enumerate(dec.output_hypernetworks_mlps)
            ],
            dim=2,
        )
        _, n_up, up_h, up_w = up.shape
        up = up.reshape(batch_size, 1, n_up, up_h * up_w)
        masks = (hyper_in @ up).view(batch_size, 1, -1, up_h, up_w)
        iou_pred = dec.iou_prediction_head(iou_token_out)
        object_score_logits = dec.pred_obj_score_head(tokens[:, :, 0, :])
        if multimask_output:
            mask_slice = slice(1, None)
            masks, iou_pred = masks[:, :, mask_slice], iou_pred[:, :, mask_slice]
        elif dec.dynamic_multimask_via_stability:
            mask_slice = slice(0, 1)
            masks, iou_pred = dec._dynamic_multimask_via_stability(masks, iou_pred)
        else:
            mask_slice = slice(0, 1)
            masks, iou_pred = masks[:, :, mask_slice], iou_pred[:, :, mask_slice]
        return masks, iou_pred, mask_tokens_out[:, :, mask_slice], object_score_logits

    dec.forward = forward
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


def accelerate(model, onednn: bool | None = None) -> list[str]:
    """Apply the speed-ups above to ``model`` (a Sam2Model in eval mode) in place; returns what
    was applied, e.g. ['onednn-linear x101', ...], empty where nothing applied. ``onednn``
    False: only the changes that need no oneDNN (for measuring); None: oneDNN where it works.
    A second call on the same model changes nothing and returns the first call's list."""
    previous = getattr(model, "_mattestudio_speedups", None)
    if previous is not None:
        return list(previous)
    done: list[str] = []
    counts: dict[str, int] = {}

    def count(what: str) -> None:
        counts[what] = counts.get(what, 0) + 1

    onednn = onednn_available() if onednn is None else onednn and onednn_available()
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
        elif kind == "Sam2Model" and hasattr(module, "get_image_wide_positional_embeddings"):
            _cache_per_shape(module, "get_image_wide_positional_embeddings", lambda: ())
            count("position-cache")
        elif kind == "Sam2MaskDecoder" and _patch_mask_decoder(module):
            count("decoder-without-copies")
    if onednn:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                _patch_linear(module)
                count("onednn-linear")
            elif isinstance(module, nn.Conv2d) and _patch_one_by_one_conv(module):
                count("onednn-1x1-conv")
            elif isinstance(module, nn.ConvTranspose2d) and _patch_upscale_conv(module):
                count("onednn-upscale-conv")
        for module in model.modules():
            if type(module).__name__ == "Sam2FeedForward" and _patch_feed_forward(module):
                count("fused-activation")
    for what, n in counts.items():
        done.append(f"{what} x{n}")
    model._mattestudio_speedups = tuple(done)
    return done
