"""The API function's environment, validated on the first invocation (cold start)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    consent_table: str = Field(validation_alias="BEACON_TABLE_CONSENT", min_length=1)
    profiles_table: str = Field(validation_alias="BEACON_TABLE_PROFILES", min_length=1)
    deliveries_table: str = Field(validation_alias="BEACON_TABLE_DELIVERIES", min_length=1)
    identity_table: str = Field(validation_alias="BEACON_TABLE_IDENTITY", min_length=1)
    consented_stream: str = Field(validation_alias="BEACON_STREAM_CONSENTED", min_length=1)
    config_file: str = Field(default="beacon.yaml", validation_alias="BEACON_CONFIG_FILE")
