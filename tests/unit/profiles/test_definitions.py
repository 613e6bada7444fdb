"""The `segments` config section: kinds, CEL checked at load, defaults, a YAML round trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from functions.shared.segment_definitions import (
    CartTrait,
    CountTrait,
    LifecycleTrait,
    RfmTrait,
    Segment,
    SegmentsConfig,
    window_seconds,
)

SNIPPET = """
segments:
  buckets: {hourly_up_to: 7d}
  computed_traits:
    - {id: views_7d, kind: count, event: Product Viewed, window: 7d}
    - {id: shoe_views, kind: count, event: Product Viewed, where: {category: shoes}}
    - {id: spend_90d, kind: sum, event: Order Completed, property: total, window: 90d}
    - {id: aov, kind: average, event: Order Completed, property: total}
    - {id: last_order, kind: last_seen, event: Order Completed, within: 90d}
    - {id: first_page, kind: first_seen, type: page}
    - {id: top_category, kind: most_frequent, event: Product Viewed, property: category}
    - {id: categories, kind: unique_list, event: Product Viewed, property: category, max_values: 5}
    - {id: cart, kind: cart, abandoned_after: 24h}
    - {id: rfm, kind: rfm, window: 365d, monetary: [50, 100, 200, 400]}
    - id: stage
      kind: lifecycle
      stages:
        - {name: awareness}
        - {name: consideration, trait: views_7d}
        - {name: purchase, trait: spend_90d, at_least: 0.01}
  segments:
    - id: cart_abandoners
      description: added to cart, no purchase within 24 h
      condition: profile.computed.cart.abandoned
      holdout_percent: 10
    - id: lapsed
      condition: >-
        has(profile.computed.aov) && profile.computed.aov > 500.0
        && !has(profile.computed.last_order)
"""


def load(text: str = SNIPPET) -> SegmentsConfig:
    return SegmentsConfig.model_validate(yaml.safe_load(text)["segments"])


def test_yaml_snippet_round_trips():
    config = load()
    assert [t.kind for t in config.computed_traits] == [
        "count", "count", "sum", "average", "last_seen", "first_seen",
        "most_frequent", "unique_list", "cart", "rfm", "lifecycle",
    ]  # fmt: skip
    assert isinstance(config.trait("cart"), CartTrait)
    assert config.segments[0].holdout_percent == 10
    again = SegmentsConfig.model_validate(config.model_dump())
    assert again == config


def test_defaults_cover_the_issue_examples():
    config = SegmentsConfig()
    ids = {s.id for s in config.segments}
    assert {"cart_abandoners", "frequent_viewers", "lapsed_big_spenders", "churn_risk"} <= ids
    assert {f"stage_{s}" for s in ("awareness", "consideration", "purchase", "retention")} <= ids
    assert isinstance(config.trait("rfm"), RfmTrait)
    assert isinstance(config.trait("lifecycle_stage"), LifecycleTrait)


def test_windows_parse():
    assert window_seconds("24h") == 86400
    assert window_seconds("90d") == 90 * 86400
    for bad in ("0h", "1w", "h", "-1d", "1.5d"):
        with pytest.raises(ValueError, match="not a window"):
            window_seconds(bad)


def test_bucket_size_follows_the_window():
    config = SegmentsConfig()
    assert config.buckets.size(window_seconds("24h")) == 3600
    assert config.buckets.size(window_seconds("7d")) == 3600
    assert config.buckets.size(window_seconds("8d")) == 86400


def test_long_windows_must_be_whole_days():
    with pytest.raises(ValidationError, match="must be whole days"):
        SegmentsConfig(computed_traits=(CountTrait(id="x", window="200h"),), segments=())


def test_cel_syntax_error_names_the_segment():
    with pytest.raises(ValidationError) as caught:
        load(
            SNIPPET.replace("profile.computed.cart.abandoned", "profile.computed.cart.abandoned &&")
        )
    (error,) = caught.value.errors()
    assert error["loc"] == ("segments", 0, "condition")
    assert "segment 'cart_abandoners'" in error["msg"]
    assert "Syntax error" in error["msg"]


def test_conditions_may_only_use_profile():
    with pytest.raises(ValidationError, match="only use `profile`, not now"):
        Segment(id="x", condition="now > profile.last_seen")
    # Names bound by macros are not inputs.
    Segment(id="ok", condition='profile.computed.categories.exists(c, c == "shoes")')


def test_unknown_computed_trait_is_named():
    with pytest.raises(ValidationError, match="segment 'lapsed': unknown computed trait aov_typo"):
        load(SNIPPET.replace("has(profile.computed.aov)", "has(profile.computed.aov_typo)"))


def test_duplicate_ids_fail():
    with pytest.raises(ValidationError, match="duplicate segment id: a"):
        SegmentsConfig(segments=(Segment(id="a", condition="true"),) * 2)
    with pytest.raises(ValidationError, match="duplicate computed trait id: x"):
        SegmentsConfig(computed_traits=(CountTrait(id="x"),) * 2, segments=())


def test_unknown_kind_and_extra_fields_fail():
    with pytest.raises(ValidationError):
        SegmentsConfig.model_validate({"computed_traits": [{"id": "x", "kind": "median"}]})
    with pytest.raises(ValidationError):
        SegmentsConfig.model_validate(
            {"computed_traits": [{"id": "x", "kind": "count", "windw": "1d"}]}
        )


def test_ids_are_cel_identifiers():
    with pytest.raises(ValidationError, match="lower-case letters"):
        Segment(id="Cart-Abandoners", condition="true")


def test_lifecycle_stages_need_count_or_sum_traits():
    bad = SNIPPET.replace("trait: views_7d", "trait: top_category")
    with pytest.raises(ValidationError, match="stage 'consideration' needs a count or sum"):
        load(bad)
    with pytest.raises(ValidationError, match="first stage is the default"):
        LifecycleTrait(id="l", stages=({"name": "a", "trait": "x"}, {"name": "b", "trait": "y"}))


def test_rfm_thresholds_increase():
    with pytest.raises(ValidationError, match="four strictly increasing"):
        RfmTrait(id="r", frequency=(1, 1, 2, 3))


def test_holdout_is_capped_at_half():
    with pytest.raises(ValidationError):
        Segment(id="x", condition="true", holdout_percent=51)


def test_docs_examples_are_valid():
    """Every `segments:` YAML block in docs/segments.md parses: the docs cannot rot."""
    text = (Path(__file__).parents[3] / "docs" / "segments.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if b.startswith("segments:")]
    assert blocks
    for block in blocks:
        load(block)


def test_one_field_wires_it_into_the_config_with_line_numbers():
    """What `segments: SegmentsConfig` on BeaconConfig gives parse_config's messages."""
    from pydantic import Field

    from functions.shared import config as shared

    class WithSegments(shared.BeaconConfig):
        segments: SegmentsConfig = Field(default_factory=SegmentsConfig)

    text = "sources:\n  - {name: web, write_key_secret: k}\n" + SNIPPET.replace(
        "condition: profile.computed.cart.abandoned", "condition: profile.computed.cart.abandoned)"
    )
    with pytest.raises(ValidationError) as caught:
        WithSegments.model_validate(yaml.safe_load(text))
    lines = shared._line_index(yaml.compose(text, Loader=yaml.SafeLoader))
    (error,) = caught.value.errors()
    loc = tuple(error["loc"])
    where = f"line {shared._line_for(lines, loc)}: {shared._dotted(loc)}"
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "abandoned)" in row)
    assert where == f"line {line}: segments.segments[0].condition"
    assert error["msg"].startswith("Value error, segment 'cart_abandoners': ")
