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
