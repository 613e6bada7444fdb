"""`ProfileState` <-> compact bytes, for the profile item's `state` attribute.

The state is stored as zlib-compressed JSON with short keys rather than as a
DynamoDB map: a write costs one unit per KB, and hundreds of hourly buckets
of small numbers compress several times over. Nobody queries inside the state;
what must be queried (the sweep's due time) is a top-level attribute.

Pure: no boto3. Datetimes are epoch seconds (float where sub-second matters),
Kinesis sequence numbers are strings (they exceed 64 bits).
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

from functions.profiles.interactions import decode_items, encode_items
from functions.profiles.state import (
    Applied,
    Cart,
    CartItem,
    Exposure,
    Membership,
    ProfileState,
    Sessions,
    Tally,
    Touch,
    TraitState,
)

FORMAT = 1


def encode_state(state: ProfileState) -> bytes:
    return zlib.compress(json.dumps(state_to_dict(state), separators=(",", ":")).encode(), 6)


def decode_state(data: bytes) -> ProfileState:
    loaded = json.loads(zlib.decompress(data))
    if loaded.get("f") != FORMAT:
        raise ValueError(f"profile state format {loaded.get('f')!r} is not {FORMAT}")
    return state_from_dict(loaded)


def state_to_dict(state: ProfileState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "f": FORMAT,
        "t": state.traits,
        "tt": {k: _ts(v) for k, v in state.trait_times.items()},
        "c": {k: _trait_to_dict(v) for k, v in state.computed.items()},
        "fs": _ts(state.first_seen),
        "ls": _ts(state.last_seen),
        "m": {k: [_ts(m.since), m.held_out] for k, m in state.memberships.items()},
        "w": {k: str(v) for k, v in state.applied.watermarks.items()},
        "r": state.applied.recent,
        "n": state.events_applied,
        "fm": state.folded_merges,
        "cs": state.consent,
        "ca": _ts(state.consent_at),
        "rc": state.recent_changes,
        "u": state.user_id,
        "ua": _ts(state.user_id_at),
        "rt": state.refused_traits or None,
        "x": {k: _exposure_to_list(e) for k, e in state.exposures.items()},
        "it": encode_items(state.items),
    }
    return {k: v for k, v in out.items() if v not in (None, {}, [])} | {"f": FORMAT}


def state_from_dict(data: dict[str, Any]) -> ProfileState:
    return ProfileState(
        traits=dict(data.get("t", {})),
        trait_times={k: _dt(v) for k, v in data.get("tt", {}).items()},
        computed={k: _trait_from_dict(v) for k, v in data.get("c", {}).items()},
        first_seen=_opt_dt(data.get("fs")),
        last_seen=_opt_dt(data.get("ls")),
        memberships={
            k: Membership(since=_dt(since), held_out=bool(held))
            for k, (since, held) in data.get("m", {}).items()
        },
        applied=Applied(
            watermarks={k: int(v) for k, v in data.get("w", {}).items()},
            recent={k: int(v) for k, v in data.get("r", {}).items()},
        ),
        events_applied=int(data.get("n", 0)),
        folded_merges={k: int(v) for k, v in data.get("fm", {}).items()},
        consent={k: bool(v) for k, v in data.get("cs", {}).items()},
        consent_at=_opt_dt(data.get("ca")),
        recent_changes={k: int(v) for k, v in data.get("rc", {}).items()},
        user_id=data.get("u"),
        user_id_at=_opt_dt(data.get("ua")),
        refused_traits=int(data.get("rt", 0)),
        exposures={k: _exposure_from_list(v) for k, v in data.get("x", {}).items()},
        items=decode_items(data.get("it", {})),
    )


def _exposure_to_list(e: Exposure) -> list[Any]:
    out: list[Any] = [_ts(e.at), e.arm, sorted(e.converted), e.values]
    return [*out, e.covariates] if e.covariates else out  # as before covariates existed


def _exposure_from_list(data: list[Any]) -> Exposure:
    at, arm, converted, values, *rest = data  # a fifth part: the covariates, if any
    return Exposure(
        arm=str(arm),
        at=_dt(at),
        converted=set(converted),
        values={g: int(v) for g, v in values.items()},
        covariates={g: int(v) for g, v in (rest[0] if rest else {}).items()},
    )


def _trait_to_dict(ts: TraitState) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ts.buckets:
        out["b"] = {str(start): _tally_to_list(t) for start, t in ts.buckets.items()}
    if ts.lifetime != Tally():
        out["l"] = _tally_to_list(ts.lifetime)
    if ts.first is not None:
        out["f"] = _ts(ts.first)
    if ts.last is not None:
        out["z"] = _ts(ts.last)
    if ts.seen:
        out["s"] = ts.seen
    if ts.cart is not None:
        out["k"] = {
            "i": {pid: [i.quantity, i.price, i.name, i.at] for pid, i in ts.cart.items.items()},
            "lc": _ts(ts.cart.last_change),
            "ra": _ts(ts.cart.reset_at),
        }
    if ts.sessions is not None:
        sessions = ts.sessions
        out["t"] = {
            "l": [[t.at, t.channel, t.campaign] for t in sessions.touches],
            "n": sessions.count,
            "f": [sessions.first.at, sessions.first.channel, sessions.first.campaign]
            if sessions.first
            else None,
            "v": sessions.visited,
            "c": sessions.campaign,
        }
    return out


def _trait_from_dict(data: dict[str, Any]) -> TraitState:
    cart = None
    if "k" in data:
        raw = data["k"]
        cart = Cart(
            items={
                pid: CartItem(quantity=int(q), price=float(p), name=n, at=int(at))
                for pid, (q, p, n, at) in raw.get("i", {}).items()
            },
            last_change=_opt_dt(raw.get("lc")),
            reset_at=_opt_dt(raw.get("ra")),
        )
    sessions = None
    if "t" in data:
        raw = data["t"]
        sessions = Sessions(
            touches=[Touch(int(at), ch, camp) for at, ch, camp in raw.get("l", [])],
            count=int(raw.get("n", 0)),
            first=Touch(int(raw["f"][0]), raw["f"][1], raw["f"][2]) if raw.get("f") else None,
            visited=raw.get("v"),
            campaign=raw.get("c"),
        )
    return TraitState(
        buckets={int(start): _tally_from_list(t) for start, t in data.get("b", {}).items()},
        lifetime=_tally_from_list(data["l"]) if "l" in data else Tally(),
        first=_opt_dt(data.get("f")),
        last=_opt_dt(data.get("z")),
        seen={k: int(v) for k, v in data.get("s", {}).items()},
        cart=cart,
        sessions=sessions,
    )


def _tally_to_list(tally: Tally) -> list[Any]:
    # Trailing empty parts are left off: most buckets are a bare count.
    parts: list[Any] = [tally.count, tally.total, tally.numeric, tally.values]
    while len(parts) > 1 and parts[-1] in (0, 0.0, {}):
        parts.pop()
    return parts


def _tally_from_list(parts: list[Any]) -> Tally:
    defaults: list[Any] = [0, 0.0, 0, {}]
    count, total, numeric, values = [*parts, *defaults[len(parts) :]]
    return Tally(
        count=int(count),
        total=float(total),
        numeric=int(numeric),
        values={k: int(v) for k, v in (values or {}).items()},
    )


def _ts(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    stamp = moment.timestamp()
    return int(stamp) if stamp == int(stamp) else stamp


def _dt(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _opt_dt(stamp: float | None) -> datetime | None:
    return None if stamp is None else _dt(stamp)
