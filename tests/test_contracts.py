"""Every registered module passes the contract suite of its kind."""

import pytest

from nasmix import registry, testing


@pytest.mark.parametrize("name", registry.names("space"))
def test_space_contract(name):
    testing.check_space(name)


@pytest.mark.parametrize("name", registry.names("model"))
def test_model_contract(name):
    testing.check_model(name)


@pytest.mark.parametrize("name", registry.names("dataset"))
def test_dataset_contract(name):
    testing.check_dataset(name)
