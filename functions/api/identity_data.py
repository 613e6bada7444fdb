"""The identity graph as a participant in profile views, export and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.shared.erasure import Person
from functions.shared.identity_records import Profile
from functions.shared.ports import IdentityRecords


def _live(profiles: dict[str, Profile], profile_id: str) -> Profile | None:
    seen: set[str] = set()
    while (profile := profiles.get(profile_id)) and profile.merged_into and profile_id not in seen:
        seen.add(profile_id)
        profile_id = profile.merged_into
    return profiles.get(profile_id)


class IdentityData:
    name = "identity"

    def __init__(self, store: IdentityRecords, salt: bytes) -> None:
        self.store = store
        self.salt = salt

    def _profiles(self, person: Person) -> list[Profile]:
        nodes = self.store.load_nodes(sorted({person.asked_for, *person.identifiers}))
        profiles = self.store.load_profiles(sorted(set(nodes.values())))
        live = {p.profile_id: p for pid in nodes.values() if (p := _live(profiles, pid))}
        return list(live.values())

    def widen(self, person: Person) -> None:
        for profile in self._profiles(person):
            person.profile_ids.add(profile.profile_id)
            person.profile_ids.update(m.loser for m in profile.merges)
            for identifier in profile.holds():
                person.identifiers.add(identifier)
                person.keys.add(identifier.hashed_key(self.salt))

    def view(self, person: Person) -> dict[str, Any] | None:
        profiles = self._profiles(person)
        if not profiles:
            return None
        profile = profiles[0]
        return {
            "profile_id": profile.profile_id,
            "created_at": profile.created_at.isoformat(),
            "identifiers": {k: sorted(v) for k, v in sorted(profile.identifiers.items())},
            "merged_from": [m.loser for m in profile.merges],
        }

    def export(self, person: Person) -> dict[str, Any]:
        return {
            "profiles": [
                {"profile_id": pid, "records": self.store.profile_records(pid)}
                for pid in sorted(person.profile_ids)
            ]
        }

    def erase(self, person: Person, at: datetime) -> int:
        """Graph nodes, profiles (and the redirects merged into them), audit, blocking keys,
        suggestions; how many existed (erasing again finds none).

        First the person's identifiers go on the recent erasures, as salted hashes: from
        then on the identity step drops their events received before `at` that are still
        in flight, so they cannot write back the nodes deleted here.
        """
        self.store.record_erasure(sorted(person.keys), at)
        keys: list[dict[str, str]] = [
            {"pk": f"id#{identifier}", "sk": "node"} for identifier in sorted(person.identifiers)
        ]
        profiles = self.store.load_profiles(sorted(person.profile_ids))
        for pid in sorted(person.profile_ids):
            keys += [{"pk": r["pk"], "sk": r["sk"]} for r in self.store.profile_records(pid)]
            profile = profiles.get(pid)
            if profile is not None:
                keys += [{"pk": f"block#{k}", "sk": pid} for k in sorted(profile.block_keys)]
        keys += [
            {"pk": s["pk"], "sk": s["sk"]}
            for s in self.store.suggestions()
            if s.get("a") in person.profile_ids or s.get("b") in person.profile_ids
        ]
        return self.store.delete(keys)
