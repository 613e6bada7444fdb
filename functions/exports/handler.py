"""The scheduled profile export: every live profile as Parquet in the exports bucket,
`profiles/dt=<day>/part-<n>.parquet` (docs/exports.md).

Thin: an EventBridge schedule invokes it; `jobs.run_profile_export` does the work
with the deployment's consent policy (`consent.required_for_profiles`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.exports.jobs import run_profile_export
from functions.exports.profile_rows import ExportPolicy
from functions.exports.settings import ExportsSettings
from functions.shared.dal.export_sink import S3Sink
from functions.shared.observability import logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings, config = ExportsSettings.with_config()
    prefix = settings.prefix.strip("/")
    summary = run_profile_export(
        profiles_table=settings.profiles_table,
        identity_table=settings.identity_table,
        sink=S3Sink(settings.exports_bucket),
        config=config.segments,
        policy=ExportPolicy.checked(
            config.consent.required_for_profiles, config.consent.categories
        ),
        now=datetime.now(UTC),
        prefix=f"{prefix}/" if prefix else "",
        segments=settings.scan_segments,
    )
    metrics.add_metric(name="ProfilesExported", unit=MetricUnit.Count, value=summary.exported)
    metrics.add_metric(name="ProfilesWithheld", unit=MetricUnit.Count, value=summary.withheld)
    logger.info("profiles exported", extra={"summary": summary.line()})
    return {
        "read": summary.read,
        "exported": summary.exported,
        "withheld": summary.withheld,
        "skipped": summary.skipped,
        "files": summary.files,
    }
