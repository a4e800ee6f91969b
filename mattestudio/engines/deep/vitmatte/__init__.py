"""ViTMatte (Yao et al. 2023) through the transformers library: import, network, engine, hub pull."""
