"""Fixtures shared by the fast closed-form tests."""

import pytest

from mattestudio.engines.fastcf import direct


@pytest.fixture
def sizes(monkeypatch):
    """Records the number of variables of every factorization."""
    seen: list[int] = []
    real = direct.factorize

    def spy(matrix, coords, **kw):
        seen.append(matrix.shape[0])
        return real(matrix, coords, **kw)

    monkeypatch.setattr(direct, "factorize", spy)
    return seen
