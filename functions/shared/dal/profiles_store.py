"""The profiles table: one item per profile, a tombstone per merged-away profile,
and sharded segment-size counters.

Profile item (`pk = profile#<id>`, `sk = profile`):
  version        optimistic concurrency: every write is conditional on the one read
  state          the aggregates, compressed (functions/shared/profiles/codec.py)
  scores         model scores as JSON, written by the scoring step
  sweep_shard / sweep_due_at   only while a time-based condition is pending: the
                 sparse, keys-only `sweep` index lists exactly the profiles due
Tombstone: `merged_into` and `expires_at` (TTL): a late event for the loser
finds where to go; the item disappears once the stream's retention has passed.
Segment sizes (`pk = segment-sizes`, `sk = shard#<n>`): one counter per segment
per shard, changed in the same transaction as the membership it counts, so a
size is exact and a retried write cannot count twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.shared.dal.dynamo import DynamoTable, Update
from functions.shared.profiles.aggregates import ProfileState
from functions.shared.profiles.codec import decode_state, encode_state
from functions.shared.profiles.stored import StoredProfile

SWEEP_INDEX = "sweep"
SWEEP_SHARDS = 8  # index partitions the sweep reads; spreads a busy minute's writes
SIZE_SHARDS = 8  # counter items per table; concurrent transactions rarely meet
TOMBSTONE_TTL = timedelta(days=8)  # longer than the resolved stream's retention
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
    ) -> None:
        """Write the state over the version that was read (ConditionFailed if it moved on).

        With `size_changes` the segment counters change in the same transaction.
        Scores are the scoring step's, and are only written when it saves.
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
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        update = Update(
            key=profile_key(profile.profile_id),
            expression=expression,
            names=names,
            values=values,
            condition=_version_condition(profile, values),
        )
        deltas = {k: v for k, v in (size_changes or {}).items() if v}
        if deltas:
            self.table.transact_update([update, self._size_update(profile.profile_id, deltas)])
        else:
            self.table.update(update)
        profile.version += 1

    def bury(
        self,
        loser: StoredProfile,
        survivor_id: str,
        at: datetime,
        size_changes: Mapping[str, int] | None = None,
    ) -> None:
        """Replace a folded profile by a tombstone pointing at its survivor."""
        names = {"#st": "state", "#sc": "scores", "#v": "version", "#m": "merged_into"}
        names |= {"#x": "expires_at", "#ss": "sweep_shard", "#sd": "sweep_due_at"}
        values: dict[str, Any] = {
            ":v": loser.version + 1,
            ":m": survivor_id,
            ":x": int((at + TOMBSTONE_TTL).timestamp()),
        }
        update = Update(
            key=profile_key(loser.profile_id),
            expression="SET #v = :v, #m = :m, #x = :x REMOVE #st, #sc, #ss, #sd",
            names=names,
            values=values,
            condition=_version_condition(loser, values),
        )
        deltas = {k: v for k, v in (size_changes or {}).items() if v}
        if deltas:
            self.table.transact_update([update, self._size_update(loser.profile_id, deltas)])
        else:
            self.table.update(update)
        loser.version += 1
        loser.merged_into = survivor_id

    def save_scores(self, profile: StoredProfile, at: datetime) -> None:
        """Scores only, over the version read (the scoring step, when no segment moved)."""
        values: dict[str, Any] = {
            ":sc": json.dumps(profile.scores, sort_keys=True, default=str),
            ":v": profile.version + 1,
            ":u": at.isoformat(),
        }
        self.table.update(
            Update(
                key=profile_key(profile.profile_id),
                expression="SET #sc = :sc, #v = :v, #u = :u",
                names={"#sc": "scores", "#v": "version", "#u": "updated_at"},
                values=values,
                condition=_version_condition(profile, values),
            )
        )
        profile.version += 1

    def delete(self, profile_ids: Iterable[str]) -> int:
        """Erasure: the items go whatever their version (sizes settle as the counters allow)."""
        keys = [profile_key(p) for p in sorted(set(profile_ids))]
        present = self.table.batch_get(keys)
        self.table.batch_write(deletes=[{"pk": str(i["pk"]), "sk": str(i["sk"])} for i in present])
        return len(present)

    def _size_update(self, profile_id: str, deltas: Mapping[str, int]) -> Update:
        names = {f"#n{i}": f"n_{segment}" for i, segment in enumerate(sorted(deltas))}
        values = {f":n{i}": deltas[segment] for i, segment in enumerate(sorted(deltas))}
        return Update(
            key={"pk": "segment-sizes", "sk": f"shard#{_shard(profile_id, SIZE_SHARDS)}"},
            expression="ADD " + ", ".join(f"#n{i} :n{i}" for i in range(len(deltas))),
            names=names,
            values=values,
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
    return StoredProfile(
        profile_id=profile_id,
        state=state,
        scores=scores,
        version=int(item.get("version", 0)),
        merged_into=str(merged) if merged else None,
    )
