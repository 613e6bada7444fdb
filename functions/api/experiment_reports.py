"""`GET /v1/experiments[/{name}]`: each configured experiment's report, from its counters.

One BatchGetItem of the counter shards per request, whatever the number of people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from functions.experiments.book import ExperimentBook
from functions.experiments.report import report


class ExperimentCounters(Protocol):
    def experiment_counters(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class ExperimentReports:
    book: ExperimentBook
    store: ExperimentCounters

    def all(self) -> list[dict[str, Any]]:
        if not self.book:
            return []
        counters = self.store.experiment_counters()
        return [report(analysis, counters) for analysis in self.book.analyses.values()]

    def one(self, name: str) -> dict[str, Any] | None:
        for analysis in self.book.analyses.values():
            if analysis.experiment.id == name:
                return report(analysis, self.store.experiment_counters())
        return None
