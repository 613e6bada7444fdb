"""`beacon import` into a running local stack, over the real ingest API: contacts and
orders become profiles with their history; the same file twice adds nothing; a killed
import resumes without loss or duplicates; an imported customer and a web visitor who
later identifies with the same email are one profile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, RunningStack, basic_auth
from .test_consent_over_http import ADMIN, call, eventually

pytestmark = pytest.mark.e2e
MAPPING = """
contacts:
  consent: {personalization: true, analytics: true}
orders:
  consent: {personalization: true, analytics: true}
"""


def beacon_import(
    stack: RunningStack, path: Path, kind: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "import", str(path), "--kind", kind,
         "--mapping", str(path.parent / "mapping.yaml"), "--endpoint", stack.url, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def profile(stack: RunningStack, ref: str) -> dict:
    status, body = call(stack, "GET", f"/v1/profiles/{ref}", headers=ADMIN)
    return body if status == 200 else {}


def orders_of(stack: RunningStack, email: str, expected: int) -> dict:
    def done() -> dict:
        found = profile(stack, f"email:{email}")
        return found if found.get("computed", {}).get("orders_total") == expected else {}

    return eventually(done, timeout_s=60) or profile(stack, f"email:{email}")


def event_ids(stack: RunningStack, marker: str) -> list[str]:
    return [r["messageId"] for r in stack.stream_records() if marker in json.dumps(r)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def test_contacts_and_orders_import_once_and_join_the_web_visitor(stack, folder):
    run = uuid.uuid4().hex[:8]
    emails = [f"imp-{run}-{i}@example.org" for i in range(3)]
    contacts = folder / "contacts.csv"
    contacts.write_text(
        "Customer ID,Email,First Name,Phone Number,Created at\n"
        f"C-{run}-0,{emails[0]},Ana,(415) 555-2671,2019-03-04\n"
        f"C-{run}-1,{emails[1]},Bo,not a phone,2019-03-04\n"
        "\n"
        f"C-{run}-2,{emails[2].upper()},Cy,+44 20 7946 0958,2020-05-06 10:00:00\n",
        encoding="utf-8",
    )
    answer = beacon_import(stack, contacts, "contacts")
    assert answer.returncode == 0, answer.stderr
    assert "read 4 rows = 2 accepted + 1 rejected + 1 blank" in answer.stdout
    assert "rows/s" in answer.stderr
    rejects = (folder / "contacts.csv.rejects.csv").read_text().splitlines()
    assert rejects[1:] == ["3,phone,phone 'not a phone' is not a valid phone number (region US)"]

    orders = folder / "orders.csv"
    orders.write_text(
        "Name,Email,Created at,Currency,Total,Lineitem quantity,Lineitem price,Lineitem sku\n"
        f"#{run}-1,{emails[0]},2021-01-05 10:00:00 +0000,USD,30.00,1,10.00,MUG-1\n"
        f"#{run}-1,{emails[0]},2021-01-05 10:00:00 +0000,USD,30.00,1,20.00,TEA-2\n"
        f"#{run}-2,{emails[0]},2022-02-05 10:00:00 +0000,USD,12.50,1,12.50,PEN-1\n"
        f"#{run}-3,{emails[2]},2022-03-01 09:00:00 +0000,USD,5.00,1,5.00,CARD-9\n",
        encoding="utf-8",
    )
    answer = beacon_import(stack, orders, "orders")
    assert answer.returncode == 0, answer.stderr
    assert "read 4 rows = 4 accepted + 0 rejected + 0 blank; 3 calls" in answer.stdout

    ana = orders_of(stack, emails[0], 2)
    assert ana["computed"]["orders_total"] == 2, ana
    assert ana["computed"]["lifetime_value"] == 42.5
    assert ana["identifiers"]["user_id"] == [f"C-{run}-0"]
    assert ana["first_seen"].startswith("2019-03-04")  # history is dated when it happened
    assert orders_of(stack, emails[2], 1)["identifiers"]["user_id"] == [f"C-{run}-2"]
    ids = sorted(event_ids(stack, run))
    assert len(ids) == len(set(ids)) == 5  # 2 identifies + 3 orders

    # The same file again: the checkpoint says it is done, nothing is sent.
    again = beacon_import(stack, orders, "orders")
    assert again.returncode == 0 and "was imported already" in again.stdout
    assert sorted(event_ids(stack, run)) == ids
    # Sent again regardless (--restart): the same message ids, applied once.
    again = beacon_import(stack, orders, "orders", "--restart")
    assert again.returncode == 0, again.stderr
    resent = event_ids(stack, run)
    assert len(resent) == 8 and set(resent) == set(ids)
    # One more order, on the same partition (the person's key) after the resent ones:
    # once it counts, the duplicates before it have been seen, and added nothing.
    later = folder / "later.csv"
    later.write_text(
        f"Name,Email,Created at,Total,Lineitem sku\n#{run}-4,{emails[0]},2023-01-01,1.00,PEN-1\n",
        encoding="utf-8",
    )
    assert beacon_import(stack, later, "orders").returncode == 0
    ana = orders_of(stack, emails[0], 3)
    assert ana["computed"]["orders_total"] == 3, ana
    assert ana["computed"]["lifetime_value"] == 43.5

    # A web visitor browses, then identifies with the imported email: one profile.
    visitor = f"web-{uuid.uuid4()}"
    granted = {"consent": {"categoryPreferences": {"personalization": True}}}
    for path, body in (
        ("/v1/page", {"anonymousId": visitor, "name": "Home"}),
        ("/v1/identify", {"anonymousId": visitor, "traits": {"email": emails[0]}}),
    ):
        status, _ = call(stack, "POST", path, {**body, "context": granted},
                         basic_auth("local-write-key"))  # fmt: skip
        assert status == 200

    def joined() -> dict:
        found = profile(stack, f"anonymous_id:{visitor}")
        return found if visitor in found.get("identifiers", {}).get("anonymous_id", []) else {}

    web = eventually(joined, timeout_s=60)
    assert web, "the web visitor was not resolved"
    assert web["profile_id"] == profile(stack, f"user_id:C-{run}-0")["profile_id"]
    assert web["computed"]["orders_total"] == 3


def test_a_killed_import_resumes_without_loss_or_duplicates(stack, folder):
    run = uuid.uuid4().hex[:8]
    customers, per_customer = 20, 30
    lines = ["Order ID,Email,Order Date,Total,SKU,Quantity,Price"]
    for c in range(customers):
        for o in range(per_customer):
            lines.append(
                f"{run}-{c}-{o},kill-{run}-{c}@example.org,2021-{1 + o % 12:02d}-{1 + o % 28:02d},"
                f"2.00,SKU-{o % 7},1,2.00"
            )
    orders = folder / "orders.csv"
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    state = folder / "orders.csv.import-state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "import", str(orders), "--kind", "orders", "--mapping",
         str(folder / "mapping.yaml"), "--endpoint", stack.url, "--batch-size", "5"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if state.exists() and json.loads(state.read_text())["last_row"] >= 50:
            break
        time.sleep(0.02)
    process.kill()  # SIGKILL: no chance to tidy up
    process.communicate(timeout=30)
    checkpoint = json.loads(state.read_text())
    assert not checkpoint["done"], "the import finished before it could be interrupted"
    assert checkpoint["last_row"] >= 50

    answer = beacon_import(stack, orders, "orders", "--batch-size", "50")
    assert answer.returncode == 0, answer.stderr
    assert f"resuming after row {checkpoint['last_row']}" in answer.stderr
    total = customers * per_customer
    assert f"read {total} rows = {total} accepted + 0 rejected + 0 blank" in answer.stdout

    sent = event_ids(stack, f"kill-{run}")
    assert len(set(sent)) == total  # nothing lost
    assert len(sent) - total <= 5  # at most the one unacknowledged batch of 5 sent twice
    for c in range(customers):
        person = orders_of(stack, f"kill-{run}-{c}@example.org", per_customer)
        assert person["computed"]["orders_total"] == per_customer, (c, person)
        assert person["computed"]["lifetime_value"] == 2.0 * per_customer


def test_a_parquet_file_from_s3(stack, folder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = uuid.uuid4().hex[:8]
    rows = [
        {"customer_id": f"P-{run}-{i}", "email": f"pq-{run}-{i}@example.org",
         "first_name": f"N{i}", "created_at": f"2020-0{1 + i}-01"}
        for i in range(3)
    ] + [{"customer_id": None, "email": None, "first_name": None, "created_at": None}]  # fmt: skip
    local = folder / "contacts.parquet"
    pq.write_table(pa.Table.from_pylist(rows), local)
    s3 = stack.client("s3")
    bucket = f"beacon-import-test-{run}"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(local), bucket, "imports/contacts.parquet")
    answer = subprocess.run(
        [sys.executable, "-m", "cli", "import", f"s3://{bucket}/imports/contacts.parquet",
         "--kind", "contacts", "--mapping", str(folder / "mapping.yaml"),
         "--endpoint", stack.url, "--aws-endpoint", stack.aws_endpoint,
         "--rejects", str(folder / "s3.rejects.csv")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert "read 4 rows = 3 accepted + 0 rejected + 1 blank" in answer.stdout
    assert (folder / "contacts.parquet.import-state.json").exists()

    def imported() -> dict:
        return profile(stack, f"user_id:P-{run}-2")

    person = eventually(imported, timeout_s=60)
    assert person["identifiers"]["email"] == [f"pq-{run}-2@example.org"]
