"""The profiles table: one item per profile, a tombstone per merged-away profile,
and sharded segment-size counters.

Profile item (`pk = profile#<id>`, `sk = profile`):
  version        optimistic concurrency: every write is conditional on the one read
  state          the aggregates, compressed (functions/profiles/codec.py)
  scores         model scores as JSON, written by the scoring step
  sweep_shard / sweep_due_at   only while a time-based condition is pending: the
                 sparse, keys-only `sweep` index lists exactly the profiles due
Tombstone: `merged_into` and `expires_at` (TTL): a late event for the loser
finds where to go; the item disappears once the stream's retention has passed.
It is written in the same transaction as the survivor that folded the loser in.
Erasure marker: what an erased profile's item becomes — `erased_at`, a new
`version` and an `expires_at` TTL after `IN_FLIGHT_BOUND`; no state, no scores,
nothing about the person. Events still in flight for it are dropped, and no
conditional write made from a read before the erasure goes through.
Decision item (`pk = profile#<id>`, `sk = decision`): what a page may be told
(functions/shared/decision.py) — `body` (compact JSON), `digest`, `updated_at`;
written in the same transaction as the profile, and only when the profile item's
`decision_digest` says it changed. A tombstone's decision item becomes a redirect
(`merged_into`), an erasure's an erasure marker (`erased_at`, TTL): the touchpoint's
one read finds either.
Segment sizes (`pk = segment-sizes`, `sk = shard#<n>`): one counter per segment
per shard (`n_<segment>`), changed in the same transaction as the membership it
counts, so a size is exact and a retried write cannot count twice. The
experiments' counters (`x_<analysis>|<arm>|...`) live in the same items and are
kept the same way.
Erased applied events (`pk = erased-applied`, `sk = shard#<n>`, `events`): what
the profiles erased so far had applied, added in the erasure's transaction, so
the ledger (cli/observe.py) still adds up after an erasure.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.profiles.codec import decode_state, encode_state
from functions.profiles.state import ProfileState
from functions.profiles.stored import Burial, StoredProfile
from functions.shared.dal.decisions_store import DecisionsStore, decision_key
from functions.shared.dal.dynamo import ConditionFailed, DynamoTable, Update
from functions.shared.decision import NOT_PERSONALIZED, Decision, StoredDecision
from functions.shared.erasure import IN_FLIGHT_BOUND

SWEEP_INDEX = "sweep"
SWEEP_SHARDS = 8  # index partitions the sweep reads; spreads a busy minute's writes
SIZE_SHARDS = 8  # counter items per table; concurrent transactions rarely meet
TOMBSTONE_TTL = timedelta(days=8)  # longer than the resolved stream's retention
ERASED_APPLIED = "erased-applied"
ERASE_ROUNDS = 5  # reads and marker writes of a profile a step keeps writing meanwhile
_PROFILE = "profile"


def profile_key(profile_id: str) -> dict[str, str]:
    return {"pk": f"profile#{profile_id}", "sk": _PROFILE}


def due_stamp(moment: datetime) -> str:
    """Sortable as a string (the index sort key): fixed width, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shard(profile_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(profile_id.encode()).digest()[:4], "big") % shards


class ProfilesStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # --- reads -----------------------------------------------------------------

    def load(self, profile_ids: Iterable[str]) -> dict[str, StoredProfile]:
        """Every stored profile or tombstone among `profile_ids` (one BatchGetItem per 100)."""
        found: dict[str, StoredProfile] = {}
        for item in self.table.batch_get([profile_key(p) for p in sorted(set(profile_ids))]):
            profile_id = str(item["pk"]).removeprefix("profile#")
            found[profile_id] = stored_from_item(profile_id, item)
        return found

    def due(self, now: datetime, limit: int) -> list[str]:
        """Profiles whose next look is due by `now`: a Query per sweep shard, no Scan."""
        due: list[str] = []
        for shard in range(SWEEP_SHARDS):
            if len(due) >= limit:
                break
            items = self.table.query_index(
                SWEEP_INDEX,
                ("sweep_shard", str(shard)),
                ("sweep_due_at", due_stamp(now)),
                limit=limit - len(due),
            )
            due.extend(str(i["pk"]).removeprefix("profile#") for i in items)
        return due

    def scan_live(
        self, segment: int = 0, segments: int = 1, page_size: int = 500
    ) -> Iterator[list[StoredProfile]]:
        """Pages of the live profiles (no tombstone, erasure marker, decision or counter
        item) of one segment of a paginated Scan: the bulk export's read, never a
        step's (docs/exports.md)."""
        names = {"#sk": "sk", "#st": "state", "#m": "merged_into", "#e": "erased_at"}
        condition = (
            "#sk = :p AND attribute_exists(#st)"
            " AND attribute_not_exists(#m) AND attribute_not_exists(#e)"
        )
        pages = self.table.scan(
            segment=segment,
            segments=segments,
            filter_expression=condition,
            names=names,
            values={":p": _PROFILE},
            page_size=page_size,
        )
        for items in pages:
            stored = [stored_from_item(str(i["pk"]).removeprefix("profile#"), i) for i in items]
            yield [p for p in stored if p.live]

    def segment_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        keys = [{"pk": "segment-sizes", "sk": f"shard#{n}"} for n in range(SIZE_SHARDS)]
        for item in self.table.batch_get(keys):
            for name, value in item.items():
                if name.startswith("n_"):
                    sizes[name[2:]] = sizes.get(name[2:], 0) + int(value)
        return sizes

    # --- writes ----------------------------------------------------------------

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
        """Write the state over the version that was read (ConditionFailed if it moved on).

        With `size_changes` the segment counters change in the same transaction,
        and with `buried` the folded profiles become tombstones in it: a loser that
        took events since it was read fails the whole write, so the merge is redone
        from what it holds now instead of leaving those events behind.
        Scores are the scoring step's, and are only written when it saves.
        A `decision` that differs from the one written last goes in the same
        transaction (the profile item keeps its digest): none that is the same.
        """
        names = {"#st": "state", "#v": "version", "#u": "updated_at", "#sc": "scores"}
        values: dict[str, Any] = {
            ":st": encode_state(profile.state),
            ":v": profile.version + 1,
            ":u": at.isoformat(),
            ":sc": json.dumps(profile.scores, sort_keys=True, default=str),
        }
        sets = ["#st = :st", "#v = :v", "#u = :u", "#sc = :sc"]
        removes = ["#m", "#x"]
        names |= {"#m": "merged_into", "#x": "expires_at"}
        names |= {"#ss": "sweep_shard", "#sd": "sweep_due_at"}
        if due_at is None:
            removes += ["#ss", "#sd"]
        else:
            sets += ["#ss = :ss", "#sd = :sd"]
            values |= {":ss": str(_shard(profile.profile_id, SWEEP_SHARDS))}
            values |= {":sd": due_stamp(due_at)}
        decided = _changed(profile, decision)
        if decided is not None:
            sets.append("#dd = :dd")
            names["#dd"], values[":dd"] = "decision_digest", decided.digest
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        update = Update(
            key=profile_key(profile.profile_id),
            expression=expression,
            names=names,
            values=values,
            condition=_version_condition(profile, values),
        )
        extra = [_decision_update(profile.profile_id, decided, at)] if decided else []
        for burial in buried:
            extra.append(self._tombstone(burial.loser, profile.profile_id, at))
            if burial.loser.decision_digest is not None:
                extra.append(_decision_redirect(burial.loser.profile_id, profile.profile_id, at))
        sizes = self._size_updates(
            [(profile.profile_id, size_changes or {})]
            + [(b.loser.profile_id, b.size_changes) for b in buried]
        )
        if extra or sizes:
            self.table.transact_update([update, *extra, *sizes])
        else:
            self.table.update(update)
        profile.version += 1
        if decided is not None:
            profile.decision_digest = decided.digest
        for burial in buried:
            burial.loser.version += 1
            burial.loser.merged_into = profile.profile_id
            burial.loser.decision_digest = None

    def bury(
        self,
        loser: StoredProfile,
        survivor_id: str,
        at: datetime,
        size_changes: Mapping[str, int] | None = None,
    ) -> None:
        """Replace a folded profile by a tombstone pointing at its survivor (on its own:
        for a survivor that holds the fold already and has nothing to write)."""
        update = self._tombstone(loser, survivor_id, at)
        sizes = self._size_updates([(loser.profile_id, size_changes or {})])
        if loser.decision_digest is not None:
            sizes.append(_decision_redirect(loser.profile_id, survivor_id, at))
        if sizes:
            self.table.transact_update([update, *sizes])
        else:
            self.table.update(update)
        loser.version += 1
        loser.merged_into = survivor_id
        loser.decision_digest = None

    def _tombstone(self, loser: StoredProfile, survivor_id: str, at: datetime) -> Update:
        names = {"#st": "state", "#sc": "scores", "#v": "version", "#m": "merged_into"}
        names |= {"#x": "expires_at", "#ss": "sweep_shard", "#sd": "sweep_due_at"}
        names |= {"#dd": "decision_digest"}
        values: dict[str, Any] = {
            ":v": loser.version + 1,
            ":m": survivor_id,
            ":x": int((at + TOMBSTONE_TTL).timestamp()),
        }
        return Update(
            key=profile_key(loser.profile_id),
            expression="SET #v = :v, #m = :m, #x = :x REMOVE #st, #sc, #ss, #sd, #dd",
            names=names,
            values=values,
            condition=_version_condition(loser, values),
        )

    def save_scores(
        self, profile: StoredProfile, at: datetime, decision: Decision | None = None
    ) -> None:
        """Scores only, over the version read (the scoring step, when no segment moved);
        the decision item with them when a band changed what a page is told."""
        values: dict[str, Any] = {
            ":sc": json.dumps(profile.scores, sort_keys=True, default=str),
            ":v": profile.version + 1,
            ":u": at.isoformat(),
        }
        names = {"#sc": "scores", "#v": "version", "#u": "updated_at"}
        sets = "SET #sc = :sc, #v = :v, #u = :u"
        decided = _changed(profile, decision)
        if decided is not None:
            sets += ", #dd = :dd"
            names["#dd"], values[":dd"] = "decision_digest", decided.digest
        update = Update(
            key=profile_key(profile.profile_id),
            expression=sets,
            names=names,
            values=values,
            condition=_version_condition(profile, values),
        )
        if decided is None:
            self.table.update(update)
        else:
            self.table.transact_update([update, _decision_update(profile.profile_id, decided, at)])
            profile.decision_digest = decided.digest
        profile.version += 1

    def erase(self, profile_ids: Iterable[str], at: datetime) -> int:
        """Replace each profile or tombstone by an erasure marker; how many there were.

        Each marker is written over the version read, in one transaction with the
        segment sizes the profile's memberships leave and its applied events moved to
        the `erased-applied` counters; a step that wrote the profile meanwhile makes
        it be read and done again. A profile id with no item yet (its first events
        still in flight) gets a marker too, so they cannot create it. A marker already
        there stays as it is: erasing again finds nothing.
        """
        erased = 0
        pending = sorted(set(profile_ids))
        for _ in range(ERASE_ROUNDS):
            if not pending:
                return erased
            stored = self.load(pending)
            conflicted = []
            for profile_id in pending:
                profile = stored.get(profile_id)
                if profile is not None and profile.erased_at is not None:
                    continue
                try:
                    self._mark_erased(profile or StoredProfile(profile_id, ProfileState()), at)
                except ConditionFailed:
                    conflicted.append(profile_id)
                    continue
                erased += profile is not None
            pending = conflicted
        if pending:
            raise ConditionFailed(f"{len(pending)} profiles kept changing during the erasure")
        return erased

    def _mark_erased(self, profile: StoredProfile, at: datetime) -> None:
        names = {"#v": "version", "#e": "erased_at", "#x": "expires_at"}
        names |= {"#st": "state", "#sc": "scores", "#m": "merged_into", "#u": "updated_at"}
        names |= {"#ss": "sweep_shard", "#sd": "sweep_due_at", "#dd": "decision_digest"}
        values: dict[str, Any] = {
            ":v": profile.version + 1,
            ":e": at.isoformat(),
            ":x": int((at + IN_FLIGHT_BOUND).timestamp()),
        }
        marker = Update(
            key=profile_key(profile.profile_id),
            expression="SET #v = :v, #e = :e, #x = :x REMOVE #st, #sc, #m, #u, #ss, #sd, #dd",
            names=names,
            values=values,
            condition=_version_condition(profile, values),
        )
        state = profile.state
        updates = self._size_updates([(profile.profile_id, {s: -1 for s in state.memberships})])
        # The touchpoint's item goes too, whatever it held: the person is unknown now.
        updates.append(_decision_erased(profile.profile_id, at))
        if state.events_applied:
            shard = _shard(profile.profile_id, SIZE_SHARDS)
            updates.append(
                Update(
                    key={"pk": ERASED_APPLIED, "sk": f"shard#{shard}"},
                    expression="ADD #n :n",
                    names={"#n": "events"},
                    values={":n": state.events_applied},
                )
            )
        self.table.transact_update([marker, *updates])

    def decision(self, profile_id: str) -> StoredDecision | None:
        """The decision item of `profile_id` (the touchpoint reads it the same way)."""
        return DecisionsStore(self.table).decision(profile_id)

    def erased_applied(self) -> int:
        """Events the erased profiles had applied (the ledger's share of them)."""
        keys = [{"pk": ERASED_APPLIED, "sk": f"shard#{n}"} for n in range(SIZE_SHARDS)]
        return sum(int(item.get("events", 0)) for item in self.table.batch_get(keys))

    def experiment_counters(self) -> dict[str, int]:
        """The experiment counters (functions/experiments/book.py), summed over shards."""
        counters: dict[str, int] = {}
        keys = [{"pk": "segment-sizes", "sk": f"shard#{n}"} for n in range(SIZE_SHARDS)]
        for item in self.table.batch_get(keys):
            for name, value in item.items():
                if name.startswith(_EXPERIMENT_PREFIX):
                    key = name.removeprefix(_EXPERIMENT_PREFIX)
                    counters[key] = counters.get(key, 0) + int(value)
        return counters

    def _size_updates(self, changes: Sequence[tuple[str, Mapping[str, int]]]) -> list[Update]:
        """One ADD per counter shard the profiles' size changes fall in (a transaction
        may name an item only once). A change is a segment's size, or an experiment
        counter (its name has a `|`)."""
        by_shard: dict[int, Counter[str]] = {}
        for profile_id, deltas in changes:
            by_shard.setdefault(_shard(profile_id, SIZE_SHARDS), Counter()).update(deltas)
        updates = []
        for shard, deltas in sorted(by_shard.items()):
            counted = sorted(s for s, n in deltas.items() if n)
            if not counted:
                continue
            updates.append(
                Update(
                    key={"pk": "segment-sizes", "sk": f"shard#{shard}"},
                    expression="ADD " + ", ".join(f"#n{i} :n{i}" for i in range(len(counted))),
                    names={f"#n{i}": _counter_name(name) for i, name in enumerate(counted)},
                    values={f":n{i}": deltas[name] for i, name in enumerate(counted)},
                )
            )
        return updates


_EXPERIMENT_PREFIX = "x_"


def _counter_name(change: str) -> str:
    return f"{_EXPERIMENT_PREFIX}{change}" if "|" in change else f"n_{change}"


def _changed(profile: StoredProfile, decision: Decision | None) -> Decision | None:
    """`decision` if it says something the stored one does not: else nothing to write.
    No item answers as not personalized, so a first decision that says just that is
    not written either."""
    if decision is None or decision.digest == profile.decision_digest:
        return None
    if profile.decision_digest is None and decision == NOT_PERSONALIZED:
        return None
    return decision


def _decision_update(profile_id: str, decision: Decision, at: datetime) -> Update:
    return Update(
        key=decision_key(profile_id),
        expression="SET #b = :b, #dg = :dg, #u = :u REMOVE #m, #e, #x",
        names={"#b": "body", "#dg": "digest", "#u": "updated_at"}
        | {"#m": "merged_into", "#e": "erased_at", "#x": "expires_at"},
        values={":b": decision.body(), ":dg": decision.digest, ":u": at.isoformat()},
    )


def _decision_redirect(loser_id: str, survivor_id: str, at: datetime) -> Update:
    return Update(
        key=decision_key(loser_id),
        expression="SET #m = :m, #x = :x REMOVE #b, #dg",
        names={"#m": "merged_into", "#x": "expires_at", "#b": "body", "#dg": "digest"},
        values={":m": survivor_id, ":x": int((at + TOMBSTONE_TTL).timestamp())},
    )


def _decision_erased(profile_id: str, at: datetime) -> Update:
    return Update(
        key=decision_key(profile_id),
        expression="SET #e = :e, #x = :x REMOVE #b, #dg, #m, #u",
        names={"#e": "erased_at", "#x": "expires_at", "#b": "body", "#dg": "digest"}
        | {"#m": "merged_into", "#u": "updated_at"},
        values={":e": at.isoformat(), ":x": int((at + IN_FLIGHT_BOUND).timestamp())},
    )


def _version_condition(profile: StoredProfile, values: dict[str, Any]) -> str:
    if profile.version == 0:
        return "attribute_not_exists(pk)"
    values[":was"] = profile.version
    return "#v = :was"


def stored_from_item(profile_id: str, item: dict[str, Any]) -> StoredProfile:
    raw_state = item.get("state")
    state = decode_state(bytes(raw_state)) if raw_state is not None else ProfileState()
    scores = json.loads(str(item["scores"])) if item.get("scores") else {}
    merged = item.get("merged_into")
    erased = item.get("erased_at")
    digest = item.get("decision_digest")
    return StoredProfile(
        profile_id=profile_id,
        state=state,
        scores=scores,
        version=int(item.get("version", 0)),
        merged_into=str(merged) if merged else None,
        erased_at=datetime.fromisoformat(str(erased)) if erased else None,
        decision_digest=str(digest) if digest else None,
    )
