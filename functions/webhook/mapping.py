"""The generic webhook's payload mapping: a JSON template filled from the activation.

A string that is exactly one placeholder, `"{{ score }}"`, takes the value with
its JSON type (number, object, null); placeholders inside longer text are
interpolated as text (null as the empty string). A path that the activation
does not have gives null: traits differ from person to person.
"""

from __future__ import annotations

import json
from typing import Any

from functions.shared.destinations import PLACEHOLDER


def render(template: Any, data: dict[str, Any]) -> Any:
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template.strip())
        if whole:
            return lookup(data, whole.group(1))
        return PLACEHOLDER.sub(lambda found: _as_text(lookup(data, found.group(1))), template)
    if isinstance(template, dict):
        return {key: render(value, data) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, data) for value in template]
    return template


def lookup(data: Any, path: str) -> Any:
    current = data
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
    return current


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
