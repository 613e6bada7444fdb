"""moto in a process of its own: `python -m infra.local.moto_process --port 4566`.

The local stack's handlers, pollers and gateway share one interpreter; moto
answering every AWS call from the same interpreter made them queue behind one
lock. In its own process moto gets the second core. It runs with Beacon's moto
fixes (infra/local/moto_patches.py) and enforces IAM (infra/local/moto_auth.py),
and exits by itself when the process that started it is gone (a `beacon local`
killed with SIGKILL leaves no orphan).
`beacon moto` runs the same server in the foreground for `--aws-endpoint`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from infra.local import moto_auth, moto_patches

READY = "moto ready"


class _NoDelayHandler(MotoRequestHandler):
    """Answers without Nagle's delay: werkzeug writes a response's headers and body
    in two sends, and the body waited for the client's delayed ACK of the headers."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def serve(host: str, port: int, parent_pid: int | None = None, enforce_iam: bool = True) -> None:
    """Serve until SIGTERM/SIGINT, or until `parent_pid` is no longer our parent.

    The server is made here rather than by moto's ThreadedMotoServer, whose start()
    waits forever when its thread cannot bind the port: a port in use now fails
    at once (OSError), and the parent sees why."""
    moto_patches.apply()
    if enforce_iam:
        # From the first request on: only the admin user (created here, fixed keys)
        # and the functions' roles it creates can do anything.
        moto_auth.apply()
        moto_auth.enforce()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = make_server(
        host,
        port,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=_NoDelayHandler,
    )
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"{READY} on http://{host}:{port}", flush=True)
    while not stop.wait(0.5):
        if parent_pid is not None and os.getppid() != parent_pid:
            break  # orphaned: whoever needed us is gone
    server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto with Beacon's fixes, in the foreground")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    # Only for measuring what enforcement costs (bench/local_iam.py).
    parser.add_argument("--no-iam", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.parent_pid, enforce_iam=not args.no_iam)
    return 0


def wait_until_ready(process_output: object, deadline_s: float = 60.0) -> None:
    """Read the child's first lines until it says it is ready (RuntimeError otherwise)."""
    started = time.monotonic()
    lines = []
    while time.monotonic() - started < deadline_s:
        line = process_output.readline()  # type: ignore[attr-defined]
        if not line:
            break
        lines.append(line)
        if READY in line:
            return
    raise RuntimeError("moto did not start:\n" + "".join(lines))


if __name__ == "__main__":
    sys.exit(main())
