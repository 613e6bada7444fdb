"""The profile model: what a profile keeps and how it changes.

* `state` — the state a profile keeps (computed traits' buckets, cart,
  memberships, what has been applied);
* `apply` — how events and merges change it, replay-safely;
* `computed` — computed traits as of now, and when time alone changes them;
* `evaluate` — CEL segment evaluation over the profile;
* `codec` — the state as the profiles table stores it; `stored` — a stored
  profile (with its version, tombstone or erasure marker).

Pure logic. The segments step keeps profiles current with it, the scoring step
re-evaluates score-based segments with it, and the read API shows computed
traits as of now with it; only their bundles carry it (`infra/bundling.py`).
What a user configures (computed-trait and segment definitions) and the limits
a configuration must respect are part of the configuration schema, which every
function loads: `functions/shared/segment_definitions.py` and
`functions/shared/profile_limits.py`.
"""
