"""Orders: one row per line item grouped by order id (Shopify's export), or a JSON
`products` column; dated when they happened; a bad line rejects its whole order."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from functions.imports.rows import anonymous_id

from .helpers import Receiver, run

HEADER = "Name,Email,Created at,Currency,Total,Lineitem quantity,Lineitem name,Lineitem price"
SHOPIFY = f"""{HEADER},Lineitem sku
#1001,ana@example.org,2022-11-05 14:02:11 -0500,USD,59.00,1,Mug,19.00,MUG-1
#1001,ana@example.org,2022-11-05 14:02:11 -0500,USD,59.00,2,Tea,20.00,TEA-2
#1002,bo@example.org,2023-01-02 09:00:00 +0000,EUR,5.00,1,Card,5.00,CARD-9
#1003,cy@example.org,2023-01-03 09:00:00 +0000,EUR,30.00,1,Pen,10.00,PEN-1
#1003,cy@example.org,2023-01-03 09:00:00 +0000,EUR,30.00,x,Ink,10.00,INK-1

#1004,,2023-01-04,EUR,10.00,1,Pen,10.00,PEN-1
#1005,di@example.org,,EUR,10.00,1,Pen,10.00,PEN-1
#1002,bo@example.org,2023-01-02 09:00:00 +0000,EUR,5.00,1,Card,5.00,CARD-9
#1006,ed@example.org,2023-02-01,EUR,,2,Pen,10.00,bad sku!
"""


def test_line_items_group_into_one_order_completed_per_order() -> None:
    receiver = Receiver()
    result = run(SHOPIFY.encode(), "orders", receiver=receiver)
    assert [(r.row, r.field, r.message) for r in result.rejects] == [
        (5, "quantity", "order rejected: row 6 is bad"),  # the order's other line
        (6, "quantity", "quantity 'x' is not a number"),
        (8, "user_id", "no customer id, email or phone: nobody to import"),
        (9, "created_at", "created_at is missing: an order needs its date"),
        (10, "order_id", "duplicate order_id: same as row 4"),
        (11, "product_id", "product_id 'bad sku!' is not a valid item id"),
    ]
    summary = result.summary
    assert (summary.read, summary.accepted, summary.rejected, summary.blank) == (10, 3, 6, 1)
    assert summary.calls == 2
    first, second = receiver.calls
    assert first["type"] == "track" and first["event"] == "Order Completed"
    assert first["anonymousId"] == anonymous_id("email:ana@example.org")
    assert first["context"]["traits"] == {"email": "ana@example.org"}
    assert first["timestamp"] == "2022-11-05T19:02:11.000Z"
    assert first["properties"] == {
        "order_id": "#1001", "total": 59.0, "currency": "USD",
        "products": [
            {"product_id": "MUG-1", "quantity": 1, "price": 19.0, "name": "Mug"},
            {"product_id": "TEA-2", "quantity": 2, "price": 20.0, "name": "Tea"},
        ],
    }  # fmt: skip
    assert second["properties"]["order_id"] == "#1002"


def test_a_json_products_column_is_one_row_per_order() -> None:
    products = json.dumps([{"sku": "A-1", "quantity": 2, "price": "3.50", "category": "Tea"}])
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["order_id", "customer_id", "order_date", "products"])
    writer.writerow(["o1", "u1", "2021-06-01", products])
    receiver = Receiver()
    result = run(text.getvalue().encode(), "orders", receiver=receiver)
    assert result.rejects == []
    (call,) = receiver.calls
    assert call["userId"] == "u1"
    assert call["properties"]["total"] == 7.0  # no total column: the lines' sum
    assert call["properties"]["products"] == [
        {"product_id": "A-1", "quantity": 2, "price": 3.5, "category": "Tea"}
    ]


def test_json_lines_and_parquet_read_the_same_orders() -> None:
    rows = [
        {"order_id": "o1", "email": "a@b.io", "created_at": "2021-01-01", "total": 3,
         "sku": "S-1", "quantity": 1, "price": 3},
        {"order_id": "o2", "email": "c@d.io", "created_at": "2021-01-02", "total": 4,
         "sku": "S-2", "quantity": 2, "price": 2},
    ]  # fmt: skip
    jsonl = Receiver()
    run(
        ("\n".join(json.dumps(r) for r in rows) + "\n\n").encode(),
        "orders",
        "jsonl",
        receiver=jsonl,
    )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    parquet = Receiver()
    result = run(buffer.getvalue(), "orders", "parquet", receiver=parquet)
    assert result.summary.adds_up() and result.rejects == []
    assert jsonl.calls == parquet.calls
    assert [c["properties"]["order_id"] for c in jsonl.calls] == ["o1", "o2"]


def test_bad_json_lines_are_rejected_by_line_number() -> None:
    data = b'{"order_id": "o1"\n[1, 2]\n\n' + '{"name": "\xe9"}\n'.encode("latin-1")
    result = run(data, "orders", "jsonl")
    assert [(r.row, r.message) for r in result.rejects] == [
        (1, "not JSON (Expecting ',' delimiter)"),
        (2, "not a JSON object"),
        (4, "not valid UTF-8 (JSON lines are UTF-8)"),
    ]
    assert result.summary.blank == 1 and result.summary.adds_up()
