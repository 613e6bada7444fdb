"""One small simulated dataset per test session: simulating costs about a second."""

from __future__ import annotations

import pytest

from models.dataset import Dataset, simulate

SMALL_CUSTOMERS = 200
SMALL_SEED = 11


@pytest.fixture(scope="session")
def small() -> dict[str, Dataset]:
    return simulate(SMALL_CUSTOMERS, SMALL_SEED)
