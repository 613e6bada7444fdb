"""The archive transform's environment: no resources (Firehose hands it the records
and writes what it returns)."""

from functions.shared.settings import FunctionSettings


class ArchiveSettings(FunctionSettings):
    pass
