"""Device choice: auto = CUDA, then MPS, then CPU. An explicit request that cannot be met is an error."""

from __future__ import annotations

import torch

from mattestudio.errors import MattestudioError


class DeviceError(MattestudioError):
    """The requested torch device does not exist here."""


def _mps_ok() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(spec: str = "auto") -> torch.device:
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_ok():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            why = (
                "this torch build has no CUDA support"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise DeviceError(
                f"device {spec!r} requested but {why}; use --device cpu or --device auto"
            )
        try:
            dev = torch.device(spec)
        except RuntimeError:
            raise DeviceError(
                f"device {spec!r} is not a valid CUDA device name (cuda, cuda:0, ...)"
            ) from None
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return torch.device("cuda", index)
    if spec == "mps":
        if not _mps_ok():
            raise DeviceError(
                "device 'mps' requested but Apple MPS is not available; use --device cpu or auto"
            )
        return torch.device("mps")
    raise DeviceError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps")


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
    return str(device)
