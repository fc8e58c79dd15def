"""Shared test settings: small thread count and deterministic torch."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_configure(config: pytest.Config) -> None:
    # Two cores: one intra-op thread per test process keeps the small models from thrashing.
    torch.set_num_threads(1)
