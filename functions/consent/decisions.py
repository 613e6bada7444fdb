"""Consent decisions: what a person allowed, across all their identifiers, and what it permits.

Pure logic: no AWS, no Lambda. The step loads the consent state of every
identifier in a batch, feeds the events through a `ConsentBook` in stream
order, and writes back only what changed.

Rules:
- A decision is per category, timestamped by the event (clock-skew corrected).
- The newest explicit decision among all identifiers on an event wins, per
  category; ties break on message id so replays always resolve the same way.
- What an event resolves to is recorded under every identifier it carries, so
  a decision made under a user id reaches each new anonymous id seen with it.
- An erased person's identifiers stay suppressed until a fresh opt-in: a consent
  change event received and made after the erasure (`_fresh_opt_in`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from functions.shared.config import Consent
from functions.shared.consent_records import (
    MAX_LINKED,
    AuditEntry,
    CategoryDecision,
    ConsentState,
    in_force,
)
from functions.shared.events import CanonicalEvent, ConsentStamp
from functions.shared.identifiers import identifiers_of

# Identifier types a keyless source (the pixel) may decide consent for.
DEVICE_IDENTIFIERS = frozenset({"anonymous_id"})
# A withdrawal placed after a grant it overrules lands this much later.
_AFTER = timedelta(microseconds=1)

# Drop reasons, counted per day and reported by the demo.
CONSENT_DENIED = "consent_denied"
CONSENT_UNKNOWN = "consent_unknown"
ERASED = "erased"
BOT = "bot"  # flagged by ingest's enrichment (context.enrichment.bot), not a person
# The events that carry a consent decision being made (not one being repeated): what
# can lift an erasure's suppression. `POST /v1/consent` becomes the first.
CONSENT_CHANGE_EVENTS = frozenset(
    {"Segment Consent Preference Updated", "consent_preferences", "consent_granted"}
)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None
    stamp: ConsentStamp


def explicit_decision(event: CanonicalEvent, policy: Consent) -> tuple[dict[str, bool], str]:
    """The categories this event decides, and where the decision came from."""
    decided: dict[str, bool] = {}
    source = ""
    if event.context.consent and event.context.consent.category_preferences:
        for name, granted in event.context.consent.category_preferences.items():
            decided[policy.category(name)] = bool(granted)
        source = f"{event.source.protocol}:categoryPreferences"
        if event.event == "Segment Consent Preference Updated":
            source = (
                f"{event.source.protocol}:{event.properties.get('source', 'preference update')}"
            )
    snowplow = _snowplow_decision(event, policy)
    if snowplow:
        decided.update(snowplow)
        source = f"snowplow:{event.event}"
    return decided, source


def _snowplow_decision(event: CanonicalEvent, policy: Consent) -> dict[str, bool]:
    name = event.event
    props = event.properties
    if name == "consent_preferences":
        kind = str(props.get("eventType", ""))
        scopes = [
            policy.category(s) for s in props.get("consentScopes") or [] if isinstance(s, str)
        ]
        if kind == "allow_all":
            return dict.fromkeys(policy.categories, True)
        if kind == "deny_all":
            return dict.fromkeys(policy.categories, False)
        if kind == "allow_selected":
            return {c: c in scopes for c in (*policy.categories, *scopes)}
        return {}
    if name in ("consent_granted", "consent_withdrawn"):
        granted = name == "consent_granted"
        if not granted and props.get("all") is True:
            return dict.fromkeys(policy.categories, False)
        return dict.fromkeys(_consent_documents(event, policy), granted)
    return {}


def _consent_documents(event: CanonicalEvent, policy: Consent) -> list[str]:
    snowplow = (event.context.model_extra or {}).get("snowplow") or {}
    contexts: list[Any] = snowplow.get("contexts") or [] if isinstance(snowplow, dict) else []
    names = []
    for item in contexts:
        if isinstance(item, dict) and "/consent_document/" in str(item.get("schema", "")):
            data = item.get("data") or {}
            label = data.get("name") or data.get("id")
            if isinstance(label, str) and label.strip():
                names.append(policy.category(label))
    return names


class ConsentBook:
    """The consent state of one batch's identifiers, updated event by event in stream order."""

    def __init__(self, states: dict[str, ConsentState], policy: Consent, salt: bytes) -> None:
        self.states = states
        self.policy = policy
        self.salt = salt
        self.audit: list[AuditEntry] = []

    def keys_for(self, event: CanonicalEvent) -> list[str]:
        return [identifier.hashed_key(self.salt) for identifier in identifiers_of(event)]

    def state(self, key: str) -> ConsentState:
        return self.states.setdefault(key, ConsentState(key))

    def apply(self, event: CanonicalEvent) -> Verdict:
        identifiers = identifiers_of(event)
        kinds = [identifier.type for identifier in identifiers]
        states = [self.state(identifier.hashed_key(self.salt)) for identifier in identifiers]
        decided, source = explicit_decision(event, self.policy)
        # Segment's consent wrapper puts preferences on every event: they update the
        # state and then the event is judged like any other, unless it is a consent event.
        is_consent_event = self._always_allowed(event)

        if any(s.suppressed for s in states):
            if not self._fresh_opt_in(decided, event, states):
                return self._verdict(False, ERASED, {})
            for state in states:
                state.suppressed, state.changed = False, True

        own = self._own_decisions(decided, source, event, states)
        # Every decision known under any of the event's identifiers up to the event's
        # own time, plus its own: filed under each of them. Nothing later is copied, so
        # a replay files exactly what the first pass filed.
        known: dict[str, list[CategoryDecision]] = {}
        for state in states:
            for category, history in state.categories.items():
                known.setdefault(category, []).extend(d for d in history if d.at <= event.timestamp)
        for category, decision in own.items():
            known.setdefault(category, []).append(decision)
        for state, kind in zip(states, kinds, strict=True):
            self._record(state, kind, known, event)
        self._link(states)
        resolved = self._in_force(event, states, own)
        if is_consent_event:
            return self._verdict(True, None, resolved)
        for category in self.policy.required_for_profiles:
            current = resolved.get(category)
            if current is not None and not current.granted:
                return self._verdict(False, CONSENT_DENIED, resolved)
            if current is None and self.policy.default == "opt-in":
                return self._verdict(False, CONSENT_UNKNOWN, resolved)
        return self._verdict(True, None, resolved)

    # --- helpers -------------------------------------------------------------

    def _always_allowed(self, event: CanonicalEvent) -> bool:
        return event.event is not None and event.event in self.policy.always_allowed_events

    def _own_decisions(
        self,
        decided: dict[str, bool],
        source: str,
        event: CanonicalEvent,
        states: list[ConsentState],
    ) -> dict[str, CategoryDecision]:
        """The event's own decisions, placed in time by what the server knows.

        A decision is in force from the event's time, but never from later than
        Beacon received it (a grant dated in the future cannot outrank what comes
        after it). A withdrawal is placed after every grant Beacon received before
        it, whatever time the client claims: an opt-out received after a grant
        always wins. A grant from a source with no key holds only for device ids.
        """
        received = event.received_at
        at = min(event.timestamp, received)
        unauthenticated = event.source.protocol == "snowplow"
        own: dict[str, CategoryDecision] = {}
        for category, granted in decided.items():
            placed = at
            if not granted:
                for state in states:
                    for earlier in state.categories.get(category, ()):
                        if earlier.granted and earlier.received_at <= received:
                            placed = max(placed, earlier.at + _AFTER)
            own[category] = CategoryDecision(
                granted,
                placed,
                source,
                event.message_id,
                received=received,
                device_only=granted and unauthenticated,
            )
        return own

    def _in_force(
        self,
        event: CanonicalEvent,
        states: list[ConsentState],
        own: dict[str, CategoryDecision],
    ) -> dict[str, CategoryDecision]:
        """What each category's decision is for this event.

        Judged at the event's own time, so a replay or a late event gets the verdict
        it got in order, except that no event received after a withdrawal can claim
        to predate it: it is judged no earlier than the newest withdrawal Beacon had
        received before the event itself.
        """
        every: dict[str, list[CategoryDecision]] = {}
        for state in states:
            for category, history in state.categories.items():
                every.setdefault(category, []).extend(history)
        for category, decision in own.items():
            every.setdefault(category, []).append(decision)
        resolved: dict[str, CategoryDecision] = {}
        for category, history in every.items():
            judged_at = event.timestamp
            for decision in history:
                if not decision.granted and decision.received_at <= event.received_at:
                    judged_at = max(judged_at, decision.at)
            current = in_force(sorted(set(history), key=lambda d: d.order), judged_at)
            if current is not None:
                resolved[category] = current
        return resolved

    def _fresh_opt_in(
        self, decided: dict[str, bool], event: CanonicalEvent, states: list[ConsentState]
    ) -> bool:
        """Only a new decision lifts an erasure's suppression: a consent change event
        (a banner answer, `POST /v1/consent`, Snowplow's consent events) that Beacon
        received after the erasure, made after it, granting what profiles need.

        A `categoryPreferences` stamp on an ordinary event repeats what the browser
        held before the erasure, and a client's clock can say anything: neither is a
        decision made after it, so both are checked against the server's receipt too.
        """
        erased_at = max((s.erased_at for s in states if s.erased_at), default=None)
        newer = erased_at is None or (event.received_at > erased_at and event.timestamp > erased_at)
        required = self.policy.required_for_profiles
        return (
            event.event in CONSENT_CHANGE_EVENTS
            and newer
            and bool(decided)
            and all(decided.get(c) is True for c in required)
        )

    def _record(
        self,
        state: ConsentState,
        kind: str,
        known: dict[str, list[CategoryDecision]],
        event: CanonicalEvent,
    ) -> None:
        """File every known decision under this identifier; audit a change of what is current.

        A device-only grant is filed under device ids alone, so it never reaches
        a user id it merely travelled with."""
        changes: dict[str, dict[str, bool | None]] = {}
        sources = set()
        propagated = False
        for category, history in known.items():
            before = state.latest(category)
            for decision in history:
                if decision.device_only and kind not in DEVICE_IDENTIFIERS:
                    continue
                state.insert(category, decision)
            after = state.latest(category)
            if after is not None and (before is None or before.granted != after.granted):
                changes[category] = {
                    "from": None if before is None else before.granted,
                    "to": after.granted,
                }
                sources.add(after.source)
                propagated |= after.message_id != event.message_id
        if changes:
            source = ", ".join(sorted(sources))
            self.audit.append(
                AuditEntry(
                    state.key,
                    event.timestamp,
                    event.message_id,
                    f"propagated: {source}" if propagated else source,
                    changes,
                )
            )

    @staticmethod
    def _link(states: list[ConsentState]) -> None:
        keys = {s.key for s in states}
        for state in states:
            new = keys - {state.key} - state.linked
            if new and len(state.linked) < MAX_LINKED:
                state.linked.update(sorted(new)[: MAX_LINKED - len(state.linked)])
                state.changed = True

    def _verdict(
        self, allowed: bool, reason: str | None, resolved: dict[str, CategoryDecision]
    ) -> Verdict:
        granted: list[str] = []
        denied: list[str] = []
        for category in sorted({*self.policy.categories, *resolved}):
            decision = resolved.get(category)
            ok = decision.granted if decision else self.policy.default == "opt-out"
            (granted if ok else denied).append(category)
        return Verdict(allowed, reason, ConsentStamp(granted=granted, denied=denied))
