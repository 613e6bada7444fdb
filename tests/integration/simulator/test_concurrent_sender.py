"""The simulator's lanes over real HTTP: shoppers side by side, each in order.

A threaded HTTP server on loopback answers every request after a short pause and
records the order requests arrived in, so lanes that did not overlap, or a
shopper whose requests were reordered, show up.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from simulator.sender import Sender


class _Recorder(BaseHTTPRequestHandler):
    arrived: list[tuple[int, int]] = []
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway answers

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        time.sleep(0.01)
        with cls.lock:
            cls.in_flight -= 1
            cls.arrived.append((body["shopper"], body["step"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _Recorder.arrived = []
    _Recorder.most_in_flight = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _send_shoppers(sender: Sender, shoppers: int, steps: int) -> None:
    for shopper in range(shoppers):
        sender.use_lane(shopper)
        for step in range(steps):
            body = {"shopper": shopper, "step": step}
            sender.post_segment("/v1/batch", body, "application/json", units=2)


def test_lanes_overlap_and_keep_each_shoppers_order(endpoint: str) -> None:
    sender = Sender(endpoint, concurrency=4)
    _send_shoppers(sender, shoppers=12, steps=5)
    report = sender.finish()
    assert report.requests == 60
    assert report.units_sent == 120
    assert report.statuses == {200: 60}
    assert _Recorder.most_in_flight > 1  # shoppers really ran side by side
    for shopper in range(12):
        steps = [step for who, step in _Recorder.arrived if who == shopper]
        assert steps == list(range(5))


def test_one_lane_sends_inline_in_order(endpoint: str) -> None:
    sender = Sender(endpoint)
    _send_shoppers(sender, shoppers=3, steps=3)
    assert sender.report.requests == 9  # counted before finish: nothing was queued
    assert _Recorder.arrived == [(s, n) for s in range(3) for n in range(3)]
    assert _Recorder.most_in_flight == 1
    sender.finish()


def test_a_lane_that_cannot_connect_fails_the_run() -> None:
    sender = Sender("http://127.0.0.1:9", concurrency=2)  # the discard port: nothing listens
    sender._lanes[1].client.retry_for_s = 0.2
    sender.use_lane(1)
    sender.post_segment("/v1/batch", {"shopper": 0, "step": 0}, "application/json", units=1)
    with pytest.raises(ConnectionError):
        sender.finish()


def test_concurrency_below_one_is_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Sender(endpoint, concurrency=0)
