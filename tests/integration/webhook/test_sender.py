"""The sender against real local servers on 127.0.0.1 (plain http and TLS)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from functions.webhook.outcomes import classify
from functions.webhook.sender import PreparedRequest, send

HOST = "127.0.0.1"


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path == "/redirect":
            self._answer(301, {"Location": "http://169.254.169.254/latest/meta-data/"})
        elif self.path == "/busy":
            self._answer(429, {"Retry-After": "2"})
        elif self.path == "/slow":
            time.sleep(1.0)
            self._answer(200)
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for _ in range(100):  # 100 bytes over 2 s: each read is quick, the whole is not
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.02)
        else:
            self._answer(200, {"X-Seen-Host": self.headers["Host"]}, b'{"ok":true}')

    def _answer(
        self, status: int, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the client may have given up (the timeout tests)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(tls: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer((HOST, 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, seen


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server, seen = serve()
    yield f"http://{HOST}:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def post(url: str, **options: Any) -> Any:
    request = PreparedRequest(
        "POST", url, {"Content-Type": "application/json", "webhook-id": "act_01"}, b'{"a":1}'
    )
    options.setdefault("allow_loopback_http", True)
    return send(
        request,
        connect_timeout=options.pop("connect", 2.0),
        total_timeout=options.pop("total", 5.0),
        **options,
    )


def test_a_delivery_with_status_headers_and_latency(http_server):
    base, seen = http_server
    result = post(base + "/hook?x=1")
    assert result.status == 200 and result.error is None
    assert result.body == b'{"ok":true}'
    assert result.headers["x-seen-host"] == base.removeprefix("http://")
    assert result.address == HOST and result.latency_ms > 0
    [request] = seen
    assert request["path"] == "/hook?x=1" and request["body"] == b'{"a":1}'
    assert request["headers"]["webhook-id"] == "act_01"
    assert classify(result).verdict == "delivered"


def test_redirects_are_not_followed(http_server):
    base, seen = http_server
    result = post(base + "/redirect")
    assert result.status == 301
    assert len(seen) == 1  # the metadata address was never asked
    outcome = classify(result)
    assert outcome.verdict == "failed" and "169.254.169.254" in outcome.reason


def test_retry_after_comes_back(http_server):
    base, _ = http_server
    outcome = classify(post(base + "/busy"))
    assert outcome.verdict == "retry" and outcome.retry_after_s == 2


def test_total_timeout(http_server):
    base, _ = http_server
    result = post(base + "/slow", total=0.3)
    assert result.status is None and result.error_kind == "timeout"
    assert classify(result).verdict == "retry"


def test_total_timeout_covers_a_trickling_body(http_server):
    base, _ = http_server
    started = time.monotonic()
    result = post(base + "/drip", total=0.5)
    assert result.error_kind == "timeout"
    assert time.monotonic() - started < 1.5


def test_connection_refused():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = post(f"http://{HOST}:{port}/hook")
    assert result.error_kind == "connection_refused"
    assert classify(result).verdict == "retry"


def test_plain_http_and_loopback_need_the_local_flag(http_server):
    base, seen = http_server
    result = post(base + "/hook", allow_loopback_http=False)
    assert result.error_kind == "blocked" and "plain http" in (result.error or "")
    https = post(base.replace("http:", "https:") + "/hook", allow_loopback_http=False)
    assert https.error_kind == "blocked" and "loopback address" in (https.error or "")
    assert classify(https).verdict == "failed"
    assert seen == []


# -- TLS to a pinned address --------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.beacon.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.beacon.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def https_port(certificate: tuple[Path, Path]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*certificate)
    server, seen = serve(server_context)
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_tls_goes_to_the_vetted_address_with_the_host_name(certificate, https_port):
    port, seen = https_port
    lookups: list[str] = []

    def resolver(host: str, p: int) -> list[tuple[Any, ...]]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (HOST, p))]

    trust = ssl.create_default_context(cafile=str(certificate[0]))
    result = post(f"https://hooks.beacon.test:{port}/hook", resolver=resolver, ssl_context=trust)
    assert result.status == 200, result.error
    assert lookups == ["hooks.beacon.test"]  # one lookup, then the vetted address
    assert seen[0]["headers"]["Host"] == f"hooks.beacon.test:{port}"

    # The certificate is still checked against the name, not the address.
    wrong = post(f"https://other.beacon.test:{port}/hook", resolver=resolver, ssl_context=trust)
    assert wrong.error_kind == "tls" and "other.beacon.test" in (wrong.error or "")


def test_an_ipv4_literal_is_a_valid_https_target(certificate, https_port):
    port, _ = https_port
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    result = post(f"https://{HOST}:{port}/hook", ssl_context=trust)
    assert result.error_kind == "tls"  # reached, and refused: the certificate names a host
    assert ipaddress.ip_address(result.address) == ipaddress.ip_address(HOST)


def test_json_bodies_survive_the_trip(http_server):
    base, seen = http_server
    payload = json.dumps({"name": "Zoë"}).encode()
    request = PreparedRequest("POST", base + "/hook", {"Content-Type": "application/json"}, payload)
    send(request, connect_timeout=1, total_timeout=2, allow_loopback_http=True)
    assert json.loads(seen[0]["body"]) == {"name": "Zoë"}
