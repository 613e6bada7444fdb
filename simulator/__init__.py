"""Seeded simulated data: shoppers over HTTP, their journeys over days, the catalogue.

* `shoppers.Simulator` — `beacon simulate` and the demo: shoppers sending real
  clients' wire formats (analytics.js, the Snowplow trackers, a server library)
  to an ingest endpoint, over HTTP (`sender.py`);
* `journeys.generate_journeys` — whole journeys over simulated days, pure, which
  the simulator sends and `models/` trains on;
* `catalogue` — the shop's products and its shoppers' names.

Used by the `beacon` CLI and by `models/`; never by `functions/` or `infra/`.
"""
