from dataclasses import dataclass

import pytest

from nasmix import registry
from nasmix.config import build_config
from nasmix.errors import ConfigError, UnknownNameError


def test_unknown_name_lists_close_matches_and_valid_names():
    with pytest.raises(UnknownNameError) as err:
        registry.get("model", "resnet21")
    text = str(err.value)
    assert "Did you mean 'resnet20'" in text and "Valid:" in text and "resnet20" in text


def test_unknown_kind():
    with pytest.raises(UnknownNameError, match="module kind"):
        registry.names("spacez")


def test_every_kind_loads_and_has_descriptions():
    for kind in registry.KINDS:
        for entry in registry.entries(kind):
            assert entry.description and "\n" not in entry.description


def test_register_requires_docstring():
    with pytest.raises(TypeError, match="docstring"):

        @registry.register("model", "undocumented_test_model")
        class Undocumented:
            pass


def test_names_pattern():
    assert registry.names("dataset", "cifar*") == ["cifar10", "cifar100"]


def test_create_rejects_unknown_and_bad_options():
    with pytest.raises(ConfigError, match="Did you mean 'width'"):
        registry.create("model", "resnet20", widht=3)
    with pytest.raises(ConfigError, match="depth must be 6n"):
        registry.create("model", "resnet20", depth=21)
    with pytest.raises(ConfigError, match="must be int"):
        registry.create("model", "resnet20", depth="deep")


def test_build_config_coerces_simple_types():
    @dataclass(frozen=True)
    class Opts:
        n: int = 1
        x: float = 0.5
        flag: bool = False
        name: str | None = None
        sizes: tuple = ()

    got = build_config(Opts, {"n": "3", "x": 2, "flag": "yes", "name": None, "sizes": [1, 2]}, "demo")
    assert got == Opts(3, 2.0, True, None, (1, 2))
    with pytest.raises(ConfigError, match="true or false"):
        build_config(Opts, {"flag": "maybe"}, "demo")


def test_two_modules_registering_one_name_is_an_error():
    """Two files that register the same name with the same class name must not silently replace each other."""
    first = type("Demo", (), {"__doc__": "One demo.", "__module__": "plugin_a"})
    second = type("Demo", (), {"__doc__": "Another demo.", "__module__": "plugin_b"})
    try:
        registry.register("model", "duplicate_test_model")(first)
        with pytest.raises(ValueError, match="registered twice"):
            registry.register("model", "duplicate_test_model")(second)
        assert registry.get("model", "duplicate_test_model").obj is first
        registry.register("model", "duplicate_test_model")(
            first
        )  # the same class again (a re-import) is fine
    finally:
        registry._ENTRIES["model"].pop("duplicate_test_model", None)
