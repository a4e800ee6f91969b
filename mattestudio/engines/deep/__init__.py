"""Deep matting engines (DIM, SIM). Nothing here imports torch at package import time; the
registry and `mattestudio engines` only read checkpoint files' headers (see kinds.py)."""
