"""The touchpoint function's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class PersonalizeSettings(FunctionSettings):
    profiles_table: str = resource("table", "profiles")
    identity_table: str = resource("table", "identity")
