from dataclasses import dataclass, field

import pytest

from reasonlab.config import ConfigError, apply_overrides, from_dict
from reasonlab.registry import Registry, RegistryError


def test_registry_lists_valid_names_and_imports_paths():
    reg = Registry("widget")

    @reg.register("a")
    def a():
        return 1

    assert reg.get("a") is a
    with pytest.raises(RegistryError, match="valid: a"):
        reg.get("nope")
    assert reg.get("os.path:join") is __import__("os").path.join
    with pytest.raises(RegistryError, match="cannot import"):
        reg.get("no_such_module_xyz:f")


@dataclass
class Inner:
    lr: float = 1e-5
    steps: int = 10


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    weights: dict[str, float] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    beta: float | None = None


def test_from_dict_nested_and_overrides():
    data = apply_overrides({"inner": {"lr": 1}}, ["inner.steps=3", "weights.acc=1.0", "tags=a,b"])
    cfg = from_dict(Outer, data)
    assert cfg.inner == Inner(lr=1.0, steps=3)
    assert cfg.weights == {"acc": 1.0} and cfg.tags == ("a", "b")


def test_from_dict_errors_name_the_key_path():
    with pytest.raises(ConfigError, match=r"inner\.stpes: unknown key"):
        from_dict(Outer, {"inner": {"stpes": 3}})
    with pytest.raises(ConfigError, match=r"inner\.steps: expected int"):
        from_dict(Outer, {"inner": {"steps": "many"}})
    with pytest.raises(ConfigError, match=r"inner\.steps: expected int"):
        from_dict(Outer, {"inner": {"steps": 2.5}})
