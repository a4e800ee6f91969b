"""Random-weight SAM 2 folders in the Hugging Face layout, for tests and benchmarks (no download).

``tiny``: a network of a few hundred thousand values that runs in milliseconds.
``hiera-tiny``: transformers' default Sam2Config, the image part of SAM 2.1 hiera-tiny
(31.4 M parameters; the published 38.9 M include the video memory modules).
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_SIDE = 128


def tiny_sub_configs(side: int = TINY_SIDE) -> dict:
    feat = side // 4
    return {
        "vision_config": {
            "model_type": "sam2_vision_model",
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "image_size": [side, side],
                "hidden_size": 16,
                "embed_dim_per_stage": [16, 32, 64, 128],
                "num_attention_heads_per_stage": [1, 1, 2, 2],
                "blocks_per_stage": [1, 1, 2, 1],
                "global_attention_blocks": [3],
                "window_size_per_stage": [4, 4, 4, 4],
            },
            "backbone_channel_list": [128, 64, 32, 16],
            "backbone_feature_sizes": [
                [feat, feat],
                [feat // 2, feat // 2],
                [feat // 4, feat // 4],
            ],
            "fpn_hidden_size": 32,
        },
        "prompt_encoder_config": {
            "hidden_size": 32,
            "image_size": side,
            "patch_size": 16,
            "mask_input_channels": 4,
        },
        "mask_decoder_config": {
            "hidden_size": 32,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
    }


def preprocessor_config(side: int = 1024, mean=None, std=None) -> dict:
    """What the published folders hold (Sam2ImageProcessorFast), at ``side``."""
    return {
        "image_processor_type": "Sam2ImageProcessorFast",
        "do_resize": True,
        "size": {"height": side, "width": side},
        "resample": 2,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(mean or (0.485, 0.456, 0.406)),
        "image_std": list(std or (0.229, 0.224, 0.225)),
        "mask_size": {"height": 256, "width": 256},
    }


def write_folder(folder, size: str = "tiny", seed: int = 0, mean=None, std=None) -> Path:
    """Save a random ``Sam2Model`` with save_pretrained plus its preprocessor_config.json."""
    import torch
    from transformers import Sam2Config, Sam2Model

    folder = Path(folder)
    if size == "tiny":
        config, side = Sam2Config(**tiny_sub_configs()), TINY_SIDE
    elif size == "hiera-tiny":
        config, side = Sam2Config(), 1024
    else:
        raise ValueError(f"size must be 'tiny' or 'hiera-tiny', not {size!r}")
    torch.manual_seed(seed)
    model = Sam2Model(config).eval()
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps(preprocessor_config(side, mean, std)), encoding="utf-8"
    )
    return folder
