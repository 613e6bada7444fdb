"""Every function's settings read exactly the resource names its wiring-table row sets."""

from __future__ import annotations

import importlib
import inspect
import os
import re

import pytest

from functions.shared.settings import FunctionSettings
from infra.topology import TOPOLOGY, Function, ResourceNames

RESOURCE_VARIABLE = re.compile(r"^BEACON_(STREAM|TABLE|QUEUE|BUCKET)_")


def settings_class(fn: Function) -> type[FunctionSettings]:
    """The one FunctionSettings class `functions/<step>/settings.py` declares."""
    module = importlib.import_module(f"functions.{fn.step}.settings")
    declared = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, FunctionSettings) and cls.__module__ == module.__name__
    ]
    assert len(declared) == 1, f"functions/{fn.step}/settings.py: {declared}"
    return declared[0]


@pytest.mark.parametrize("fn", TOPOLOGY.functions, ids=lambda fn: fn.name)
def test_settings_read_every_name_the_row_sets_and_invent_none(
    fn: Function, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_class(fn)
    env = TOPOLOGY.environment_for(fn, ResourceNames(prefix="test-"))
    aliases = {name: str(field.validation_alias) for name, field in settings.model_fields.items()}
    resources = {name: alias for name, alias in aliases.items() if RESOURCE_VARIABLE.match(alias)}
    assert set(resources.values()) == set(env), "a resource the row does not give, or one unread"
    for name, field in settings.model_fields.items():
        assert field.is_required() == (name in resources), f"{name}: only resources are required"
    # From exactly the row's environment, each field holds its resource's name.
    for variable in [v for v in os.environ if RESOURCE_VARIABLE.match(v)]:
        monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    loaded = settings()
    for name, alias in resources.items():
        assert getattr(loaded, name) == env[alias]
