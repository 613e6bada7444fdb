"""The recommender's pure logic: co-occurrence with damping, content, fallback, top-N."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.profiles.interactions import Interaction, ItemSeen
from functions.scoring.recommend import (
    RecommenderArtifact,
    RecommenderMismatch,
    load_recommender,
    recommend,
)
from models.catalog import CatalogError, ItemInfo, load_catalog, merge
from models.recommend import (
    Person,
    Touch,
    build_artifact,
    content_neighbours,
    hybrid,
    item_to_item,
    train_and_write,
)

DAY = 86_400


def person(pid: str, *visits: tuple[int, list[tuple[str, str]]]) -> Person:
    """Visits: (day, [(item, kind)]) with a minute between events of a visit."""
    touches = [
        Touch(day * DAY + minute * 60, Interaction(item, kind, None))
        for day, events in visits
        for minute, (item, kind) in enumerate(events)
    ]
    return Person(pid, touches)


def test_items_bought_together_are_neighbours_and_best_sellers_are_damped() -> None:
    # "tent" and "footprint" go together; "socks" are in every basket (a best seller).
    people = [
        person(f"p{n}", (1, [("tent", "order"), ("footprint", "order"), ("socks", "order")]))
        for n in range(5)
    ] + [person(f"q{n}", (2, [("socks", "order"), (f"other{n}", "view")])) for n in range(20)]
    near = dict(item_to_item(people, until=10 * DAY, damping=0.5)["tent"])
    assert near["footprint"] > near["socks"] > 0
    damped = dict(item_to_item(people, until=10 * DAY, damping=0.9)["tent"])
    undamped = dict(item_to_item(people, until=10 * DAY, damping=0.0)["tent"])
    assert damped["socks"] / damped["footprint"] < undamped["socks"] / undamped["footprint"]


def test_no_pair_from_separate_visits_nor_from_the_future() -> None:
    people = [
        person(
            "p", (1, [("a", "view")]), (3, [("b", "view")]), (20, [("a", "view"), ("c", "view")])
        )
    ]
    near = item_to_item(people, until=10 * DAY)
    assert "a" not in near and "b" not in near  # different visits, and the later one is after


def test_content_similarity_prefers_same_brand_and_close_price() -> None:
    catalog = {
        "a": ItemInfo("a", "Camping", "Nord", 100.0),
        "b": ItemInfo("b", "Camping", "Nord", 110.0),
        "c": ItemInfo("c", "Camping", "Ridge", 100.0),
        "d": ItemInfo("d", "Camping", "Ridge", 900.0),
        "e": ItemInfo("e", "Shoes", "Nord", 100.0),
    }
    near = [item for item, _ in content_neighbours(catalog)["a"]]
    assert near == ["b", "c", "d"]  # other categories are never content neighbours


def test_hybrid_leans_on_content_for_items_with_little_history() -> None:
    cf = {"new": [("x", 1.0)], "old": [("x", 1.0)]}
    content = {"new": [("y", 1.0)], "old": [("y", 1.0)]}
    blended = hybrid(cf, content, {"new": 1, "old": 500})
    assert blended["new"][0][0] == "y" and blended["old"][0][0] == "x"


ARTIFACT = RecommenderArtifact(
    version="t",
    neighbours={"tent": (("footprint", 0.9), ("stakes", 0.5), ("stove", 0.2))},
    categories={"tent": "Camping", "footprint": "Camping", "boots": "Shoes", "stove": "Camping"},
    popular={"Camping": ("stove", "tent", "footprint"), "Shoes": ("boots",)},
    popular_all=("boots", "stove", "tent"),
)


def test_top_n_from_neighbours_excludes_what_was_bought() -> None:
    items = {"tent": ItemSeen(5.0, 100, bought=100, category="Camping")}
    top = recommend(ARTIFACT, items, now=200, n=3)
    ids = [r.item_id for r in top]
    assert "tent" not in ids
    assert ids[0] == "footprint" and top[0].score == 1.0
    assert len(ids) == 3 and len(set(ids)) == 3


def test_a_bought_item_is_never_recommended_even_by_popularity() -> None:
    items = {"footprint": ItemSeen(5.0, 100, bought=100, category="Camping")}
    ids = [r.item_id for r in recommend(ARTIFACT, items, now=200, n=10)]
    assert "footprint" not in ids
    assert ids[:2] == ["stove", "tent"]  # the person's category first, then the shop's


def test_without_history_popular_items_fill_in() -> None:
    assert [r.item_id for r in recommend(ARTIFACT, {}, now=0, n=2)] == ["boots", "stove"]


def test_the_artifact_is_byte_reproducible_and_checked(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    people = [
        person(f"p{n}", (1, [("tent", "view"), ("footprint", "cart")]), (70, [("tent", "order")]))
        for n in range(3)
    ]
    catalog = {k: ItemInfo(k, "Camping", "Nord", 10.0) for k in ("tent", "footprint")}
    window = (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 4, 1, tzinfo=UTC))
    paths = [
        train_and_write(
            people, catalog, window, tmp_path / d, 7, window[1], "t", log=lambda _: None
        )
        for d in ("one", "two")
    ]
    assert paths[0][0].read_bytes() == paths[1][0].read_bytes()
    assert paths[0][1].read_bytes() == paths[1][1].read_bytes()
    loaded = load_recommender(paths[0][1])
    assert loaded.neighbours["tent"][0][0] == "footprint"
    assert json.loads(paths[0][1].read_text())["kind"] == "recommender"
    paths[0][0].write_bytes(paths[0][0].read_bytes().replace(b"footprint", b"footprinT"))
    with pytest.raises(RecommenderMismatch, match="SHA-256"):
        load_recommender(paths[0][1])


def test_build_artifact_methods() -> None:
    people = [person("p", (1, [("a", "order"), ("b", "order")]))]
    catalog = {k: ItemInfo(k, "C") for k in ("a", "b")}
    assert build_artifact(people, catalog, 10 * DAY, "popularity")["popular"] == {}
    assert build_artifact(people, catalog, 10 * DAY, "item_to_item")["neighbours"]["a"][0][0] == "b"


def test_catalog_files_load_and_bad_rows_name_their_row(tmp_path: Path) -> None:
    good = tmp_path / "items.csv"
    good.write_text("item_id,category,brand,price,name\nsku-1,Camping,Nord,19.5,Tent\n")
    assert load_catalog(good)["sku-1"] == ItemInfo("sku-1", "Camping", "Nord", 19.5, "Tent")
    lines = tmp_path / "items.jsonl"
    lines.write_text('{"item_id": "a", "category": "C"}\n\n{"item_id": "b c", "category": "C"}\n')
    with pytest.raises(CatalogError, match="row 3: item_id"):
        load_catalog(lines)
    bad_price = tmp_path / "price.csv"
    bad_price.write_text("item_id,category,price\nx,C,1\ny,C,-3\n")
    with pytest.raises(CatalogError, match="row 3: price"):
        load_catalog(bad_price)
    no_category = tmp_path / "cat.csv"
    no_category.write_text("item_id,category\nx,\n")
    with pytest.raises(CatalogError, match="row 2: category"):
        load_catalog(no_category)
    learned = {"x": ItemInfo("x", "Old", "B", 5.0)}
    assert merge(learned, {"x": ItemInfo("x", "New")})["x"] == ItemInfo("x", "New", "B", 5.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=80), st.text(max_size=80), st.text(max_size=30)), max_size=8
    )
)
def test_a_hostile_catalog_loads_valid_rows_or_names_the_bad_one(
    rows: list[tuple[str, str, str]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "items.jsonl"
        path.write_text(
            "\n".join(json.dumps({"item_id": i, "category": c, "price": p}) for i, c, p in rows)
        )
        try:
            loaded = load_catalog(path)
        except CatalogError as error:
            assert " row " in str(error)
            return
        for key, info in loaded.items():
            assert len(key) <= 64 and info.category and len(info.category) <= 100
            assert info.price is None or 0 <= info.price <= 1e9
