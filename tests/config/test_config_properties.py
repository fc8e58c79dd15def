"""Property tests of the config parser: any mix of keys and values either resolves to a config
that re-runs identically from its own YAML, or stops with one SimCLRError; never another error."""

from __future__ import annotations

import dataclasses

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simclr import PretrainConfig
from simclr.config import apply_overrides, resolve
from simclr.errors import SimCLRError

KEYS = [f"{s.name}.{f.name}" for s in dataclasses.fields(PretrainConfig)
        for f in dataclasses.fields(s.default_factory())]  # type: ignore[misc]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["resnet18", "cifar", "imagenet", "sgd", "lars", "adamw", "bf16", "fp32", "mlp", "x", "",
                     "synthetic", "device", "workers", "linear", "sqrt"]),
    st.lists(st.floats(-1, 2), min_size=0, max_size=3),
)
KEY = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEY, VALUES, max_size=4))
def test_any_overrides_resolve_or_raise_one_error(overrides: dict) -> None:
    cfg = PretrainConfig()
    try:
        apply_overrides(cfg, overrides, "test")
        resolved = resolve(cfg)
    except SimCLRError as e:
        assert str(e) and "\n" not in str(e)
        return
    except (TypeError, ValueError) as e:  # a wrongly typed value must also be a SimCLRError
        raise AssertionError(f"{type(e).__name__} instead of SimCLRError for {overrides}: {e}") from e
    again = PretrainConfig()
    apply_overrides(again, yaml.safe_load(yaml.safe_dump(resolved.to_dict())), "config.yaml")
    assert resolve(again).to_dict() == resolved.to_dict()


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(KEYS), st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=3))
def test_a_misspelt_key_gets_a_suggestion(key: str, typo: str) -> None:
    section, name = key.split(".")
    wrong = f"{section}.{name}{typo}"
    cfg = PretrainConfig()
    try:
        apply_overrides(cfg, {wrong: 1}, "test")
    except SimCLRError as e:
        assert "unknown key" in str(e)
        if len(typo) == 1 and len(name) > 4:
            assert f"did you mean {name!r}" in str(e)
    else:
        assert wrong in KEYS  # only a real key may pass
