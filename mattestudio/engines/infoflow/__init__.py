"""Information-flow matting (Aksoy, Aydin and Pollefeys, CVPR 2017) on the fast closed-form solver.

Modules: ``flows`` (the non-local flows from nearest neighbours), ``system`` (the SPD system on the
variable pixels and its preconditioned conjugate-gradient solver), ``engine`` (the editor-facing
session). Importing this package loads neither scipy nor numba.
"""
