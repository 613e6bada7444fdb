"""The archive erasure job's environment (functions/shared/settings.py)."""

from functions.shared.settings import FunctionSettings, resource


class ArchiveErasureSettings(FunctionSettings):
    archive_bucket: str = resource("bucket", "archive")
