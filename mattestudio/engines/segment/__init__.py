"""Prompted segmentation: clicks and boxes -> a subject mask -> a first trimap.

SAM 2.1 through ``transformers`` (``Sam2Model`` only: its processor needs torchvision, so the
resize, normalisation and mask upsampling are ours, following the processor's config) when a
model is imported, OpenCV GrabCut otherwise. Nothing here imports torch at module import time
except ``predictor`` and ``sam2_store``.
"""
