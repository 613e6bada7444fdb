"""Re-importing sends the same message ids; an interrupted import resumes from its
checkpoint without losing or adding a call."""

from __future__ import annotations

import pytest

from functions.imports.run import State

from .helpers import Interrupted, Receiver, run


def contacts(n: int, changed: int | None = None) -> bytes:
    lines = ["Customer ID,Email,First Name,Created at"]
    for i in range(n):
        name = "Changed" if i == changed else f"Name{i}"
        lines.append(f"U{i},person{i}@example.org,{name},2020-01-{1 + i % 28:02d}")
        if i % 7 == 3:
            lines.append("")  # blank lines between, so rows and calls differ
        if i % 11 == 5:
            lines.append(f",bad{i},x,2020-01-01")  # a reject between
    return ("\n".join(lines) + "\n").encode()


def test_the_same_file_gives_the_same_message_ids_and_a_changed_row_a_new_one() -> None:
    first, again, changed = Receiver(), Receiver(), Receiver()
    run(contacts(50), "contacts", receiver=first)
    run(contacts(50), "contacts", receiver=again)
    run(contacts(50, changed=7), "contacts", receiver=changed)
    ids = [c["messageId"] for c in first.calls]
    assert len(set(ids)) == 50
    assert ids == [c["messageId"] for c in again.calls]
    differing = [a for a, b in zip(first.calls, changed.calls, strict=True) if a != b]
    assert [c["userId"] for c in differing] == ["U7"]
    assert differing[0]["messageId"] not in {c["messageId"] for c in changed.calls}


@pytest.mark.parametrize("fail_after", [0, 1, 3, 6])
def test_an_interrupted_import_resumes_without_loss_or_duplicates(fail_after: int) -> None:
    data = contacts(120)
    whole = run(data, "contacts", batch_size=17)
    state = State("sha256:test", "contacts")
    broken = Receiver(fail_after=fail_after)
    with pytest.raises(Interrupted):
        run(data, "contacts", receiver=broken, state=state, batch_size=17)
    assert state.last_row == (_row_of(broken.calls[-1], data) if broken.calls else 0)
    resumed = Receiver()
    result = run(data, "contacts", receiver=resumed, state=state, batch_size=17)
    sent = broken.calls + resumed.calls
    assert sorted(c["messageId"] for c in sent) == sorted(
        c["messageId"] for c in _calls(data)
    )  # every call exactly once
    assert result.summary == whole.summary.__class__(
        **{**whole.summary.__dict__, "resumed_from": len(broken.calls),
           "batches": result.summary.batches}
    )  # fmt: skip
    assert result.summary.adds_up() and result.rejects == whole.rejects
    assert state.done


def test_a_batch_sent_but_not_acknowledged_is_sent_again_with_the_same_ids() -> None:
    data = contacts(40)
    state = State("sha256:test", "contacts")

    class LostAnswer(Receiver):
        def __call__(self, calls):  # type: ignore[no-untyped-def]
            answer = super().__call__(calls)
            if len(self.batches) == 2:
                raise Interrupted  # delivered, but the answer never came back
            return answer

    lost = LostAnswer()
    with pytest.raises(Interrupted):
        run(data, "contacts", receiver=lost, state=state, batch_size=10)
    resumed = Receiver()
    run(data, "contacts", receiver=resumed, state=state, batch_size=10)
    assert resumed.batches[0] == lost.batches[1]  # the unacknowledged batch, identical
    assert len(lost.calls) + len(resumed.calls) == 40 + 10


def test_rejects_from_ingest_are_rows_too_and_survive_a_resume() -> None:
    data = contacts(30)
    state = State("sha256:test", "contacts")
    refusing = Receiver(refuse={0: ("traits.email", "limit_exceeded: too long")})
    run(data, "contacts", receiver=refusing, state=state, batch_size=10)
    first_of_each_batch = [_row_of({"userId": f"U{i}"}, data) for i in (0, 10, 20)]
    assert [r[0] for r in state.server_rejects] == first_of_each_batch
    state.done = False  # as if interrupted after the last batch
    again = run(data, "contacts", receiver=Receiver(), state=state, batch_size=10)
    assert {r.row for r in again.rejects} >= set(first_of_each_batch)
    assert again.summary.adds_up()


def _calls(data: bytes) -> list[dict]:
    receiver = Receiver()
    run(data, "contacts", receiver=receiver)
    return receiver.calls


def _row_of(call: dict, data: bytes) -> int:
    lines = data.decode().split("\n")
    return next(i + 1 for i, line in enumerate(lines) if line.startswith(call["userId"] + ","))
