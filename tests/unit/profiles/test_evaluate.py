"""CEL segments: enter/exit, errors, holdouts, and when to look again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from functions.profiles.apply import apply_event
from functions.profiles.evaluate import (
    CompiledSegments,
    activation,
    holdout_bucket,
    is_held_out,
)
from functions.profiles.state import Membership, ProfileState
from functions.shared.events import CanonicalEvent
from functions.shared.segment_definitions import Segment, SegmentsConfig

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CONFIG = SegmentsConfig()
SEGMENTS = CompiledSegments(CONFIG)
_n = iter(range(10**9))


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def event(name: str, at: datetime, **properties) -> CanonicalEvent:
    return CanonicalEvent(
        message_id=f"m{next(_n)}",
        type="track",
        event=name,
        anonymous_id="a1",
        properties=properties,
        source={"name": "web", "protocol": "segment"},
        timestamp=at,
        received_at=at,
    )


def step(state: ProfileState, now: datetime, *events: CanonicalEvent, **extra):
    """Apply events, evaluate, keep the memberships: what the handler will do."""
    for e in events:
        apply_event(state, e, CONFIG, now)
    result = SEGMENTS.evaluate_profile("p1", state, now, **extra)
    state.memberships = result.memberships
    return result


def entered(result) -> set[str]:
    return {c.segment_id for c in result.changes if c.type == "segment.entered"}


def exited(result) -> set[str]:
    return {c.segment_id for c in result.changes if c.type == "segment.exited"}


def test_cart_abandonment_enters_by_time_and_exits_on_purchase():
    state = ProfileState()
    first = step(state, hours(0), event("Product Added", hours(0), product_id="x", price=9))
    assert "cart_abandoners" not in first.memberships
    assert entered(first) == {"stage_awareness"}
    later = step(state, hours(24))
    assert entered(later) == {"cart_abandoners"}
    assert later.memberships["cart_abandoners"].since == hours(24)
    bought = step(state, hours(25), event("Order Completed", hours(25), total=9))
    assert exited(bought) == {"cart_abandoners", "stage_awareness"}
    assert entered(bought) == {"stage_purchase"}


def test_frequent_viewers_need_more_than_three_views_in_a_week():
    state = ProfileState()
    views = [event("Product Viewed", hours(h)) for h in range(4)]
    assert "frequent_viewers" not in step(state, hours(3), *views[:3]).memberships
    assert entered(step(state, hours(4), views[3])) >= {"frequent_viewers"}
    assert exited(step(state, hours(24 * 7))) >= {"frequent_viewers"}


def test_lapsed_big_spender_after_90_days():
    state = ProfileState()
    step(state, hours(0), event("Order Completed", hours(0), total=800))
    assert "lapsed_big_spenders" not in state.memberships
    assert entered(step(state, hours(24 * 90))) == {"lapsed_big_spenders"}


def test_churn_risk_reads_scores_and_tolerates_their_absence():
    state = ProfileState()
    assert step(state, T0).errors == {}
    result = step(state, T0, scores={"churn": {"probability": 0.9, "model_version": "3"}})
    assert "churn_risk" in entered(result)


def test_evaluation_counts_and_errors_are_reported_not_raised():
    config = SegmentsConfig(
        segments=(
            Segment(id="needs_has", condition="profile.traits.plan == 'pro'"),
            Segment(id="not_bool", condition="profile.id"),
            Segment(id="fine", condition="true"),
        )
    )
    result = CompiledSegments(config).evaluate_profile("p1", ProfileState(), T0)
    assert result.evaluations == 3
    assert set(result.errors) == {"needs_has", "not_bool"}
    assert set(result.memberships) == {"fine"}


def test_members_keep_since_and_unconfigured_segments_are_left_alone():
    current = {
        "stage_awareness": Membership(since=T0),
        "retired": Membership(since=T0),
    }
    state = ProfileState(memberships=dict(current))
    variables = activation("p1", state, CONFIG, hours(5))
    result = SEGMENTS.evaluate("p1", variables, current, hours(5))
    assert result.memberships["stage_awareness"].since == T0
    assert "retired" in result.memberships
    assert not result.changes


def test_activation_shape():
    state = ProfileState(traits={"plan": "pro"})
    profile = activation("p1", state, CONFIG, T0, consent={"personalization": True})["profile"]
    assert set(profile) == {"id", "traits", "computed", "scores", "consent", "segments", "persona"}
    assert profile["persona"] == ""  # no persona before the first scoring
    assert profile["computed"]["lifecycle_stage"] == "awareness"


def test_segments_can_read_traits_consent_and_other_segments():
    config = SegmentsConfig(
        segments=(
            Segment(
                id="vip",
                condition='profile.traits.plan == "pro" && profile.consent.personalization',
            ),
            Segment(id="was_vip", condition='"vip" in profile.segments'),
        )
    )
    compiled = CompiledSegments(config)
    state = ProfileState(traits={"plan": "pro"})
    first = compiled.evaluate_profile("p", state, T0, consent={"personalization": True})
    assert set(first.memberships) == {"vip"}  # segments are read as they were before
    state.memberships = first.memberships
    second = compiled.evaluate_profile("p", state, T0, consent={"personalization": True})
    assert set(second.memberships) == {"vip", "was_vip"}


# ---------------------------------------------------------------- holdouts


def test_held_out_members_are_members_flagged():
    config = SegmentsConfig(segments=(Segment(id="all", condition="true", holdout_percent=50),))
    compiled = CompiledSegments(config)
    flags = {
        pid: compiled.evaluate_profile(pid, ProfileState(), T0).memberships["all"].held_out
        for pid in (f"p{i}" for i in range(200))
    }
    assert 60 < sum(flags.values()) < 140
    change = compiled.evaluate_profile("p7", ProfileState(), T0).changes[0]
    assert change.held_out == flags["p7"]


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_holdout_assignment_is_stable(segment_id, profile_id):
    bucket = holdout_bucket(segment_id, profile_id)
    assert 0 <= bucket < 100
    assert holdout_bucket(segment_id, profile_id) == bucket


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 50), st.text(alphabet="abcdefgh_", min_size=1, max_size=12))
def test_holdout_fraction_is_close_to_the_percent(percent, salt):
    segment = Segment(id="s" + salt.replace("_", "x"), condition="true", holdout_percent=percent)
    held = sum(is_held_out(segment, f"profile-{i}") for i in range(10_000))
    assert abs(held / 10_000 - percent / 100) < 0.02


def test_holdout_differs_between_segments():
    a = [holdout_bucket("a", f"p{i}") for i in range(1000)]
    b = [holdout_bucket("b", f"p{i}") for i in range(1000)]
    assert a != b


# ---------------------------------------------------------------- when to look again


def test_next_recheck_is_the_moment_the_cart_is_abandoned():
    state = ProfileState()
    step(state, hours(1), event("Product Added", hours(1), product_id="x"))
    assert SEGMENTS.next_recheck("p1", state, hours(1)) == hours(25)


def test_next_recheck_skips_moments_that_change_no_membership():
    state = ProfileState()
    # Views spread over hours: each leaving the 7-day window changes a count, but
    # only dropping to three views (from four) changes frequent_viewers.
    views = [event("Product Viewed", hours(h)) for h in (0, 1, 2, 3, 4)]
    step(state, hours(4), *views)
    assert "frequent_viewers" in state.memberships
    assert SEGMENTS.next_recheck("p1", state, hours(4)) == hours(24 * 7 + 1)


def test_next_recheck_for_90_days_without_a_purchase():
    state = ProfileState()
    step(state, hours(0), event("Order Completed", hours(0), total=600))
    moment = SEGMENTS.next_recheck("p1", state, hours(0))
    # stage_retention and friends do not change first; the 7-day RFM recency
    # tick is no segment's business, so the first membership change is at 90 days.
    assert moment == hours(24 * 90)


def test_no_recheck_without_time_dependence():
    state = ProfileState()
    step(state, T0, event("Signed Up", T0))
    assert SEGMENTS.next_recheck("p1", state, T0) is None
