"""Every registered module (nasmix's own and any installed plugin's) passes the
contract suite of its kind. tests/test_contract_failures.py shows that each
suite catches a broken module."""

import pytest

from nasmix import registry, testing


@pytest.mark.parametrize("check", testing.SPACE_CHECKS, ids=lambda c: c.__name__.removeprefix("check_space_"))
@pytest.mark.parametrize("name", registry.names("space"))
def test_space_contract(name, check):
    check(name)


@pytest.mark.parametrize("name", registry.names("proxy"))
def test_proxy_contract(name):
    testing.check_proxy(name)


@pytest.mark.parametrize("name", registry.names("model"))
def test_model_contract(name):
    testing.check_model(name)


@pytest.mark.parametrize("name", registry.names("dataset"))
def test_dataset_contract(name):
    testing.check_dataset(name)


# One-shot searches on these spaces' supernets take 5 to 40 s of CPU each even at the
# contract's tiny size: they run in the full suite, not in the `-m "not slow"` lane,
# where every strategy still passes its contract on the other spaces.
HEAVY_SUPERNETS = {"darts", "hierarchical"}


def _strategy_space_pairs():
    pairs = []
    for entry in registry.entries("strategy"):
        for space in registry.names("space"):
            if entry.spaces is None or space in entry.spaces:
                heavy = getattr(entry.obj, "kind", "") == "oneshot" and space in HEAVY_SUPERNETS
                pairs.append(pytest.param(entry.name, space, marks=[pytest.mark.slow] if heavy else []))
    return pairs


@pytest.mark.parametrize("name,space", _strategy_space_pairs())
def test_strategy_contract(name, space):
    testing.check_strategy(name, space)


@pytest.mark.parametrize("name", registry.names("estimator"))
def test_estimator_contract(name):
    testing.check_estimator(name)
