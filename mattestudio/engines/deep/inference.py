"""Shared inference plumbing: preprocessing, padding, unknown-region crop, overlapping tiles,
precision, the model cache and out-of-memory messages."""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mattestudio.errors import MattestudioError

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalise(image: np.ndarray) -> np.ndarray:
    """ImageNet normalisation of RGB in [0, 1] (every published network uses it)."""
    return (image - MEAN) / STD


def quantise(trimap: np.ndarray) -> np.ndarray:
    """Snap a user trimap to exactly {0, 128, 255}: SIM tests ==128 and ==0/255 literally."""
    t = np.full(trimap.shape, 128, np.uint8)
    t[trimap < 64] = 0
    t[trimap > 191] = 255
    return t


def pad_to(arr: np.ndarray, ph: int, pw: int, mode: str) -> np.ndarray:
    if ph == 0 and pw == 0:
        return arr
    pads = ((0, ph), (0, pw)) + ((0, 0),) * (arr.ndim - 2)
    return np.pad(arr, pads, mode=mode)  # type: ignore[call-overload]


# ------------------------------------------------------------------ region of interest and tiles
Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (half-open)


def unknown_box(trimap: np.ndarray) -> Box | None:
    ys = np.flatnonzero((trimap == 128).any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero((trimap == 128).any(axis=0))
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def _fit(lo: int, hi: int, limit: int, multiple: int, align: int) -> tuple[int, int]:
    """Grow [lo, hi) inside [0, limit) so that it starts on the network's pooling grid (``align``)
    and its size is a multiple of ``multiple``: then every pooling window inside the crop is the
    one the whole-image run uses, and results agree exactly beyond the receptive field."""
    lo, hi = max(0, lo), min(limit, hi)
    lo -= lo % align
    size = -(-(hi - lo) // multiple) * multiple
    if lo + size > limit:  # at the far border: end on it (the canvas size is a multiple)
        size = min(limit, size)
        lo = limit - size
    return lo, lo + size


def plan_windows(
    box: Box, canvas: tuple[int, int], tile: int, context: int, multiple: int, align: int = 1
) -> list[tuple[Box, Box]]:
    """(core, window) pairs. Cores partition ``box``; each window is its core plus ``context`` px
    each side (clipped to the canvas, grown to the network's size multiple). ``tile`` bounds the
    window side (0 = one window)."""
    y0, y1, x0, x1 = box
    H, W = canvas
    core_max = max(tile - 2 * context, 64) if tile > 0 else max(H, W)

    def count(lo, hi, limit):  # one window when the box plus its context fits in a tile
        if tile <= 0 or min(hi + context, limit) - max(lo - context, 0) <= tile:
            return 1
        return math.ceil((hi - lo) / core_max)

    ny, nx = count(y0, y1, H), count(x0, x1, W)
    ys = np.linspace(y0, y1, ny + 1).round().astype(int)
    xs = np.linspace(x0, x1, nx + 1).round().astype(int)
    out = []
    for i in range(ny):
        for j in range(nx):
            core = (ys[i], ys[i + 1], xs[j], xs[j + 1])
            wy = _fit(core[0] - context, core[1] + context, H, multiple, align)
            wx = _fit(core[2] - context, core[3] + context, W, multiple, align)
            out.append((core, (*wy, *wx)))
    return out


def _ramp(lo: int, hi: int, clo: int, chi: int, band: int) -> np.ndarray:
    """1 on the core [clo, chi), falling linearly to 0 over ``band`` px beyond it. Pixels nearer
    the window edge than that get no weight: their context is cut off, so they are the least
    accurate (with band 0 the cores simply abut)."""
    r = np.zeros(hi - lo, np.float32)
    r[clo - lo : chi - lo] = 1
    ramp = np.arange(band, 0, -1, dtype=np.float32) / (band + 1)
    left = ramp[: clo - lo]
    r[clo - lo - len(left) : clo - lo] = left[::-1]
    right = ramp[: hi - chi]
    r[chi - lo : chi - lo + len(right)] = right
    return r


def run_windows(
    windows,
    canvas,
    channels: int,
    fn: Callable,
    progress=None,
    cancel=None,
    label="",
    band: int = 0,
) -> np.ndarray:
    """Run ``fn(window) -> H x W x channels`` on each window; blend neighbours over ``band`` px."""
    acc = np.zeros((*canvas, channels), np.float32)
    wsum = np.zeros(canvas, np.float32)
    n = len(windows)
    for i, (core, win) in enumerate(windows):
        if cancel is not None:
            cancel.raise_if_cancelled()
        if progress is not None:
            progress(
                i / n, f"{label}: tile {i + 1} of {n}" if n > 1 else f"{label}: running the network"
            )
        y0, y1, x0, x1 = win
        out = fn(win)
        wgt = np.outer(_ramp(y0, y1, core[0], core[1], band), _ramp(x0, x1, core[2], core[3], band))
        acc[y0:y1, x0:x1] += out * wgt[..., None]
        wsum[y0:y1, x0:x1] += wgt
    if progress is not None:
        progress(1.0, f"{label}: done")
    return acc / np.maximum(wsum, 1e-12)[..., None]


# ------------------------------------------------------------------ precision and tensors
def bf16_supported() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


#: What ``precision=auto`` (the user asking for speed) picks on a CPU with bf16 support. The
#: default is fp32 (engine parameter): bf16's error is measured in docs/benchmarks-deep.md.
CPU_AUTO_PRECISION = "bf16"


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        if precision == "bf16" and device.type == "cpu" and not bf16_supported():
            return "fp32"
        if precision == "fp16" and device.type == "cpu":
            return "fp32"  # fp16 convolutions on CPU are slow and not more accurate
        return precision
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and CPU_AUTO_PRECISION == "bf16" and bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def memory_format(precision: str):
    return torch.preserve_format if precision == "fp32" else torch.channels_last


def to_tensor(
    arr: np.ndarray, device: torch.device, fmt=torch.preserve_format, dtype=None
) -> torch.Tensor:
    """H x W x C (or N x H x W x C) numpy -> N x C x H x W tensor on ``device``.

    For channels-last the HWC buffer already is the wanted layout, so it is viewed, not transposed
    twice (the 20-channel smap is 85 MB at 1 MP)."""
    arr = np.ascontiguousarray(arr if arr.ndim == 4 else arr[None])
    t = torch.from_numpy(arr).permute(0, 3, 1, 2)
    if fmt is not torch.channels_last:
        t = t.contiguous()
    return t.to(device=device, dtype=dtype or t.dtype)


def input_dtype(precision: str, device: torch.device):
    """dtype the inputs are handed over in: that of the weights ``prepared`` returns."""
    return torch.bfloat16 if precision == "bf16" and device.type == "cpu" else torch.float32


_PREPARED: weakref.WeakKeyDictionary[torch.nn.Module, dict] = weakref.WeakKeyDictionary()


def prepared(module: torch.nn.Module, precision: str, device: torch.device) -> torch.nn.Module:
    """The module as it runs at ``precision``: a converted copy, made once and kept with the module.

    bf16 on CPU: a channels-last copy with bf16 weights. Autocast would otherwise cast every weight
    from fp32 on every forward (SIM's classifier runs once per patch batch). Other precisions: a
    channels-last copy. Never in place: the cached fp32 module is shared by every later run, and a
    layout change alone moves fp32 results (oneDNN picks other kernels), so a bf16 run must leave
    it exactly as loaded."""
    if precision == "fp32":
        return module
    with _CACHE_LOCK:
        variants = _PREPARED.setdefault(module, {})
    key = (precision, str(device))
    if key not in variants:
        conv = copy.deepcopy(module)
        if precision == "bf16" and device.type == "cpu":
            conv = conv.to(dtype=torch.bfloat16)
        variants[key] = conv.to(memory_format=torch.channels_last)
    return variants[key]


@contextlib.contextmanager
def oom_guard(device: torch.device, size: str):
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
        msg = str(exc).lower()
        if (
            isinstance(exc, RuntimeError)
            and not isinstance(exc, torch.OutOfMemoryError)
            and "out of memory" not in msg
            and "can't allocate memory" not in msg
        ):
            raise
        if device.type == "cuda":
            torch.cuda.empty_cache()
        hint = "use --param tile=1024 (or smaller)" + (
            " or --device cpu" if device.type != "cpu" else ""
        )
        raise MattestudioError(
            f"out of memory running the network on a {size} region on {device}; {hint}"
        ) from None


# ------------------------------------------------------------------ model cache
_CACHE: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 3


def cached_model(
    kind_hint: str, path: Path, device: torch.device, loader: Callable[[], torch.nn.Module]
):
    """One loaded module per (kind, checkpoint file, device), least recently used evicted."""
    st = path.stat()
    key = (kind_hint, str(path.resolve()), st.st_mtime_ns, st.st_size, str(device))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    model = loader()
    with _CACHE_LOCK:
        _CACHE[key] = model
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return model


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
