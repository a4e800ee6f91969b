"""Random-valued weights with the published names and shapes, for tests and benchmarks.

No real weights can ship or be downloaded where the tests run; these make the networks give
values in a useful range so comparisons between two code paths mean something.
"""

from __future__ import annotations

from typing import Any


def settle_sim_decoder(state: Any) -> None:
    """Set each decoder BatchNorm's running_var to the preceding weight-standardised conv's fan-in
    (what training would learn), so random-weight SIM gives alpha inside (0, 1), not clamped."""
    import torch

    for key in list(state):
        if key.startswith("decoder.") and key.endswith(".running_var"):
            prefix, idx = key[: -len(".running_var")].rsplit(".", 1)
            conv = state.get(f"{prefix}.{int(idx) - 1}.weight")
            if conv is not None:
                state[key] = torch.full_like(state[key], float(conv[0].numel()))


def randomise_(module: Any, seed: int = 0) -> Any:
    """Fill every parameter and norm statistic of ``module`` with random values of a sensible
    scale (fan-in scaled weights, norm scales near 1): transformers' own initialisation makes
    ViTMatte's output a constant 0.5, so comparisons on it would mean nothing."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.state_dict(keep_vars=True).items()):
            if not t.is_floating_point():
                continue
            shape = t.shape
            if name.endswith("running_var"):
                val = 1 + 0.1 * torch.rand(shape, generator=g)
            elif name.endswith("running_mean"):
                val = 0.05 * torch.randn(shape, generator=g)
            elif "rel_pos" in name or "position_embeddings" in name:
                val = 0.1 * torch.randn(shape, generator=g)
            elif len(shape) >= 2:
                fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
                val = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
            elif name.endswith("weight"):  # norm scales
                val = 1 + 0.1 * torch.randn(shape, generator=g)
            else:
                val = 0.05 * torch.randn(shape, generator=g)
            t.copy_(val.to(t.dtype))
    return module


def vitmatte_config(size: str = "tiny"):
    """A VitMatteConfig: ``tiny`` for tests, or the layout of ViTMatte-S / -B (``small``/``base``)
    as published for hustvl/vitmatte-*-composition-1k, for benchmarks."""
    from transformers import VitDetConfig, VitMatteConfig

    if size == "tiny":
        backbone = VitDetConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            mlp_ratio=2,
            pretrain_image_size=64,
            num_channels=4,
            window_block_indices=[0],
            residual_block_indices=[1],
            use_relative_position_embeddings=True,
            window_size=2,
            out_features=["stage2"],  # type: ignore[call-arg]  # a __post_init__ kwarg
        )
        return VitMatteConfig(
            backbone_config=backbone,
            hidden_size=32,
            convstream_hidden_sizes=[8, 16, 16],
            fusion_hidden_sizes=[16, 16, 8, 8],
        )
    width, heads = {"small": (384, 6), "base": (768, 12)}[size]
    backbone = VitDetConfig(
        hidden_size=width,
        num_hidden_layers=12,
        num_attention_heads=heads,
        mlp_ratio=4,
        image_size=512,
        pretrain_image_size=224,
        num_channels=4,
        window_block_indices=[0, 1, 3, 4, 6, 7, 9, 10],
        residual_block_indices=[2, 5, 8, 11],
        use_relative_position_embeddings=True,
        window_size=14,
        out_features=["stage12"],  # type: ignore[call-arg]
    )
    # lists, as in the published config.json (transformers' tuple defaults fail to build)
    return VitMatteConfig(
        backbone_config=backbone,
        hidden_size=width,
        convstream_hidden_sizes=[48, 96, 192],
        fusion_hidden_sizes=[256, 128, 64, 32],
    )


def write_vitmatte_folder(folder, size: str = "tiny", seed: int = 0):
    """A Hugging Face model folder (config.json + model.safetensors) with random weights.

    ``small``/``base`` randomise only the detail decoder: fan-in scaled weights in all 12
    transformer blocks make the activations grow until the alpha saturates, which would make
    any fp32/bf16 comparison meaningless; transformers' own initialisation stays there."""
    from transformers import VitMatteForImageMatting

    model = VitMatteForImageMatting(vitmatte_config(size)).eval()
    randomise_(model if size == "tiny" else model.decoder, seed)
    model.save_pretrained(str(folder))
    return model
