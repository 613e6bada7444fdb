"""The demo's ledger: every event accounted for once, also after redone batches."""

from __future__ import annotations

from collections import Counter

from cli.demo import ledger_problems
from cli.demo_experiment import KnownLift
from cli.observe import (
    ArchiveOutcome,
    IdentityOutcome,
    Outcome,
    ProfilesOutcome,
    StreamOutcome,
)
from simulator.sender import SimulationReport

IDS = {f"m{i}" for i in range(10)}


def healthy(**changes: object) -> Outcome:
    """10 events accepted; consent forwards 8 and drops 2; every forwarded one applied."""
    forwarded = {f"m{i}" for i in range(8)}
    outcome = Outcome(
        events=StreamOutcome(10, set(IDS)),
        failed=Counter({"invalid_event": 2}),
        consent=Counter({"forwarded": 8, "personalization": 2}),
        consented=StreamOutcome(8, set(forwarded)),
        identity=IdentityOutcome(StreamOutcome(8, set(forwarded)), Counter(), {"p1", "p2"}),
        segments=Counter({"applied": 8}),
        profiles=ProfilesOutcome(events_applied=8),
        deliveries=Counter(),
    )
    for name, value in changes.items():
        setattr(outcome, name, value)
    return outcome


def sent(units: int = 12, resent: int = 0) -> SimulationReport:
    return SimulationReport(
        units_sent=units, units_resent=resent, expected_failed=Counter({"invalid_event": 2})
    )


def test_a_healthy_run_adds_up() -> None:
    assert ledger_problems(sent(), healthy()) == []


def test_copies_from_redone_batches_still_add_up() -> None:
    # A consumer killed after writing and before its checkpoint writes its batch again.
    outcome = healthy(
        consented=StreamOutcome(11, {f"m{i}" for i in range(8)}),
        identity=IdentityOutcome(StreamOutcome(13, {f"m{i}" for i in range(8)}), Counter(), set()),
    )
    assert outcome.pipeline_problems() == []


def test_an_event_applied_twice_is_caught() -> None:
    problems = healthy(profiles=ProfilesOutcome(events_applied=9)).pipeline_problems()
    assert problems == ["identity resolved 8 events but profiles applied 9"]


def test_an_event_lost_between_consent_and_identity_is_caught() -> None:
    lost = IdentityOutcome(StreamOutcome(7, {f"m{i}" for i in range(7)}), Counter(), set())
    outcome = healthy(identity=lost, profiles=ProfilesOutcome(events_applied=7))
    assert outcome.pipeline_problems() == ["identity lost 1 forwarded events and invented 0"]


def test_a_forward_consent_counted_but_never_wrote_is_caught() -> None:
    outcome = healthy(consented=StreamOutcome(7, {f"m{i}" for i in range(7)}))
    assert "consent forwarded 8 but its stream holds 7 records of 7 events" in (
        outcome.pipeline_problems()
    )


def test_anything_failed_after_consent_is_a_problem() -> None:
    outcome = healthy(
        profiles=ProfilesOutcome(events_applied=7),
        failed_downstream=Counter({"segments: RetryAttemptsExhausted": 1}),
    )
    assert outcome.pipeline_problems() == [
        "identity resolved 8 events but profiles applied 7",
        "1 failed in segments: RetryAttemptsExhausted",
    ]


def test_a_resent_request_may_have_landed_twice() -> None:
    twice = healthy(events=StreamOutcome(13, set(IDS)), consent=Counter(forwarded=8, deny=5))
    assert ledger_problems(sent(resent=3), twice) == []
    assert ledger_problems(sent(resent=0), twice) == ["12 sent but 13 in stream + 2 failed = 15"]


def test_an_event_missing_from_the_stream_is_caught_even_with_resends() -> None:
    short = healthy(events=StreamOutcome(9, IDS - {"m9"}), consent=Counter(forwarded=8, deny=1))
    assert ledger_problems(sent(resent=4), short) == [
        "12 sent (+ up to 4 resent) but 9 in stream + 2 failed = 11"
    ]


def erasure_run(identity_dropped: int = 2, segments_dropped: int = 1) -> Outcome:
    """8 forwarded; an erasure catches 2 between consent and identity and 1 between
    identity and segments; its profile had applied 2, which left with it."""
    resolved = {f"m{i}" for i in range(6)}
    return healthy(
        identity=IdentityOutcome(StreamOutcome(6, resolved), Counter(), {"p1", "p2"}),
        profiles=ProfilesOutcome(events_applied=3, erased_applied=2),
        segments=Counter({"applied": 5, "erased": segments_dropped}),
        identity_counts=Counter({"erased": identity_dropped}),
    )


def test_a_run_with_an_erasure_adds_up() -> None:
    assert erasure_run().pipeline_problems() == []


def test_an_erasure_does_not_excuse_a_lost_event() -> None:
    assert erasure_run(identity_dropped=1).pipeline_problems() == [
        "identity lost 1 forwarded events and invented 0 (1 dropped: 1 erased)"
    ]
    assert erasure_run(segments_dropped=0).pipeline_problems() == [
        "identity resolved 6 events but profiles applied 5"
    ]


def test_refusals_dropped_by_identity_add_up_and_excuse_nothing_else() -> None:
    """A refusal from someone without a profile is dropped by identity, counted."""
    run = erasure_run(identity_dropped=1)
    run.identity_counts["refused_without_profile"] = 1
    assert run.pipeline_problems() == []
    run.identity_counts["refused_without_profile"] = 0
    assert run.pipeline_problems() == [
        "identity lost 1 forwarded events and invented 0 (1 dropped: 1 erased)"
    ]


def test_the_archive_holds_each_resolved_event_once_by_message_id() -> None:
    forwarded = {f"m{i}" for i in range(8)}
    assert healthy(archive=ArchiveOutcome(8, set(forwarded))).pipeline_problems() == []
    # A copy the resolved stream holds (identity redid a batch) is a row more, not an event.
    redone = IdentityOutcome(StreamOutcome(9, set(forwarded)), Counter(), {"p1"})
    assert (
        healthy(identity=redone, archive=ArchiveOutcome(9, set(forwarded))).pipeline_problems()
        == []
    )
    assert healthy(archive=ArchiveOutcome(7, forwarded - {"m7"})).pipeline_problems() == [
        "the archive lacks 1 resolved events and has 0 others"
    ]
    assert healthy(archive=ArchiveOutcome(9, forwarded | {"x"})).pipeline_problems() == [
        "the archive lacks 0 resolved events and has 1 others"
    ]
    # More copies than the resolved stream holds: a writer that wrote a batch twice.
    assert healthy(archive=ArchiveOutcome(9, set(forwarded))).pipeline_problems() == [
        "the archive holds 9 rows of 8 events, more copies than the 0 the resolved stream holds"
    ]


def test_an_erasure_may_take_rows_from_the_archive() -> None:
    kept = {f"m{i}" for i in range(6)}
    assert healthy(archive=ArchiveOutcome(6, kept, erasures=1)).pipeline_problems() == []


def test_the_journeys_customers_orders_are_in_the_ledger() -> None:
    # The simulator sent 10; two orders the local journey platform's customers sent
    # back are the rest of what landed (12 = 10 in the stream + 2 failed).
    def lift(sent: int, unsure: int = 0) -> KnownLift:
        return KnownLift("cart_recovery", {"reminder": 0.1}, [], sent, unsure, report=None)

    assert ledger_problems(sent(10), healthy()) == ["10 sent but 10 in stream + 2 failed = 12"]
    assert ledger_problems(sent(10), healthy(), lift(2)) == []
    # A post without an answer may have landed; without it the count is off.
    assert ledger_problems(sent(10), healthy(), lift(1, unsure=1)) == []
    assert ledger_problems(sent(10), healthy(), lift(1)) == [
        "11 sent but 10 in stream + 2 failed = 12"
    ]


def test_the_known_lift_is_printed_beside_the_estimate() -> None:
    decisions = [
        {"person": "a", "arm": "reminder", "converted": False},
        {"person": "b", "arm": "free_shipping", "converted": True},
    ]
    report = {
        "arms": [{"name": "reminder", "exposures": 2}, {"name": "free_shipping", "exposures": 2}],
        "lift": {"estimate": 0.25, "ci_low": 0.05, "ci_high": 0.45, "enough_data": True},
    }
    lift = KnownLift(
        "cart_recovery", {"reminder": 0.1, "free_shipping": 0.3}, decisions, 1, 0, report
    )
    acted, measured = lift.lines()
    assert "reminder 0/1 ordered (true rate 10%)" in acted
    assert "free_shipping 1/1 ordered (true rate 30%)" in acted
    # Two of the four exposed people could be messaged: half the true lift is expected.
    assert measured.endswith(
        "free_shipping - reminder +25.0 points [+5.0, +45.0]; "
        "expected +10.0 (+20.0 among the messaged, 2 of 4 exposed)"
    )
