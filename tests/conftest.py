"""Shared fixtures: a per-session dataset cache and the real CIFAR-10 copy when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny tests run fastest on one thread (and never oversubscribe a shared machine);
# tests on the real dataset ask for every core with the `all_cores` fixture.
torch.set_num_threads(1)


@pytest.fixture
def all_cores():
    """Use every core for the duration of a test on real data."""
    torch.set_num_threads(os.cpu_count() or 1)
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Tests never touch the user's cache (~/.cache/nasmix)."""
    old = os.environ.get("NASMIX_CACHE")
    os.environ["NASMIX_CACHE"] = str(tmp_path_factory.mktemp("nasmix-cache"))
    yield
    if old is None:
        os.environ.pop("NASMIX_CACHE", None)
    else:
        os.environ["NASMIX_CACHE"] = old


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance shared by every Ray test of the session: starting one (and
    its worker processes, which import torch) costs seconds, so it is done once."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def cifar_path() -> Path:
    """The real CIFAR-10 copy named by $NASMIX_DATA; the test is skipped without it."""
    value = os.environ.get("NASMIX_DATA")
    if not value or not Path(value).exists():
        pytest.skip("set NASMIX_DATA to the CIFAR-10 copy (e.g. ../shared/datasets/cifar10-jpeg.zip) to run")
    return Path(value)


@pytest.fixture(scope="session")
def cifar(cifar_path):
    """The real CIFAR-10 arrays (decoded once per session)."""
    from nasmix.data import load_dataset

    return load_dataset("cifar10", cifar_path)
