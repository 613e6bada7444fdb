"""The `beacon` command and the operator tools behind it.

* `main.py` assembles the verbs from `commands/` (one module per group:
  stack, people, identity, segments, models, deliveries, dashboard);
* `defaults.py` — the endpoint, ports and keys every verb defaults to;
* `admin_api.py` — the one client of the read/admin API (verbs and dashboard);
* `resources.py` — where the operator tools find the stack's AWS resources;
* the tools: `demo.py` (the demo and its summary), `observe.py` (the ledger),
  `dashboard/` (the HTML dashboard), `dlq.py`, `model_status.py`.

On top of everything else: may import `functions/`, `infra/`, `simulator/` and
`models/`; nothing imports it (docs/architecture.md).
"""
