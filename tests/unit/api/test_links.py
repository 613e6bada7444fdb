"""Reviewing suggested links: the API records the decision and sends a link to identity."""

from __future__ import annotations

import pytest

from functions.api.links import Links
from functions.shared.commands import LinkProfiles


class MemorySuggestions:
    def __init__(self) -> None:
        self.items = {
            ("p1", "p2"): {
                "a": "p1",
                "b": "p2",
                "score": "0.8",
                "status": "open",
                "at": "2026-01-01T00:00:00+00:00",
                "pk": "x",
                "sk": "y",
            }
        }

    def suggestions(self):
        return list(self.items.values())

    def set_suggestion(self, a, b, status):
        key = tuple(sorted((a, b)))
        if key not in self.items:
            return False
        self.items[key]["status"] = status
        return True


class MemoryStream:
    def __init__(self, refuse: bool = False) -> None:
        self.records = []
        self.refuse = refuse

    def put(self, records):
        if self.refuse:
            return list(range(len(records)))
        self.records.extend(records)
        return []


def test_open_lists_without_storage_keys():
    assert Links(MemorySuggestions(), MemoryStream()).open() == [
        {"a": "p1", "b": "p2", "score": "0.8", "status": "open", "at": "2026-01-01T00:00:00+00:00"}
    ]


def test_link_records_the_decision_and_sends_a_command_keyed_by_a_profile():
    store, stream = MemorySuggestions(), MemoryStream()
    assert Links(store, stream).decide("p2", "p1", "link") == {
        "a": "p2",
        "b": "p1",
        "status": "linked",
    }
    assert store.items[("p1", "p2")]["status"] == "linked"
    [record] = stream.records
    command = LinkProfiles.model_validate_json(record.data)
    assert (command.a, command.b, record.partition_key) == ("p2", "p1", "p2")


def test_reject_sends_nothing():
    store, stream = MemorySuggestions(), MemoryStream()
    assert Links(store, stream).decide("p1", "p2", "reject")["status"] == "rejected"
    assert stream.records == []


def test_unknown_pair_and_unknown_decision():
    links = Links(MemorySuggestions(), MemoryStream())
    assert links.decide("p1", "p9", "link") is None
    with pytest.raises(ValueError, match="link or reject"):
        links.decide("p1", "p2", "merge")


def test_a_command_that_cannot_be_written_is_an_error_to_retry():
    with pytest.raises(RuntimeError, match="try again"):
        Links(MemorySuggestions(), MemoryStream(refuse=True)).decide("p1", "p2", "link")
