"""The `beacon` verbs, one module per group; each has `register(verbs)`, which adds
its verbs to the command line with a `run(args) -> exit status` for each."""

from __future__ import annotations

import argparse

Verbs = argparse._SubParsersAction  # argparse's own name for what add_subparsers returns
