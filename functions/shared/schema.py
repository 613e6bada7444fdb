"""Building blocks of Beacon's declarative files (beacon.yaml, the model manifests):
strict models, and strings checked against a pattern.

Only pydantic and the standard library: every function's cold start validates the
whole configuration.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are typos, not extras; what was read does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def matching(pattern: str, message: str) -> AfterValidator:
    """A field validator: the value must match `pattern` from its start, else `message`."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


SecretName = Annotated[
    str,
    matching(r"^[A-Za-z0-9/_+=.@-]{1,512}$", "is not a valid Secrets Manager secret name"),
]
# A source's or destination's name: in metric dimensions, secret names and URLs.
Name = Annotated[
    str,
    matching(r"^[a-z][a-z0-9_-]{0,62}$", "must be lower-case letters, digits, '-' or '_' (max 63)"),
]
# An id CEL reads as an identifier (`profile.computed.<id>`), a feature's name.
Slug = Annotated[
    str,
    matching(
        r"^[a-z][a-z0-9_]{0,62}$",
        "must be lower-case letters, digits or '_', starting with a letter",
    ),
]
