"""What every `beacon` verb defaults to, written once: the local stack.

Its own constants (host and ports) stay with the local runtime; the keys are
the ones `beacon.yaml` ships for the local stack (docs/configuration.md).
"""

from __future__ import annotations

from pathlib import Path

from infra.local.runtime import DEFAULT_AWS_PORT, DEFAULT_HOST, DEFAULT_PORT
from infra.topology import ResourceNames

CONFIG = Path("beacon.yaml")
ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"  # the local stack's HTTP API
AWS_ENDPOINT = f"http://{DEFAULT_HOST}:{DEFAULT_AWS_PORT}"  # its moto server
ADMIN_KEY = "local-admin-key"
WRITE_KEY = "local-write-key"
DASHBOARD_PORT = 8090
LOCAL_NAMES = ResourceNames()  # the local stack's physical names
SEED = 7
CUSTOMERS = 40
