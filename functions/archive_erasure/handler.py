"""The archive's erasure job (scheduled): rewrite the files holding rows of the
people erased in the last two days (docs/archive.md, "Erasure and export").

The read API records each erasure as a request in the archive bucket; this job
removes the rows, and keeps removing what lands later while the request lasts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.archive_erasure.settings import ArchiveErasureSettings
from functions.shared.dal.archive_store import ArchiveStore, erase_pending
from functions.shared.observability import logger


@cache
def store() -> ArchiveStore:
    return ArchiveStore(ArchiveErasureSettings().archive_bucket)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    removed = erase_pending(store(), datetime.now(UTC))
    if removed:
        logger.info("archive rows erased", extra={"rows": removed})
    return {"rows_removed": removed}
