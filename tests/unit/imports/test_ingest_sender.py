"""The CLI's sender against a real HTTP server: the batch as ingest expects it, partial
answers mapped back to calls, retries on 503, a refused key stops the import."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cli.import_io import ImportFailed, IngestSender


class Ingest(BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []
    seen: list[tuple[str, dict, dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, dict(self.headers), body))
        status, answer = self.answers.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Ingest.answers, Ingest.seen = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


CALLS = [{"type": "identify", "userId": "u1", "messageId": "m1"},
         {"type": "identify", "userId": "u2", "messageId": "m2"}]  # fmt: skip


def test_a_batch_with_the_key_and_a_partial_answer(server: str) -> None:
    rejected = {"index": 1, "messageId": "m2", "reason": "limit_exceeded",
                "field": "traits.email", "message": "email is longer than 254"}  # fmt: skip
    Ingest.answers = [(200, {"success": True, "accepted": 1, "rejected": [rejected]})]
    answer = IngestSender(server, "k-1", sleep=lambda _s: None)(CALLS)
    assert answer.rejected == {1: ("traits.email", "limit_exceeded: email is longer than 254")}
    path, headers, body = Ingest.seen[0]
    assert path == "/v1/batch" and body == {"batch": CALLS}
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"k-1:").decode()
    assert "sentAt" not in json.dumps(body)


def test_503_is_retried_and_a_400_with_rejects_is_an_answer(server: str) -> None:
    slept: list[float] = []
    everything = [{"index": i, "reason": "invalid_event", "message": "bad"} for i in (0, 1)]
    Ingest.answers = [(503, {}), (503, {}), (400, {"success": False, "rejected": everything})]
    answer = IngestSender(server, "k", sleep=slept.append)(CALLS)
    assert sorted(answer.rejected) == [0, 1] and len(slept) == 2 and slept[1] > slept[0] / 2


def test_a_refused_key_or_a_stack_that_stays_down_stops_the_import(server: str) -> None:
    Ingest.answers = [(401, {"reason": "unauthorized"})]
    with pytest.raises(ImportFailed, match="ingest answered 401"):
        IngestSender(server, "wrong", sleep=lambda _s: None)(CALLS)
    Ingest.answers = [(503, {})] * 3
    with pytest.raises(ImportFailed, match="ingest answered 503"):
        IngestSender(server, "k", retries=2, sleep=lambda _s: None)(CALLS)
    with pytest.raises(ImportFailed, match="must be an http"):
        IngestSender("file:///etc/passwd", "k")
