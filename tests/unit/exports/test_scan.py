"""Pages of a parallel Scan's segments, merged: every page once, errors raised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.exports.scan import parallel_pages


def segment_pages(pages_per_segment: int) -> object:
    def pages(segment: int, total: int) -> Iterator[list[str]]:
        for n in range(pages_per_segment):
            yield [f"{segment}/{total}/{n}"]

    return pages


@pytest.mark.parametrize("segments", [1, 2, 7])
def test_every_page_of_every_segment_comes_out_once(segments: int) -> None:
    out = list(parallel_pages(segment_pages(25), segments))  # type: ignore[arg-type]
    expected = {f"{s}/{segments}/{n}" for s in range(segments) for n in range(25)}
    assert sorted(p[0] for p in out) == sorted(expected)


def test_a_segments_error_reaches_the_reader() -> None:
    def pages(segment: int, total: int) -> Iterator[list[int]]:
        yield [segment]
        if segment == 1:
            raise RuntimeError("throttled for good")
        yield from ([segment] for _ in range(100))

    with pytest.raises(RuntimeError, match="throttled for good"):
        list(parallel_pages(pages, 3))


@pytest.mark.parametrize("segments", [0, 65])
def test_segments_are_bounded(segments: int) -> None:
    with pytest.raises(ValueError, match="segments"):
        list(parallel_pages(segment_pages(1), segments))  # type: ignore[arg-type]
