"""Every storage port: the Protocols that step logic reads and writes through.

Logic modules (the steps, the read API's views) depend on these, never on boto3;
`functions/shared/dal/` implements them (DynamoDB, Kinesis, SQS, S3) and tests
pass in-memory fakes. They live in this one module so that every storage call a
step may make is listed in one place: a new one starts here, then gets its
adapter in `dal/` (docs/architecture.md).

| port                  | adapter (`dal/`)                  | used by                      |
|-----------------------|-----------------------------------|------------------------------|
| StreamPort            | kinesis.KinesisWriter             | ingest, consent, identity,   |
|                       |                                   | segments, read API (links)   |
| QueuePort             | sqs.QueueSender                   | scoring, webhook             |
| FailedEventsPort      | failed_events_store               | ingest                       |
| FailedRecordsPort     | failed_events_store               | the stream and queue steps   |
| CountersPort          | counters.DailyCounters            | consent, identity, segments, |
|                       |                                   | scoring                      |
| ConsentStatePort      | consent_store.ConsentStore        | consent                      |
| GraphPort, ErasuresPort, BlockPort | identity_store.IdentityStore | identity             |
| ProfilesPort          | profiles_store.ProfilesStore      | segments, scoring, read API  |
| DeliveriesPort        | deliveries_store.DeliveriesStore  | webhook                      |
| ConsentRecords, IdentityRecords, SuggestionStore, DeliveryLog | (the same stores) | read API |

The profile model (`functions/profiles/`) is named for the type checker only, so
the bundles of functions without it can still import this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.shared.archive import ErasureRequest
from functions.shared.consent_records import AuditEntry, ConsentState
from functions.shared.decision import Decision, StoredDecision
from functions.shared.deliveries import DeliveryRecord, LoadedLog
from functions.shared.erasure import RecentErasures
from functions.shared.failed_events import FailedEvent
from functions.shared.identifiers import Identifier
from functions.shared.identity_records import MergeNote, Profile
from functions.shared.streams import StreamRecord

if TYPE_CHECKING:
    from functions.profiles.stored import Burial, StoredProfile

# --- streams, queues, failed events, counters: every step -------------------------


class StreamPort(Protocol):
    def put(self, records: Sequence[StreamRecord]) -> list[int]:
        """Write records in order; return the positions of those that could not be written."""
        ...


class QueuePort(Protocol):
    def send(
        self, messages: Sequence[tuple[str, bytes]], delays: Mapping[str, int] | None = None
    ) -> list[str]:
        """(id, body) pairs, each hidden for `delays[id]` seconds; the ids SQS would not
        take after every retry (the caller must not acknowledge what produced them)."""
        ...

    def hide(self, receipt_handle: str, seconds: int) -> None:
        """Keep a received message invisible for `seconds` before it comes back."""
        ...


class FailedEventsPort(Protocol):
    def put(self, failures: Sequence[FailedEvent], request_id: str) -> None:
        """Keep every failure with its reason; raise if that is impossible."""
        ...


class FailedRecordsPort(Protocol):
    """Failed events of the stream and queue steps, whose retries redeliver them."""

    def put_each(self, failures: Sequence[FailedEvent]) -> None:
        """Keep each failure under a key of the record it came from (its
        `request_id`): a redelivered batch writes the same keys again instead of
        adding copies. Raise if that is impossible."""
        ...


class CountersPort(Protocol):
    def record_batch(self, name: str, day: str, batch_id: str, counts: Counter[str]) -> None:
        """Write one batch's counts under its stable batch id (a retry overwrites them)."""
        ...


# --- consent -----------------------------------------------------------------------


class ConsentStatePort(Protocol):
    def load(self, keys: Sequence[str]) -> dict[str, ConsentState]: ...
    def save(self, states: Sequence[ConsentState], audit: Sequence[AuditEntry]) -> None: ...
    def erasures_since(self, moment: datetime) -> RecentErasures: ...
    def restore_suppressions(
        self, erased: Mapping[str, datetime], written: Sequence[AuditEntry]
    ) -> None: ...


class ConsentRecords(Protocol):
    """The consent table as the read API sees it (views, export, erasure)."""

    def load(self, keys: list[str]) -> dict[str, ConsentState]: ...
    def records(self, key: str) -> tuple[ConsentState | None, list[dict[str, Any]]]: ...
    def erase(self, keys: list[str], at: datetime) -> int: ...


# --- identity ----------------------------------------------------------------------


class GraphPort(Protocol):
    def load_nodes(self, identifiers: Sequence[Identifier]) -> dict[Identifier, str]: ...
    def load_profiles(self, profile_ids: Sequence[str]) -> dict[str, Profile]: ...
    def write_node(self, identifier: Identifier, profile_id: str, was: str | None) -> None: ...
    def write_nodes(self, nodes: Sequence[tuple[Identifier, str, str | None]]) -> None: ...
    def write_profile(self, profile: Profile) -> None: ...
    def write_profiles(self, profiles: Sequence[Profile]) -> None: ...
    def write_audit(self, notes: Sequence[tuple[str, MergeNote]]) -> None: ...
    def forget_node(self, identifier: Identifier, was: str) -> None: ...


class ErasuresPort(Protocol):
    def recent_erasures(self, now: datetime) -> RecentErasures: ...


class BlockPort(Protocol):
    """Probabilistic matching's blocking keys and suggested links."""

    def candidates(self, key: str) -> dict[str, dict[str, Any]]: ...
    def load_profiles(self, profile_ids: Sequence[str]) -> dict[str, Profile]: ...
    def write_blocks(self, entries: Sequence[tuple[str, str, dict[str, str]]]) -> None: ...
    def write_suggestions(self, suggestions: Sequence[dict[str, Any]]) -> None: ...


class IdentityRecords(Protocol):
    """The identity graph as the read API sees it (views, export, erasure)."""

    def load_nodes(self, identifiers: list[Identifier]) -> dict[Identifier, str]: ...
    def load_profiles(self, profile_ids: list[str]) -> dict[str, Profile]: ...
    def profile_records(self, profile_id: str) -> list[dict[str, Any]]: ...
    def suggestions(self) -> list[dict[str, Any]]: ...
    def delete(self, keys: list[dict[str, str]]) -> int: ...
    def record_erasure(self, keys: list[str], at: datetime) -> None: ...


class SuggestionStore(Protocol):
    """Suggested links, as a reviewer decides them (read API)."""

    def suggestions(self) -> list[dict[str, Any]]: ...
    def set_suggestion(self, a: str, b: str, status: str) -> bool: ...


# --- profiles ----------------------------------------------------------------------


class ProfilesPort(Protocol):
    def load(self, profile_ids: Iterable[str]) -> dict[str, StoredProfile]:
        """Every stored profile or tombstone among `profile_ids`, in batched reads."""
        ...

    def due(self, now: datetime, limit: int) -> list[str]:
        """Profiles whose time-based re-evaluation is due by `now`."""
        ...

    def save(
        self,
        profile: StoredProfile,
        *,
        due_at: datetime | None,
        at: datetime,
        size_changes: Mapping[str, int] | None = None,
        buried: Sequence[Burial] = (),
        decision: Decision | None = None,
    ) -> None:
        """State, scores and due time over the version read; raises if it moved on.

        With `buried`, those profiles become tombstones pointing here in the same
        transaction, each over the version read too: a fold and its burial happen
        together or not at all. With a `decision` that differs from the one written
        last, the decision item is written in the same transaction."""
        ...

    def save_scores(
        self, profile: StoredProfile, at: datetime, decision: Decision | None = None
    ) -> None:
        """Scores only, over the version read (and the decision item, if it changed)."""
        ...

    def bury(
        self,
        loser: StoredProfile,
        survivor_id: str,
        at: datetime,
        size_changes: Mapping[str, int] | None = None,
    ) -> None:
        """Replace a folded profile by a tombstone pointing at its survivor."""
        ...

    def segment_sizes(self) -> dict[str, int]: ...

    def erase(self, profile_ids: Iterable[str], at: datetime) -> int:
        """Replace each profile (or tombstone) by an erasure marker; how many there were.
        Markers are not records about the person: erasing again counts none."""
        ...


# --- deliveries --------------------------------------------------------------------


class DeliveriesPort(Protocol):
    """The webhook step's delivery log and disabled destinations."""

    def load(
        self, keys: Sequence[tuple[str, str, str]], profile_ids: Sequence[str]
    ) -> LoadedLog: ...
    def save(self, records: Sequence[DeliveryRecord]) -> None: ...
    def erased(self, profile_ids: Sequence[str]) -> set[str]: ...
    def forget(self, records: Sequence[DeliveryRecord]) -> None: ...
    def disabled(self, names: Sequence[str]) -> dict[str, str]: ...
    def disable(self, name: str, reason: str, at: datetime) -> None: ...


class DeliveryLog(Protocol):
    """The delivery log as the read API sees it (a person's deliveries, erasure)."""

    def for_profiles(self, profile_ids: Iterable[str]) -> list[DeliveryRecord]: ...
    def erase_profiles(self, profile_ids: Iterable[str], at: datetime) -> int: ...


class DecisionsPort(Protocol):
    """The touchpoint's reads (functions/personalize): one item per request."""

    def decision(self, profile_id: str) -> StoredDecision | None:
        """The decision item of `profile_id` (or its redirect or erasure marker)."""
        ...


class ProfileIdsPort(Protocol):
    """Identifier -> profile id, as the identity step resolved it."""

    def profile_ids(self, identifiers: Sequence[Identifier]) -> dict[Identifier, str]:
        """The profile of each identifier known (one BatchGetItem for all of them)."""
        ...


class EventArchive(Protocol):
    """The event archive, as the read API's export and erasure see it
    (`dal/archive_store.py` ArchivedHistory; docs/archive.md)."""

    def events_of(self, profile_ids: set[str]) -> list[dict[str, Any]]:
        """The archived events of these profiles and of every profile merged into them."""
        ...

    def profile_ids(self, profile_ids: set[str]) -> set[str]:
        """The ids and every id merged into them."""
        ...

    def erase(self, request: ErasureRequest) -> int:
        """Remove the request's rows (and keep the request for rows still on their way)."""
        ...
