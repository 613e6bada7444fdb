"""`GET /v1/personalize`: what a web page or app may know about its visitor.

Plain logic, free of Lambda's event shape (the handler translates). A request:
  1. is checked against the limits (every parameter has one) and authenticated
     with the source's public write key (Basic auth or `?writeKey=`);
  2. names the visitor: `anonymousId`, and a `userId` that counts only with
     `userHash`, the HMAC-SHA256 of the user id under the source's identity-
     verification key, which only the customer's backend knows (Intercom's and
     Braze's scheme): the write key is public, so anyone could name any user id;
  3. becomes a profile id through the per-container cache (functions/personalize/
     identifier_cache.py) and one read of the profile's decision item;
  4. is answered with what the configuration lets a page see, filtered again by the
     current configuration: segment names, allow-listed traits, score bands, and
     the slots later issues fill. Never an identifier, email or phone.

A visitor the pipeline does not know, an erased person, and one without the
required consent all get the same answer: `"personalized": false` and defaults.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.personalize.identifier_cache import ProfileResolver
from functions.shared.config import BeaconConfig, Source
from functions.shared.decision import NOT_PERSONALIZED, Decision, DecisionRules
from functions.shared.identifiers import Identifier, normalized
from functions.shared.ports import DecisionsPort
from functions.shared.untrusted_json import strict_dumps

# Limits: every parameter a client controls has one (docs/security.md).
MAX_ID_CHARS = 400  # as ingest's ids: a longer one can never have a profile
MAX_KEY_CHARS = 256
HASH_HEX_CHARS = 64  # HMAC-SHA256, hex
MAX_QUERY_CHARS = 4096
MAX_HEADER_CHARS = 1024  # Origin, If-None-Match
MAX_REDIRECTS = 2  # merged-away profiles followed before giving up (a chain is rare)
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

ALLOWED_HEADERS = "Authorization, If-None-Match"
PREFLIGHT_MAX_AGE_S = 600


@dataclass(frozen=True)
class PageRequest:
    method: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    raw_query: str = ""


@dataclass(frozen=True)
class PageAnswer:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    # What the request cost and found, for metrics and the benchmark.
    personalized: bool = False
    verified: bool = False


@dataclass
class Touchpoint:
    config: BeaconConfig
    source_for_write_key: Callable[[str], str | None]
    identity_key: Callable[[Source], str | None]  # the source's HMAC key (cached secret)
    resolver: ProfileResolver
    decisions: DecisionsPort
    rules: DecisionRules = field(init=False)

    def __post_init__(self) -> None:
        self.rules = DecisionRules.from_config(self.config)

    # --- the request ---------------------------------------------------------------

    def answer(self, request: PageRequest) -> PageAnswer:
        origin = request.headers.get("origin", "")[:MAX_HEADER_CHARS]
        if request.method == "OPTIONS":
            return self.preflight(origin)
        problem = _over_limits(request)
        if problem is not None:
            return _error(400, problem)
        key = write_key(request)
        source_name = self.source_for_write_key(key) if key else None
        if source_name is None:
            return _error(401, "a valid write key is required (Basic auth or ?writeKey=)")
        source = next(s for s in self.config.sources if s.name == source_name)
        identifiers, verified = self.identifiers(source, request.query)
        decision = self.decision_for(identifiers)
        body = strict_dumps(self.payload(decision, verified))
        headers = {
            "Content-Type": "application/json",
            "Cache-Control": self.cache_control(),
            "ETag": etag(body),
            "Vary": "Origin, Authorization",
            **cors_grant(source, origin),
        }
        personalized = decision.personalized
        if _matches(request.headers.get("if-none-match", ""), headers["ETag"]):
            return PageAnswer(304, "", headers, personalized, verified)
        return PageAnswer(200, body, headers, personalized, verified)

    def preflight(self, origin: str) -> PageAnswer:
        """A preflight carries no key, so any source's origin is granted it; the GET
        that follows is granted only for its own source's origins. (beacon.js sends
        the key in the query string: a simple request, no preflight at all.)"""
        headers = {"Vary": "Origin"}
        if origin and _origin_allowed(self.config.allowed_origins, origin):
            headers |= {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, OPTIONS",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
            }
        return PageAnswer(204, "", headers)

    # --- who is asking -------------------------------------------------------------------

    def identifiers(
        self, source: Source, query: Mapping[str, str]
    ) -> tuple[list[Identifier], bool]:
        """The visitor's identifiers, most trusted first, and whether a user id was
        verified. An unverified user id is ignored entirely: it is not looked up."""
        found: list[Identifier] = []
        verified = False
        user_id = query.get("userId", "").strip()
        if user_id and self.verified(source, user_id, query.get("userHash", "")):
            found.append(normalized("user_id", user_id))
            verified = True
        anonymous_id = query.get("anonymousId", "").strip()
        if anonymous_id:
            found.append(normalized("anonymous_id", anonymous_id))
        return found, verified

    def verified(self, source: Source, user_id: str, given: str) -> bool:
        key = self.identity_key(source)
        if not key or not _HEX.match(given):
            return False
        expected = user_hash(key, user_id)
        return hmac.compare_digest(expected.encode(), given.lower().encode())

    # --- what is known -------------------------------------------------------------------

    def decision_for(self, identifiers: list[Identifier]) -> Decision:
        if not identifiers:
            return NOT_PERSONALIZED
        profile_id = self.resolver.resolve(identifiers)
        for _ in range(MAX_REDIRECTS + 1):
            if profile_id is None:
                return NOT_PERSONALIZED
            stored = self.decisions.decision(profile_id)
            if stored is None:
                return NOT_PERSONALIZED  # known to identity, not written by segments yet
            if stored.erased:
                # An erased person is an unknown visitor; the mapping is read again next
                # time (a device that comes back after consenting gets a new profile).
                self.resolver.moved(identifiers, profile_id, None)
                return NOT_PERSONALIZED
            if stored.merged_into is None:
                return stored.decision or NOT_PERSONALIZED
            self.resolver.moved(identifiers, profile_id, stored.merged_into)
            profile_id = stored.merged_into
        return NOT_PERSONALIZED

    def payload(self, decision: Decision, verified: bool) -> dict[str, Any]:
        """The answer, filtered by today's configuration (a decision written before
        the allow-list was narrowed tells no more than the list allows now)."""
        rules = self.rules
        if not decision.personalized:
            decision = NOT_PERSONALIZED
        traits = {}
        for name, value in decision.traits.items():
            if rules.trait_told(name) and (told := rules.told_value(value)) is not None:
                traits[name] = told
        return {
            "personalized": decision.personalized,
            "segments": [s for s in decision.segments if rules.segment_told(s)],
            "traits": traits,
            "scores": dict(decision.scores),
            "recommendations": [
                {"item_id": r.item_id, "score": r.score} for r in decision.recommendations
            ],
            "persona": decision.persona,
            "experiments": dict(decision.experiments),
            "verified": verified,
        }

    def cache_control(self) -> str:
        max_age = self.config.personalize.cache_max_age_s
        return f"private, max-age={max_age}" if max_age else "private, no-cache"


def user_hash(key: str, user_id: str) -> str:
    """What the customer's backend computes and hands its page: HMAC-SHA256 of the
    user id (as sent, trimmed) under the source's identity-verification key, hex."""
    return hmac.new(key.encode(), user_id.strip().encode(), hashlib.sha256).hexdigest()


def write_key(request: PageRequest) -> str | None:
    """Basic auth's user name, else `?writeKey=` (as tracking takes it)."""
    auth = request.headers.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user.split(":", 1)[0] or None
    return request.query.get("writeKey") or None


def cors_grant(source: Source, origin: str) -> dict[str, str]:
    """CORS for the source's own origins only (`Vary: Origin` is always sent)."""
    if not origin or not _origin_allowed(source.allowed_origins, origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "ETag"}


def etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def _origin_allowed(allowed: tuple[str, ...], origin: str) -> bool:
    return "*" in allowed or origin in allowed


def _matches(if_none_match: str, tag: str) -> bool:
    given = [t.strip().removeprefix("W/") for t in if_none_match[:MAX_HEADER_CHARS].split(",")]
    return tag in given or "*" in given


def _over_limits(request: PageRequest) -> str | None:
    if len(request.raw_query) > MAX_QUERY_CHARS:
        return f"the query string is over {MAX_QUERY_CHARS} characters"
    query = request.query
    for name in ("anonymousId", "userId"):
        if len(query.get(name, "")) > MAX_ID_CHARS:
            return f"{name} is over {MAX_ID_CHARS} characters"
    if len(query.get("writeKey", "")) > MAX_KEY_CHARS:
        return f"writeKey is over {MAX_KEY_CHARS} characters"
    given = query.get("userHash", "")
    if given and not _HEX.match(given):
        return f"userHash must be {HASH_HEX_CHARS} hex digits (HMAC-SHA256 of the userId)"
    if len(request.headers.get("authorization", "")) > MAX_HEADER_CHARS:
        return f"the Authorization header is over {MAX_HEADER_CHARS} characters"
    return None


def _error(status: int, message: str) -> PageAnswer:
    return PageAnswer(
        status,
        strict_dumps({"error": message}),
        {"Content-Type": "application/json", "Cache-Control": "no-store", "Vary": "Origin"},
    )
