"""The webhook step: pushes activations to journey platforms and webhooks.

Plain modules that know nothing of Lambda or SQS: `presets` builds the requests
(and decides who receives what), `signing` signs them per Standard Webhooks,
`ssrf` vets where they go, `sender` sends one, `outcomes` says what its answer
means and when to try again, `circuit` stops hammering a destination that is
down, and `delivery` strings these together for one destination.
"""
