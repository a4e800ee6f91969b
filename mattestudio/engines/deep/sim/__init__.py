"""Semantic Image Matting (Sun, Tang, Tai, CVPR 2021)."""
