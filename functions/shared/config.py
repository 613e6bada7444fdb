"""`beacon.yaml`: the one declarative file a user edits.

Validated by pydantic; an invalid file fails `cdk synth`, `beacon local` and a
function's cold start alike, with the line at fault and the field's path.
Later steps add their sections here (consent, identity, segments, models,
destinations).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from functions.shared.destinations import Destinations
from functions.shared.enrichment_config import Enrichment
from functions.shared.experiment_definitions import COVARIATE_KINDS, Experiment, Goal
from functions.shared.import_config import Imports
from functions.shared.personalize_config import Personalize
from functions.shared.schema import Name, SecretName, Strict
from functions.shared.segment_definitions import SegmentsConfig


class Source(Strict):
    """A place events come from: a website, an app, a server."""

    name: Name = Field(description="lower-case identifier, e.g. `web`")
    write_key_secret: SecretName = Field(
        description="Secrets Manager name holding this source's write key",
    )
    local_write_key: str = Field(
        default="local-write-key",
        description="the write key the local stack stores under write_key_secret",
    )
    allowed_origins: tuple[str, ...] = Field(
        default=(), description="browser origins allowed by CORS, e.g. https://shop.example.com"
    )
    snowplow_app_ids: tuple[str, ...] = Field(
        default=(), description="Snowplow `aid` values that belong to this source"
    )
    identity_verification_secret: SecretName | None = Field(
        default=None,
        description="Secrets Manager name of the key the customer's backend signs user ids "
        "with (HMAC-SHA256) so that GET /v1/personalize may use them",
    )
    local_identity_verification_key: str = Field(
        default="local-identity-key",
        description="the value the local stack stores under identity_verification_secret",
    )
    enrichment: Enrichment | None = Field(
        default=None, description="this source's enrichments (default: ingest.enrichment)"
    )

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com")
        return value


class Ingest(Strict):
    """How the collection API treats what it receives."""

    ip_handling: Literal["truncate", "hash", "drop"] = Field(
        default="truncate",
        description="truncate: IPv4 /24 and IPv6 /48; hash: salted SHA-256; drop: remove",
    )
    ip_hash_salt_secret: str | None = Field(
        default=None, description="Secrets Manager name of the salt used when ip_handling=hash"
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="CIDRs whose X-Forwarded-For is believed (API Gateway's own is always)",
    )
    enrichment: Enrichment = Field(
        default_factory=Enrichment, description="enrichments of every source without its own"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @model_validator(mode="after")
    def _salt(self) -> Ingest:
        if self.ip_handling == "hash" and not self.ip_hash_salt_secret:
            raise ValueError("ip_handling 'hash' needs ip_hash_salt_secret")
        return self


DEFAULT_ALWAYS_ALLOWED = (
    # Consent decisions themselves must always get through, or nobody could opt in.
    "Segment Consent Preference Updated",
    "consent_preferences",
    "consent_granted",
    "consent_withdrawn",
    "cmp_visible",
)


class Consent(Strict):
    """What each purpose needs, and what holds when a person has said nothing."""

    default: Literal["opt-in", "opt-out"] = Field(
        default="opt-in",
        description="opt-in: no known decision drops the event; opt-out: it is allowed",
    )
    categories: tuple[str, ...] = Field(
        default=("necessary", "analytics", "personalization", "advertising"),
        description="the consent categories this deployment knows (lower-case)",
    )
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="CMP category ids mapped to categories, e.g. OneTrust C0004: advertising",
    )
    required_for_profiles: tuple[str, ...] = Field(
        default=("personalization",),
        description="categories an event needs to shape profiles, segments and scores",
    )
    always_allowed_events: tuple[str, ...] = Field(default=DEFAULT_ALWAYS_ALLOWED)
    identifier_salt_secret: str = Field(
        default="beacon/identifier-salt",
        description="Secrets Manager name of the salt for hashed identifiers and suppressions",
    )

    @field_validator("categories", "required_for_profiles")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)

    @field_validator("aliases")
    @classmethod
    def _lower_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip().lower(): v.strip().lower() for k, v in value.items()}

    @model_validator(mode="after")
    def _known(self) -> Consent:
        unknown = [
            c
            for c in (*self.required_for_profiles, *self.aliases.values())
            if c not in self.categories
        ]
        if unknown:
            raise ValueError(f"unknown consent categories: {', '.join(sorted(set(unknown)))}")
        return self

    def category(self, name: str) -> str:
        """A CMP's category name or id as one of ours (lower-case, aliases applied)."""
        key = name.strip().lower()
        return self.aliases.get(key, key)


DEFAULT_BLOCKED = (
    r"^[0-]*$",  # 0000-0000..., the zero UUID
    r"^null$",
    r"^undefined$",
    r"^none$",
    r"^anonymous$",
    r"^unknown$",
    r"^(test|asdf|foo|none|null|noemail|no-reply|noreply)@",  # obvious test emails
    r"@(test|mailinator)\.com$",
)


class Probabilistic(Strict):
    """Fuzzy matching of `identify` traits (see docs/identity.md for how weights were chosen)."""

    enabled: bool = True
    # The score caps a pair resting on weak evidence (a name and a postcode, or a
    # name-shaped email) at 0.88, and one sharing only a name at 0.70: thresholds at
    # or below those would merge or suggest on that alone (docs/identity.md).
    auto_merge_threshold: float = Field(default=0.90, gt=0.88, le=1)
    review_threshold: float = Field(default=0.76, gt=0.70, le=1)
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "name": 0.40,
            "phone": 0.15,
            "address": 0.25,
            "postcode": 0.10,
            "email_local": 0.10,
        }
    )

    @model_validator(mode="after")
    def _thresholds(self) -> Probabilistic:
        if self.review_threshold > self.auto_merge_threshold:
            raise ValueError("review_threshold must not exceed auto_merge_threshold")
        unknown = set(self.weights) - {"name", "phone", "address", "postcode", "email_local"}
        if unknown:
            raise ValueError(f"unknown weight fields: {', '.join(sorted(unknown))}")
        if any(w < 0 for w in self.weights.values()) or not sum(self.weights.values()):
            raise ValueError("weights must be non-negative and not all zero")
        return self


class Identity(Strict):
    """Segment Unify-style deterministic rules, plus probabilistic matching."""

    priority: tuple[str, ...] = Field(
        default=("user_id", "email", "phone"),
        description="identifier types from most to least trusted; others follow, in event order",
    )
    limits: dict[str, int] = Field(
        default_factory=lambda: {"user_id": 1},
        description="most identifiers of a type one profile may hold",
    )
    default_limit: int = Field(default=5, ge=1)
    blocked_values: tuple[str, ...] = Field(default=DEFAULT_BLOCKED)
    default_phone_region: str = Field(default="US", min_length=2, max_length=2)
    probabilistic: Probabilistic = Field(default_factory=Probabilistic)

    @field_validator("blocked_values")
    @classmethod
    def _regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from err
        return value

    @field_validator("limits")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        if any(v < 1 for v in value.values()):
            raise ValueError("limits must be at least 1")
        return value

    def limit(self, kind: str) -> int:
        return self.limits.get(kind, self.default_limit)

    def rank(self, kind: str) -> int:
        """Lower is more trusted; unlisted types rank after every listed one."""
        return self.priority.index(kind) if kind in self.priority else len(self.priority)


class Models(Strict):
    """The scoring step's models: manifests (paths relative to beacon.yaml), each with
    its .onnx file beside it. Contents are checked by `functions.scoring.models` at
    `cdk synth`, `beacon local` and the scoring function's cold start."""

    manifests: tuple[str, ...] = ("models/churn.manifest.json", "models/purchase.manifest.json")
    # The recommender's manifest (docs/recommendations.md); null: no recommendations.
    recommender: str | None = "models/recommender.manifest.json"
    # The personas' manifest (K-means in ONNX, docs/models.md); null: no personas.
    personas: str | None = "models/personas.manifest.json"
    # Your names for the personas, by id (default: their generated descriptions).
    persona_names: dict[int, Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=dict
    )
    drift_alarm_psi: float = Field(
        default=0.2, gt=0, description="population stability index that raises the alarm"
    )

    @field_validator("recommender", "personas")
    @classmethod
    def _one_relative(cls, value: str | None) -> str | None:
        return None if value is None else cls._relative((value,))[0]

    @field_validator("manifests")
    @classmethod
    def _relative(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if Path(path).is_absolute() or ".." in Path(path).parts:
                raise ValueError(f"{path!r}: a manifest path is relative to beacon.yaml")
            if not path.endswith(".manifest.json"):
                raise ValueError(f"{path!r}: a manifest file ends in .manifest.json")
        return value


class Admin(Strict):
    admin_key_secret: str = "beacon/admin-key"  # noqa: S105 - a secret's name, not its value
    local_admin_key: str = "local-admin-key"


class BeaconConfig(Strict):
    version: Literal[1] = 1
    sources: tuple[Source, ...] = Field(min_length=1)
    ingest: Ingest = Field(default_factory=Ingest)
    consent: Consent = Field(default_factory=Consent)
    identity: Identity = Field(default_factory=Identity)
    segments: SegmentsConfig = Field(default_factory=SegmentsConfig)
    models: Models = Field(default_factory=Models)
    destinations: Destinations = ()
    admin: Admin = Field(default_factory=Admin)
    personalize: Personalize = Field(default_factory=Personalize)
    goals: tuple[Goal, ...] = Field(default=(), max_length=50)
    experiments: tuple[Experiment, ...] = Field(default=(), max_length=50)
    imports: Imports = Field(default_factory=Imports)  # bulk files (docs/import-export.md)

    @model_validator(mode="after")
    def _unique(self) -> BeaconConfig:
        names = [s.name for s in self.sources]
        _no_duplicates("source name", names)
        _no_duplicates("local_write_key", [s.local_write_key for s in self.sources])
        _no_duplicates("snowplow app id", [a for s in self.sources for a in s.snowplow_app_ids])
        _no_duplicates(
            "secret name",
            [
                *(s.write_key_secret for s in self.sources),
                *(
                    s.identity_verification_secret
                    for s in self.sources
                    if s.identity_verification_secret
                ),
                self.admin.admin_key_secret,
                self.consent.identifier_salt_secret,
            ],
        )
        segments = {s.id for s in self.segments.segments}
        self._check_personalize(segments)
        self._check_experiments()
        for destination in self.destinations:
            unknown = sorted(set(destination.required_consent) - set(self.consent.categories))
            if unknown:
                raise ValueError(
                    f"destination {destination.name!r}: required_consent names unknown"
                    f" categories {', '.join(unknown)} (consent.categories)"
                )
            missing = sorted(set(destination.segments or ()) - segments)
            if missing:
                raise ValueError(
                    f"destination {destination.name!r}: unknown segments {', '.join(missing)}"
                )
        return self

    def _check_experiments(self) -> None:
        _no_duplicates("goal id", [g.id for g in self.goals])
        _no_duplicates("experiment id", [e.id for e in self.experiments])
        goals = {g.id for g in self.goals}
        segments = {s.id: s for s in self.segments.segments}
        for experiment in self.experiments:
            segment = segments.get(experiment.segment)
            if segment is None:
                raise ValueError(
                    f"experiment {experiment.id!r}: unknown segment {experiment.segment!r}"
                )
            missing = sorted(set(experiment.goals) - goals)
            if missing:
                raise ValueError(
                    f"experiment {experiment.id!r}: unknown goals {', '.join(missing)}"
                )
            if len(segment.arms()) < 2:
                raise ValueError(
                    f"experiment {experiment.id!r}: segment {segment.id!r} has one arm; give it"
                    " a holdout_percent (a control group) or variants"
                )
            self._check_covariate(experiment)

    def _check_covariate(self, experiment: Experiment) -> None:
        if isinstance(experiment.covariate, dict):
            stray = sorted(set(experiment.covariate) - set(experiment.goals))
            if stray:
                raise ValueError(
                    f"experiment {experiment.id!r}: covariate names goals it does not measure:"
                    f" {', '.join(stray)}"
                )
        traits = {t.id: t for t in self.segments.computed_traits}
        for goal in experiment.goals:
            trait_id = experiment.covariate_of(goal)
            if trait_id is None:
                continue
            trait = traits.get(trait_id)
            if trait is None:
                raise ValueError(
                    f"experiment {experiment.id!r}: covariate {trait_id!r} is not a computed trait"
                )
            if trait.kind not in COVARIATE_KINDS:
                raise ValueError(
                    f"experiment {experiment.id!r}: covariate {trait_id!r} is a {trait.kind}"
                    f" trait; a covariate is a number ({', '.join(COVARIATE_KINDS)})"
                )

    def _check_personalize(self, segments: set[str]) -> None:
        told = self.personalize
        unknown = sorted(set(told.required_consent) - set(self.consent.categories))
        if unknown:
            raise ValueError(
                f"personalize.required_consent names unknown categories {', '.join(unknown)}"
            )
        missing = sorted(set(told.segments or ()) - segments)
        if missing:
            raise ValueError(f"personalize.segments: unknown segments {', '.join(missing)}")
        computed = {t.id for t in self.segments.computed_traits}
        missing = sorted(set(told.computed_traits) - computed)
        if missing:
            raise ValueError(
                f"personalize.computed_traits: unknown computed traits {', '.join(missing)}"
            )
        both = sorted(set(told.traits) & set(told.computed_traits))
        if both:
            raise ValueError(f"personalize: {', '.join(both)} is both a trait and computed")

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for source in self.sources:
            seen.update(dict.fromkeys(source.allowed_origins))
        return tuple(seen)

    def source_for_app_id(self, app_id: str | None) -> Source | None:
        """The source a Snowplow event belongs to: its `aid`, else a `*` catch-all."""
        fallback = None
        for source in self.sources:
            if app_id is not None and app_id in source.snowplow_app_ids:
                return source
            if "*" in source.snowplow_app_ids:
                fallback = source
        return fallback


def _no_duplicates(what: str, values: list[str]) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"duplicate {what}: {', '.join(dupes)}")


class ConfigError(ValueError):
    """An invalid configuration file, with the line of each problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"invalid Beacon configuration {path}:\n  " + "\n  ".join(problems))


def load_config(path: str | Path) -> BeaconConfig:
    """Read, parse and validate the file; raise ConfigError naming the lines at fault."""
    text = Path(path).read_text(encoding="utf-8")
    return parse_config(text, str(path))


def parse_config(text: str, path: str = "beacon.yaml") -> BeaconConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(path, [f"{where}not valid YAML ({err})"]) from err
    if not isinstance(data, dict):
        raise ConfigError(path, ["line 1: the file must be a mapping with a `sources` list"])
    try:
        return BeaconConfig.model_validate(data)
    except ValidationError as err:
        lines = _line_index(node)
        problems = []
        for error in err.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"line {_line_for(lines, loc)}: {_dotted(loc)}: {message}")
        raise ConfigError(path, problems) from err


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_index(node: yaml.Node | None) -> dict[tuple[Any, ...], int]:
    """Map every path in the YAML document to the 1-based line it starts on."""
    index: dict[tuple[Any, ...], int] = {}

    def walk(current: yaml.Node, path: tuple[Any, ...]) -> None:
        index[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                child = (*path, key.value)
                index[child] = key.start_mark.line + 1
                walk(value, child)
                index[child] = key.start_mark.line + 1
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return index


def _line_for(index: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    # The deepest part of the path that exists in the file (a missing field
    # points at its parent mapping).
    for end in range(len(loc), -1, -1):
        if loc[:end] in index:
            return index[loc[:end]]
    return 1
