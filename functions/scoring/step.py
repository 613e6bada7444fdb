"""The scoring step: score every changed profile of a batch with each model at once.

Per Kinesis batch of `profile-changes`:
  1. read every changed profile once (one BatchGetItem per 100);
  2. build each model's feature matrix for the whole batch from the profiles
     (`features.feature_matrix`, the code training used) and score it in one
     call per model; missing features take the manifest's defaults and are counted;
  3. per profile: new scores, thresholds crossed upwards (`score.crossed`),
     segments whose conditions read scores re-evaluated (enter/exit);
  4. send the activations — the segment changes the segments step committed,
     and this step's own — to the `activations` queue, then
  5. write each profile whose scores or memberships changed, once, conditional
     on the version read. Scores that moved less than `SCORE_EPSILON` are not
     rewritten.

Activations are sent before the write, so a crash in between re-sends them
(their ids are stable: the webhook step deduplicates) rather than losing them.
A shadow model is scored and reported next to its primary but never written
or acted on.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from functions.experiments.book import (
    DAILY_COUNTERS,
    ExperimentBook,
    counter_delta,
    experiment_changes,
)
from functions.profiles.apply import remember_change
from functions.profiles.computed import computed_values
from functions.profiles.decision import profile_decision
from functions.profiles.evaluate import CompiledSegments, activation
from functions.profiles.state import epoch
from functions.profiles.step import ProfileStep
from functions.profiles.stored import StoredProfile
from functions.profiles.touches import profile_influence
from functions.scoring.drift import DriftAccumulator
from functions.scoring.features import feature_matrix
from functions.scoring.manifest import ModelManifest
from functions.scoring.personas import PERSONA_FEATURE, PersonaAssigner, persona_rows
from functions.scoring.recommend import RecommenderArtifact, recommend
from functions.shared.activations import Activation, activation_json
from functions.shared.decision import PERSONA, RECOMMENDATIONS, told_extras
from functions.shared.ports import QueuePort
from functions.shared.profile_changes import (
    ProfileChanged,
    change_id,
    parse_change,
)
from functions.shared.segment_definitions import SegmentsConfig
from functions.shared.stream_batch import StreamItem, readable_records

STEP = "scoring"
CONFLICT_ROUNDS = 3  # reads and writes of a contended profile within one invocation
# Before reading again a profile whose write had not landed: a segments batch writes
# its profiles one after another after announcing them, seconds on a loaded machine.
LANDING_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
LANDING_WINDOW = timedelta(minutes=5)  # older records name a profile that is gone, not landing
SCORE_EPSILON = 0.001  # a change smaller than this is not worth a write


class Scorer(Protocol):
    manifest: ModelManifest

    def probabilities(self, rows: Sequence[Sequence[float]]) -> list[float]: ...


@dataclass
class ScoringOutcome:
    failed: set[str] = field(default_factory=set)
    profiles_scored: int = 0
    profiles_written: int = 0
    activations: Counter[str] = field(default_factory=Counter)
    defaulted: Counter[str] = field(default_factory=Counter)  # model -> missing values filled
    shadow: dict[str, list[float]] = field(default_factory=dict)
    malformed: int = 0
    conflicts: int = 0  # profile writes that lost a race (and were done again)
    conflicted: set[str] = field(default_factory=set)  # this round's lost races
    landing: set[str] = field(default_factory=set)  # this round's profiles not yet written
    experiments: Counter[str] = field(default_factory=Counter)  # committed counter changes
    counted: set[str] = field(default_factory=set)  # the profiles whose write changed them


@dataclass
class _Scored:
    stored: StoredProfile
    sequences: set[str]
    activations: list[Activation] = field(default_factory=list)
    scores_moved: bool = False
    sizes: dict[str, int] = field(default_factory=dict)
    segments_moved: bool = False
    due_at: datetime | None = None


@dataclass(kw_only=True)
class ScoringStep(ProfileStep):
    scorers: Sequence[Scorer]
    segments: SegmentsConfig
    activations: QueuePort
    experiments: ExperimentBook = field(default_factory=lambda: ExperimentBook((), (), ()))
    pause: Callable[[float], None] = time.sleep  # while a write lands (LANDING_PAUSES_S)
    recommender: RecommenderArtifact | None = None
    personas: PersonaAssigner | None = None
    engine: CompiledSegments = field(init=False)
    drift: dict[str, DriftAccumulator] = field(init=False)

    def __post_init__(self) -> None:
        self.engine = CompiledSegments(self.segments)
        # Running statistics per container, for the drift metrics.
        self.drift = {
            s.manifest.name: DriftAccumulator.from_manifest(s.manifest) for s in self.scorers
        }
        if self.personas is not None:
            # The persona mix (the assigned id as a feature) and the features behind it.
            self.drift["personas"] = DriftAccumulator(self.personas.training)

    def use_scorers(self, scorers: Sequence[Scorer]) -> None:
        """Score with `scorers` from now on (the registry's versions: live_models.py); a
        model whose version changed starts its drift statistics afresh."""
        if scorers is self.scorers:
            return
        versions = {(s.manifest.name, s.manifest.version) for s in self.scorers}
        self.scorers = scorers
        for s in scorers:
            if (s.manifest.name, s.manifest.version) not in versions or s.manifest.name not in (
                self.drift
            ):
                self.drift[s.manifest.name] = DriftAccumulator.from_manifest(s.manifest)

    @property
    def primaries(self) -> list[Scorer]:
        return [s for s in self.scorers if s.manifest.role == "primary"]

    def score_batch(self, items: Sequence[StreamItem], batch_id: str) -> ScoringOutcome:
        """Score the batch's profiles; a profile whose write lost a race (the segments
        step wrote it meanwhile) is read, scored and written again, up to
        `CONFLICT_ROUNDS` times, and one announced but not yet written is waited for
        (`LANDING_PAUSES_S`), before its records are handed back to Lambda."""
        outcome = ScoringOutcome()
        changes: dict[str, list[tuple[StreamItem, ProfileChanged]]] = {}
        read, outcome.malformed = readable_records(STEP, items, parse_change, self.failed_events)
        for item, change in read:
            changes.setdefault(change.profile_id, []).append((item, change))
        conflicts = waits = 0
        while True:
            outcome.conflicted, outcome.landing = set(), set()
            # Drift is counted once per batch, on its first round.
            self._score_once(changes, batch_id if conflicts + waits == 0 else None, outcome)
            conflicts += bool(outcome.conflicted)
            waits += bool(outcome.landing)
            again = outcome.conflicted | outcome.landing
            if not again or conflicts >= CONFLICT_ROUNDS or waits > len(LANDING_PAUSES_S):
                break
            if outcome.landing:
                self.pause(LANDING_PAUSES_S[waits - 1])
            changes = {
                pid: pairs
                for pid, pairs in changes.items()
                if any(item.sequence in again for item, _ in pairs)
            }
        outcome.failed |= outcome.conflicted | outcome.landing
        if outcome.experiments:
            # Each day's experiment counter changes (the dashboard's lift over time),
            # keyed by what was written: a retry that writes other profiles adds.
            written = hashlib.sha256("\n".join(sorted(outcome.counted)).encode()).hexdigest()
            day = self.clock().date().isoformat()
            key = f"{STEP}:{batch_id}#{written[:16]}"
            self.counters.record_batch(DAILY_COUNTERS, day, key, outcome.experiments)
        return outcome

    def _score_once(
        self,
        changes: dict[str, list[tuple[StreamItem, ProfileChanged]]],
        batch_id: str | None,
        outcome: ScoringOutcome,
    ) -> None:
        now = self.clock()
        loaded = self.profiles.load(changes)
        # The segments step puts a change record on the stream before it writes the
        # profile: read at once, the write may not have landed yet (no item, only the
        # identity step's version 0, or older than the version the record announces).
        # Its segment changes would then look never committed and their activations
        # be lost: read it again. An old record's missing profile is gone for good.
        landing = {
            pid
            for pid, pairs in changes.items()
            if now - max(c.at for _, c in pairs) < LANDING_WINDOW
            and (
                (p := loaded.get(pid)) is None
                or (
                    p.merged_into is None
                    and p.erased_at is None
                    and p.version < max(c.version for _, c in pairs)
                )
            )
        }
        outcome.landing = {item.sequence for pid in landing for item, _ in changes[pid]}
        # Not a tombstone, nor an erased profile (an erasure marker): nothing to score,
        # and no activation may carry an erased person's traits to a destination.
        live = [p for pid in changes if pid not in landing and (p := loaded.get(pid)) and p.live]
        views = [
            activation(p.profile_id, p.state, self.segments, now, scores=p.scores)["profile"]
            for p in live
        ]
        probabilities = self._score(views, now, outcome, batch_id)
        personas = self._assign_personas(views, live, now, batch_id)
        work = []
        for index, stored in enumerate(live):
            sequences = {item.sequence for item, _ in changes[stored.profile_id]}
            scored = _Scored(stored, sequences)
            self._recommend(scored, now)
            if personas:
                self._persona(scored, personas[index])
            self._forward_committed(scored, [c for _, c in changes[stored.profile_id]])
            self._update(scored, {m: p[index] for m, p in probabilities.items()}, now)
            work.append(scored)
        outcome.profiles_scored += len(work)
        self._commit(work, now, outcome)

    # --- scoring ------------------------------------------------------------------

    def _score(
        self,
        views: list[dict[str, Any]],
        now: datetime,
        outcome: ScoringOutcome,
        batch_id: str | None,
    ) -> dict[str, list[float]]:
        """One model call per model for the whole batch; model name -> probabilities."""
        primary: dict[str, list[float]] = {}
        if not views:
            return primary
        for scorer in self.scorers:
            manifest = scorer.manifest
            matrix = feature_matrix(views, manifest.features, now)
            outcome.defaulted[manifest.name] += sum(matrix.defaults.values())
            values = scorer.probabilities(matrix.rows)
            if batch_id is not None:
                batch = DriftAccumulator.from_manifest(manifest)
                batch.add(manifest.feature_names, matrix.rows)
                self.drift[manifest.name].merge(batch)
                self._record_drift(manifest, batch, now, batch_id)
            if manifest.role == "shadow":
                outcome.shadow[manifest.name] = values
            else:
                primary[manifest.name] = values
        return primary

    def _record_drift(
        self, manifest: ModelManifest, batch: DriftAccumulator, now: datetime, batch_id: str
    ) -> None:
        """This batch's feature histograms (the training summary's bins), one item per
        batch: `beacon models status` sums a day's and compares them with training."""
        self._record_histograms(drift_counter(manifest), batch, now, batch_id)

    def _record_histograms(
        self, name: str, batch: DriftAccumulator, now: datetime, batch_id: str
    ) -> None:
        counts: Counter[str] = Counter(rows=batch.rows)
        for feature, bins in batch.counts.items():
            counts.update({f"{feature}|{i}": n for i, n in enumerate(bins) if n})
        self.counters.record_batch(name, now.date().isoformat(), batch_id, counts)

    def _update(self, scored: _Scored, probabilities: Mapping[str, float], now: datetime) -> None:
        stored = scored.stored
        state = stored.state
        scores = dict(stored.scores)
        # Ids rest on the scores this change replaces, not the item's version: a write
        # redone after a lost race (the segments step wrote meanwhile) announces the
        # same ids, so an activation already sent is not sent under a new one.
        basis = "|".join(
            f"{name}@{score.get('scored_at', '')}" for name, score in sorted(scores.items())
        )
        for scorer in self.primaries:
            manifest = scorer.manifest
            probability = round(float(probabilities[manifest.name]), 6)
            before = scores.get(manifest.name) or {}
            reached = sorted(t for t, v in manifest.thresholds.items() if probability >= v)
            scores[manifest.name] = {
                "probability": probability,
                "model_version": manifest.version,
                "scored_at": now.isoformat(),
                "thresholds_reached": reached,
            }
            band = manifest.band(probability)
            if band is not None:
                # What a page is told of the score (the decision item), never the number.
                scores[manifest.name]["band"] = band
            moved = (
                before.get("model_version") != manifest.version
                or abs(float(before.get("probability", -1.0)) - probability) >= SCORE_EPSILON
            )
            scored.scores_moved |= moved
            for threshold in sorted(set(reached) - set(before.get("thresholds_reached", []))):
                scored.activations.append(
                    self._activation(
                        stored,
                        change_id(stored.profile_id, 0, f"{basis}:{manifest.name}:{threshold}"),
                        "score.crossed",
                        now,
                        model=manifest.name,
                        threshold=threshold,
                        score=probability,
                    )
                )
        if not scored.scores_moved:
            return
        stored.scores = scores
        evaluation = self.engine.evaluate_profile(
            stored.profile_id, state, now, scores=scores, consent=state.consent
        )
        if evaluation.changes:
            counted = self.experiments.counters(state)
            state.memberships = evaluation.memberships
            self.experiments.expose(
                state,
                stored.profile_id,
                evaluation.changes,
                computed=computed_values(state, self.segments, now),
            )
            scored.segments_moved = True
            scored.sizes = evaluation.size_changes | counter_delta(
                counted, self.experiments.counters(state)
            )
            for change in evaluation.changes:
                cid = change_id(stored.profile_id, 0, f"{basis}:{change.type}:{change.segment_id}")
                remember_change(state, cid, now)
                scored.activations.append(
                    self._activation(
                        stored,
                        cid,
                        change.type,
                        now,
                        segment_id=change.segment_id,
                        held_out=change.held_out,
                        variant=change.variant,
                    )
                )
            scored.due_at = self.engine.next_recheck(
                stored.profile_id, state, now, scores=scores, consent=state.consent
            )

    def _assign_personas(
        self,
        views: list[dict[str, Any]],
        live: list[StoredProfile],
        now: datetime,
        batch_id: str | None,
    ) -> list[int]:
        """One ONNX call for the batch; its features and ids counted for the mix's drift."""
        if self.personas is None or not views:
            return []
        rows = persona_rows(views, [p.state.items for p in live], self.personas.categories, now)
        ids = self.personas.assign(rows)
        if batch_id is not None:
            names = [*self.personas.feature_names, PERSONA_FEATURE]
            batch = DriftAccumulator(self.personas.training)
            batch.add(names, [[*r, i] for r, i in zip(rows, ids, strict=True)])
            self.drift["personas"].merge(batch)
            self._record_histograms(f"drift#personas#{self.personas.version}", batch, now, batch_id)
        return ids

    def _persona(self, scored: _Scored, persona_id: int) -> None:
        """The persona like a score: written when the id, name or model version changes."""
        assert self.personas is not None
        info = self.personas.personas.get(persona_id)
        entry = {
            "id": persona_id,
            "name": info.name if info else str(persona_id),
            "model_version": self.personas.version,
        }
        if scored.stored.scores.get(PERSONA) != entry:
            scored.stored.scores = {**scored.stored.scores, PERSONA: entry}
            scored.scores_moved = True

    def _recommend(self, scored: _Scored, now: datetime) -> None:
        """The person's top-N from their recent items and the artifact in memory (no
        storage read); a change of the items or their order is worth a write, a score
        that drifted with time alone is not."""
        if self.recommender is None:
            return
        stored = scored.stored
        top = recommend(self.recommender, stored.state.items, epoch(now))
        entry = {
            "items": [[r.item_id, round(r.score, 2)] for r in top],
            "model_version": self.recommender.version,
        }
        before = stored.scores.get(RECOMMENDATIONS) or {}
        if [i for i, _ in before.get("items", [])] == [r.item_id for r in top] and before.get(
            "model_version"
        ) == entry["model_version"]:
            return
        stored.scores = {**stored.scores, RECOMMENDATIONS: entry}
        scored.scores_moved = True

    def _forward_committed(self, scored: _Scored, changes: list[ProfileChanged]) -> None:
        """The segments step's enter/exit changes, if the profile committed them."""
        committed = scored.stored.state.recent_changes
        for change in changes:
            for segment in change.segments:
                if segment.id in committed:
                    scored.activations.append(
                        self._activation(
                            scored.stored,
                            segment.id,
                            segment.type,
                            segment.at,
                            segment_id=segment.segment_id,
                            held_out=segment.held_out,
                            variant=segment.variant,
                        )
                    )

    def _activation(
        self, stored: StoredProfile, activation_id: str, kind: str, at: datetime, **fields: Any
    ) -> Activation:
        state = stored.state
        email = state.traits.get("email")
        told = told_extras(stored.scores)
        channels = profile_influence(state.computed, self.segments.computed_traits, at)
        return Activation.model_validate(
            {
                "id": activation_id,
                "type": kind,
                "profile_id": stored.profile_id,
                "at": at,
                "user_id": state.user_id,
                "email": email if isinstance(email, str) else None,
                "traits": state.traits,
                "consent": state.consent,
                **told,
                **({"channels": channels} if channels is not None else {}),
                **fields,
            }
        )

    # --- send, then write -------------------------------------------------------------

    def _commit(self, work: list[_Scored], now: datetime, outcome: ScoringOutcome) -> None:
        messages = [(a.id, activation_json(a)) for w in work for a in w.activations]
        refused = set(self.activations.send(_unique(messages))) if messages else set()
        for w in work:
            if any(a.id in refused for a in w.activations):
                outcome.failed |= w.sequences
                continue
            outcome.activations.update(a.type for a in w.activations)
            decision = (
                profile_decision(
                    w.stored,
                    self.decisions,
                    self.segments,
                    now,
                    experiments=self.experiments.arms(w.stored.state),
                )
                if self.decisions is not None and w.scores_moved
                else None
            )
            try:
                if w.segments_moved:
                    self.profiles.save(
                        w.stored, due_at=w.due_at, at=now, size_changes=w.sizes, decision=decision
                    )
                elif w.scores_moved:
                    self.profiles.save_scores(w.stored, now, decision=decision)
                else:
                    continue
            except self.conflict:
                outcome.conflicts += 1
                outcome.conflicted |= w.sequences
                continue
            except self.refused:
                outcome.failed |= w.sequences
                continue
            outcome.profiles_written += 1
            if w.segments_moved and (changed := experiment_changes(w.sizes)):
                outcome.experiments.update(changed)
                outcome.counted.add(w.stored.profile_id)


def drift_counter(manifest: ModelManifest) -> str:
    """The counters name of a model version's daily drift histograms."""
    return f"drift#{manifest.name}#{manifest.version}"


def _unique(messages: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return list(dict(messages).items())
