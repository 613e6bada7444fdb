"""The identity table: graph nodes, profiles, merge audit, blocking keys, suggested links.

Layout (table `identity`, string pk/sk):
- `id#<type>:<value>` / `node`          -> the profile an identifier belongs to
- `profile#<id>` / `meta`               -> identifiers by type, redirect, version, merge outbox
- `profile#<id>` / `merge#<time>#<id>`  -> merge audit trail (which identifiers, rule, score)
- `block#<key>` / `<profile id>`        -> match traits under a blocking key (probabilistic)
- `suggestions` / `<a>#<b>`             -> suggested links awaiting review
- `erasures` / `<erased at>#<digest>#<n>` -> recent erasures: the erased identifiers'
  salted hashes (never raw values), read by the identity step once per batch; kept for
  `IN_FLIGHT_BOUND` (functions/shared/dal/erasures.py)

Graph writes are conditional (a node only if absent or still pointing where
we read it; a profile only at the version we read), so two shards resolving
the same new identifier at once cannot both win: the loser's batch is
retried and reads the winner's profile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from functions.shared.dal.dynamo import ConditionFailed, DynamoTable, Update, side_by_side
from functions.shared.dal.erasures import ErasureRecord
from functions.shared.erasure import IN_FLIGHT_BOUND, RecentErasures
from functions.shared.identifiers import Identifier
from functions.shared.identity_records import MergeNote, Profile

NODE, META = "node", "meta"
SUGGESTIONS = "suggestions"


class GraphConflict(RuntimeError):
    """Another writer changed the graph since we read it; retry the batch."""


def node_key(identifier: Identifier) -> dict[str, str]:
    return {"pk": f"id#{identifier}", "sk": NODE}


def profile_key(profile_id: str) -> dict[str, str]:
    return {"pk": f"profile#{profile_id}", "sk": META}


class IdentityStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # --- reads (batched) -----------------------------------------------------

    def load_nodes(self, identifiers: Iterable[Identifier]) -> dict[Identifier, str]:
        wanted = {f"id#{i}": i for i in identifiers}
        items = self.table.batch_get([{"pk": pk, "sk": NODE} for pk in wanted])
        return {wanted[item["pk"]]: str(item["profile_id"]) for item in items}

    def load_profiles(
        self, profile_ids: Iterable[str], *, consistent: bool = True
    ) -> dict[str, Profile]:
        """Profiles and the chain of redirects behind them (`consistent=False`: half the
        read units, for a bulk reader that can miss the last second's writes)."""
        found: dict[str, Profile] = {}
        pending = set(profile_ids)
        while pending:
            items = self.table.batch_get(
                [profile_key(pid) for pid in pending], consistent=consistent
            )
            loaded = [profile_from_item(item) for item in items]
            found.update({p.profile_id: p for p in loaded})
            pending = {p.merged_into for p in loaded if p.merged_into} - set(found)
        return found

    # --- conditional graph writes ---------------------------------------------

    def write_node(self, identifier: Identifier, profile_id: str, was: str | None) -> None:
        item = {**node_key(identifier), "profile_id": profile_id}
        if was is None:
            self._put(item, "attribute_not_exists(pk)", {})
        else:
            self._put(item, "profile_id = :was", {":was": {"S": was}})

    def write_nodes(self, nodes: Sequence[tuple[Identifier, str, str | None]]) -> None:
        """`write_node` for each (identifier, profile id, was), side by side."""
        side_by_side([partial(self.write_node, *node) for node in nodes])

    def write_profiles(self, profiles: Sequence[Profile]) -> None:
        """`write_profile` for each, side by side."""
        side_by_side([partial(self.write_profile, profile) for profile in profiles])

    def forget_node(self, identifier: Identifier, was: str) -> None:
        """Delete a node left pointing at a profile an erasure deleted (a batch that read
        the graph before the erasure claimed it), if it still points there."""
        # Claimed again meanwhile (ConditionFailed): no longer the erased profile's.
        with contextlib.suppress(ConditionFailed):
            self.table.delete_if(node_key(identifier), "profile_id = :was", {":was": {"S": was}})

    def write_profile(self, profile: Profile) -> None:
        """Optimistic concurrency: only over the version that was read."""
        item = profile_to_item(profile, version=profile.version + 1)
        if profile.version == 0:
            self._put(item, "attribute_not_exists(pk)", {})
        else:
            self._put(item, "version = :v", {":v": {"N": str(profile.version)}})
        profile.version += 1
        profile.changed = False

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> None:
        try:
            self.table.put_if(item, condition, values)
        except ConditionFailed as err:
            raise GraphConflict(f"{item['pk']} changed since it was read") from err

    # --- audit, blocking keys, suggestions (batched, idempotent) --------------

    def write_audit(self, notes: Iterable[tuple[str, MergeNote]]) -> None:
        self.table.batch_write(
            [
                {
                    "pk": f"profile#{survivor}",
                    "sk": f"merge#{note.at.isoformat()}#{note.merge_id}",
                    **merge_to_dict(note),
                    "survivor": survivor,
                }
                for survivor, note in notes
            ]
        )

    def candidates(self, key: str) -> dict[str, dict[str, Any]]:
        """Profiles stored under one blocking key, with their match traits."""
        return {
            str(i["sk"]): dict(i.get("traits") or {})
            for i in self.table.query_partition(f"block#{key}")
        }

    def write_blocks(self, entries: Iterable[tuple[str, str, dict[str, str]]]) -> None:
        """(blocking key, profile id, traits) triples."""
        self.table.batch_write(
            [{"pk": f"block#{key}", "sk": pid, "traits": traits} for key, pid, traits in entries]
        )

    def write_suggestions(self, suggestions: Iterable[dict[str, Any]]) -> None:
        """New suggestions only: a pair already linked or rejected keeps its decision."""
        for suggestion in suggestions:
            item = {"pk": SUGGESTIONS, "sk": f"{suggestion['a']}#{suggestion['b']}", **suggestion}
            try:
                self._put(item, "attribute_not_exists(pk)", {})
            except GraphConflict:
                continue

    def set_suggestion(self, a: str, b: str, status: str) -> bool:
        """Record a reviewer's decision; False if there is no such suggestion."""
        first, second = sorted((a, b))
        try:
            self.table.update(
                Update(
                    key={"pk": SUGGESTIONS, "sk": f"{first}#{second}"},
                    expression="SET #s = :s",
                    names={"#s": "status"},
                    values={":s": status},
                    condition="attribute_exists(pk)",
                )
            )
        except ConditionFailed:
            return False
        return True

    def suggestions(self) -> list[dict[str, Any]]:
        return self.table.query_partition(SUGGESTIONS)

    # --- the API: views, export, erasure --------------------------------------

    def profile_records(self, profile_id: str) -> list[dict[str, Any]]:
        return self.table.query_partition(f"profile#{profile_id}")

    def delete(self, keys: Iterable[dict[str, str]]) -> int:
        """Delete what exists among `keys`; how many there were (erasing again finds none)."""
        present = self.table.batch_get(list(keys))
        self.table.batch_write(deletes=[{"pk": str(i["pk"]), "sk": str(i["sk"])} for i in present])
        return len(present)

    # --- recent erasures: the erasure window ----------------------------------

    def record_erasure(self, keys: Iterable[str], at: datetime) -> None:
        """The erased identifiers' salted hashes, for the identity step to drop events
        received before `at` that are still in flight."""
        ErasureRecord(self.table, IN_FLIGHT_BOUND).record(keys, at)

    def recent_erasures(self, now: datetime) -> RecentErasures:
        """Every erasure within `IN_FLIGHT_BOUND` of `now`: one strongly consistent Query."""
        return ErasureRecord(self.table, IN_FLIGHT_BOUND).since(now - IN_FLIGHT_BOUND)


def merge_to_dict(note: MergeNote) -> dict[str, Any]:
    return {
        "merge_id": note.merge_id,
        "loser": note.loser,
        "at": note.at.isoformat(),
        "rule": note.rule,
        "message_id": note.message_id,
        "identifiers": note.identifiers,
        "score": None if note.score is None else str(round(note.score, 4)),
        "emitted": note.emitted,
    }


def merge_from_dict(data: dict[str, Any]) -> MergeNote:
    return MergeNote(
        merge_id=str(data["merge_id"]),
        loser=str(data["loser"]),
        at=datetime.fromisoformat(str(data["at"])),
        rule=data["rule"],
        message_id=data.get("message_id"),
        identifiers=[str(i) for i in data.get("identifiers") or []],
        score=float(data["score"]) if data.get("score") is not None else None,
        emitted=bool(data.get("emitted", False)),
    )


def profile_to_item(profile: Profile, version: int) -> dict[str, Any]:
    return {
        **profile_key(profile.profile_id),
        "profile_id": profile.profile_id,
        "created_at": profile.created_at.isoformat(),
        "identifiers": {k: list(v) for k, v in profile.identifiers.items() if v},
        "merged_into": profile.merged_into,
        "version": version,
        "merges": [
            {k: v for k, v in merge_to_dict(m).items() if v is not None} for m in profile.merges
        ],
        "block_keys": set(profile.block_keys),
    }


def profile_from_item(item: dict[str, Any]) -> Profile:
    return Profile(
        profile_id=str(item["profile_id"]),
        created_at=datetime.fromisoformat(str(item["created_at"])),
        identifiers={
            k: [str(v) for v in values] for k, values in (item.get("identifiers") or {}).items()
        },
        merged_into=item.get("merged_into"),
        version=int(item.get("version", 0)),
        merges=[merge_from_dict(m) for m in item.get("merges") or []],
        block_keys={str(k) for k in item.get("block_keys") or ()},
    )
