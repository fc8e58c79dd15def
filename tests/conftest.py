"""Shared test settings: small thread count and deterministic torch."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own simclr cache (the per-machine precision choice): none reads or writes the
    user's ~/.cache, and a choice faked in one test never reaches another."""
    monkeypatch.setenv("SIMCLR_CACHE_DIR", str(tmp_path_factory.mktemp("simclr-cache")))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow (fuzz, soak: minutes each) run only with SIMCLR_SLOW=1 (CI sets it for its second step)."""
    if os.environ.get("SIMCLR_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow (fuzz / soak): SIMCLR_SLOW=1 python -m pytest -m slow runs it (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    # Two cores: one intra-op thread per test process keeps the small models from thrashing.
    torch.set_num_threads(1)
