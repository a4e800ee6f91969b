"""Deep Image Matting (Xu et al. 2017) over the community ports' published checkpoints."""
