"""What a function reads from its environment, validated on the first invocation
(cold start): the names of the resources it uses, and the configuration file.

`FunctionSettings` holds what every function shares; a step's own `settings.py`
declares only its resources, one `resource(kind, name)` for each one its row of
the wiring table (`infra/topology.py`) gives it. Both sides name the variable
with `env_var`, and `tests/unit/shared/test_settings.py` checks every step
against its row: each variable the row sets is read, and none is invented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from functions.shared.config import BeaconConfig

ResourceKind = Literal["stream", "table", "queue", "bucket"]
CONFIG_FILE_VAR = "BEACON_CONFIG_FILE"


def env_var(kind: ResourceKind, name: str) -> str:
    """`env_var("stream", "profile-changes")` -> `BEACON_STREAM_PROFILE_CHANGES`."""
    return f"BEACON_{kind.upper()}_{name.upper().replace('-', '_')}"


def resource(kind: ResourceKind, name: str) -> Any:
    """A settings field: the physical name of the wiring table's `kind` `name`."""
    return Field(validation_alias=env_var(kind, name), min_length=1)


class FunctionSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    config_file: str = Field(default="beacon.yaml", validation_alias=CONFIG_FILE_VAR)

    @classmethod
    def with_config(cls) -> tuple[Self, BeaconConfig]:
        """The settings from the environment, and the configuration file they name: a
        cold start fails fast on either, saying what is wrong."""
        from functions.shared.config import load_config  # not for env_var's users (infra)

        settings = cls()
        return settings, load_config(settings.config_file)


class ProfileStepSettings(FunctionSettings):
    """What the two steps that write profiles (segments, scoring) share."""

    profiles_table: str = resource("table", "profiles")
    counters_table: str = resource("table", "counters")
    failed_events_bucket: str = resource("bucket", "failed-events")
