"""Matting engines behind one small interface (see base.py) and a registry (registry.py)."""
