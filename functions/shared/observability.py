"""One Logger/Tracer/Metrics setup shared by every function.

The service name comes from POWERTOOLS_SERVICE_NAME, which the stack (and the
local runtime) sets per function; metrics share the `Beacon` namespace.
"""

from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

METRICS_NAMESPACE = "Beacon"

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)


def count_by_reason(name: str, counts: Mapping[str, int]) -> None:
    """One metric per reason, with `reason` as its dimension (e.g. EventsFailed)."""
    if is_metrics_disabled():  # single_metric flushes at once and ignores the switch
        return
    for reason, count in counts.items():
        with single_metric(
            name=name, unit=MetricUnit.Count, value=count, namespace=METRICS_NAMESPACE
        ) as metric:
            metric.add_dimension(name="reason", value=reason)
