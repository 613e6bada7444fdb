"""The profile model every later step shares: computed-trait and segment definitions
(`definitions`), the aggregates a profile keeps and how events and merges change
them (`aggregates`), and CEL segment evaluation (`evaluate`).

Pure logic. The segments step keeps profiles current with it, the scoring step
re-evaluates score-based segments with it, and the read API shows computed
traits as of now with it, so it lives in the shared package every bundle carries.
"""
