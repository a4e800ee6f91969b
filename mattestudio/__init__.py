"""mattestudio: interactive image matting.

`import mattestudio` stays light: no Qt, torch or pymatting is imported until used.

    >>> import mattestudio
    >>> result = mattestudio.matte("photo.jpg", "trimap.png", engine="closed-form")
    >>> result.alpha.shape, result.foreground.shape
"""

__version__ = "0.1.0"

__all__ = [
    "MattestudioError",
    "MattingResult",
    "__version__",
    "batch",
    "matte",
    "trimap_from_prompts",
]


def __getattr__(name):
    # Lazy attributes so that importing the package does not import numpy-heavy modules.
    if name == "matte":
        from mattestudio.api import matte

        return matte
    if name == "trimap_from_prompts":  # issue 14
        from mattestudio.api import trimap_from_prompts

        return trimap_from_prompts
    if name == "batch":
        from mattestudio.api import batch

        return batch
    if name == "MattingResult":
        from mattestudio.types import MattingResult

        return MattingResult
    if name == "MattestudioError":
        from mattestudio.errors import MattestudioError

        return MattestudioError
    raise AttributeError(f"module 'mattestudio' has no attribute {name!r}")
