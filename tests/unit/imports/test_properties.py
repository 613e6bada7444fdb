"""Whatever a file holds, the import never crashes and accounts for every row."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.imports.readers import ImportFileError

from .helpers import Receiver, run

HEADERS = {
    "contacts": ["Customer ID", "Email", "Phone", "First Name", "Created at", "Opt In"],
    "orders": ["Order ID", "Email", "Created at", "Total", "SKU", "Quantity", "Price"],
    "catalog": ["SKU", "Category", "Brand", "Price", "Title"],
}
cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "a@b.io", "A@B.IO ", "+1 650 253 0000", "2021-02-03", "1e400",
                     "-3", "NaN", "9" * 40, "#1", "x,y", '"q"', "\n", "ab\x00c"]),
    st.integers(-10**12, 10**13).map(str),
)  # fmt: skip
kinds = st.sampled_from(sorted(HEADERS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=kinds, rows=st.lists(st.lists(cell, min_size=0, max_size=9), max_size=25))
def test_any_csv_rows_are_each_accepted_rejected_or_blank(kind: str, rows: list[list[str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(HEADERS[kind])
    writer.writerows(rows)
    _accounted(text.getvalue().encode("utf-8"), kind, "csv")


@settings(max_examples=100, deadline=None)
@given(kind=kinds, data=st.binary(max_size=400))
def test_any_bytes_after_a_header_are_accounted_for(kind: str, data: bytes) -> None:
    header = ",".join(HEADERS[kind]).encode() + b"\n"
    _accounted(header + data, kind, "csv")


json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None)
@given(
    kind=kinds,
    objects=st.lists(
        st.dictionaries(
            st.sampled_from(
                [*HEADERS["contacts"], *HEADERS["orders"], *HEADERS["catalog"], "products"]
            ),
            json_value,
            max_size=7,
        ),
        max_size=15,
    ),
)
def test_any_json_lines_are_accounted_for(kind: str, objects: list[dict]) -> None:
    lines = [json.dumps(o, allow_nan=True) for o in objects]
    _accounted(("\n".join(lines) + "\n").encode(), kind, "jsonl")


def _accounted(data: bytes, kind: str, fmt: str) -> None:
    receiver = Receiver()
    try:
        result = run(data, kind, fmt, receiver=receiver, batch_size=4)
    except ImportFileError:
        return  # the header itself is unreadable: the whole file is refused, clearly
    summary = result.summary
    assert summary.adds_up(), summary
    rows = [r.row for r in result.rejects]
    assert len(rows) == len(set(rows)), "a row rejected twice"
    assert all(1 <= row <= summary.last_row for row in rows)
    assert summary.calls == len(receiver.calls)
    assert len({c["messageId"] for c in receiver.calls if "messageId" in c}) == len(
        [c for c in receiver.calls if "messageId" in c]
    )
    for call in receiver.calls:
        json.dumps(call, allow_nan=False)  # what is sent is valid JSON: no NaN, no Infinity
