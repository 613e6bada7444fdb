"""Profile export rows: consent decides what a row holds; erased and merged people
have no row at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from functions.exports.parquet import COLUMNS
from functions.exports.profile_rows import ExportPolicy, profile_row
from functions.shared.segment_definitions import SegmentsConfig
from tests.unit.exports.helpers import CATEGORIES, NOW, identity, stored

CONFIG = SegmentsConfig()
POLICY = ExportPolicy(("personalization",))
PERSONAL = ("identifiers", "user_id", "traits", "computed", "segments", "segment_ids")
PERSONAL += ("scores", "persona", "first_seen", "last_seen")


def test_a_consenting_profile_is_exported_whole() -> None:
    profile = stored(
        "p1",
        traits={"email": "ana@example.org", "plan": "gold"},
        segments={"vip": False, "cart_abandoners": True},
        scores={
            "churn": {"score": 0.25, "band": "low", "model_version": "3"},
            "persona": {"name": "Bargain hunter", "id": 2, "model_version": "1"},
        },
    )
    row = profile_row(profile, identity("p1", email=["ana@example.org"]), CONFIG, POLICY, NOW)
    assert row is not None
    assert set(row) <= set(COLUMNS)
    assert row["consented"] is True
    assert json.loads(row["traits"]) == {"email": "ana@example.org", "plan": "gold"}
    assert json.loads(row["identifiers"]) == {"email": ["ana@example.org"]}
    assert row["segment_ids"] == ["cart_abandoners", "vip"]
    assert json.loads(row["segments"])["cart_abandoners"] == {
        "since": "2026-12-01T00:00:00Z",
        "held_out": True,
    }
    # The persona has its own column; the models' scores stay in `scores`.
    assert row["persona"] == "Bargain hunter"
    assert set(json.loads(row["scores"])) == {"churn"}
    assert json.loads(row["consent"]) == {
        "advertising": True,
        "analytics": False,
        "necessary": False,
        "personalization": True,
    }
    assert row["profile_version"] == 3


@pytest.mark.parametrize(
    "granted", [(), ("advertising",), ("analytics", "necessary"), ("advertising", "analytics")]
)
def test_without_the_required_consent_a_row_holds_nothing_about_the_person(
    granted: tuple[str, ...],
) -> None:
    profile = stored(
        "p2", granted=granted, traits={"email": "bo@example.org"}, segments={"vip": False}
    )
    row = profile_row(profile, identity("p2", email=["bo@example.org"]), CONFIG, POLICY, NOW)
    assert row is not None
    assert row["consented"] is False
    assert set(row) == {"profile_id", "exported_at", "consented", "consent", "consent_at"}
    assert "bo@example.org" not in json.dumps(row, default=str)
    assert json.loads(row["consent"])["personalization"] is False


def test_every_required_category_must_be_granted() -> None:
    policy = ExportPolicy(("personalization", "analytics"))
    only_one = stored("p3", granted=("personalization",))
    both = stored("p4", granted=("personalization", "analytics"))
    assert profile_row(only_one, identity("p3"), CONFIG, policy, NOW)["consented"] is False  # type: ignore[index]
    assert profile_row(both, identity("p4"), CONFIG, policy, NOW)["consented"] is True  # type: ignore[index]


def test_a_profile_with_no_consent_known_is_withheld() -> None:
    profile = stored("p5")
    profile.state.consent = {}
    row = profile_row(profile, identity("p5"), CONFIG, POLICY, NOW)
    assert row is not None and row["consented"] is False


@pytest.mark.parametrize(
    ("profile", "known"),
    [
        (stored("e1", erased_at=datetime(2026, 12, 2, tzinfo=UTC)), identity("e1")),
        (stored("t1", merged_into="p9"), identity("t1")),
        (stored("n1", version=0), identity("n1")),
        # The graph lost it (erased while the export ran) or merged it away.
        (stored("g1"), None),
        (stored("g2"), identity("g2", merged_into="p9")),
    ],
    ids=["erased", "tombstone", "never-stored", "gone-from-graph", "merged-in-graph"],
)
def test_erased_and_merged_people_have_no_row(profile, known) -> None:  # type: ignore[no-untyped-def]
    assert profile_row(profile, known, CONFIG, POLICY, NOW) is None


def test_a_policy_names_known_categories_only() -> None:
    assert ExportPolicy.checked((" Advertising ",), CATEGORIES).required == ("advertising",)
    with pytest.raises(ValueError, match="unknown consent categories marketing"):
        ExportPolicy.checked(("marketing",), CATEGORIES)
    with pytest.raises(ValueError, match="at least one"):
        ExportPolicy(())


def test_consent_categories_are_matched_lower_case() -> None:
    assert POLICY.allows({"Personalization": True})
    assert not POLICY.allows({"personalization": False})
    assert not POLICY.allows({"personalization": "yes"})  # type: ignore[dict-item]
