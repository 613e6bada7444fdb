"""JSON from clients: parsed strictly, inspected and rewritten without recursion.

Anything a client sends may be hostile: nested thousands of levels deep, full of
`NaN`, or hiding an IP address under a key spelled `"\\u0069p"`. Python's `json`
accepts `NaN`/`Infinity` (RFC 8259 does not) and turns `1e400` into infinity;
a recursive walk over a deep document exhausts the stack. So every walk here
keeps its own stack, and non-finite numbers arrive as `NonFinite` markers that
validation refuses with the field's path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Deepest nesting an event may have (`{"properties": {"a": ...}}` is depth 2).
# Real events stay under 10; Mixpanel and others refuse far less than a thousand.
MAX_DEPTH = 32
TOO_DEEP = "too_deeply_nested"
INVALID_NUMBER = "invalid_number"
_ELIDED = "[nested too deeply]"


class NonFinite(str):
    """A number JSON cannot carry (`NaN`, `Infinity`, or a literal beyond a double),
    kept as the text the client sent so the rejection can show it."""


def _parse_float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def loads(text: str) -> Any:
    """`json.loads`, except that non-finite numbers become `NonFinite` markers.

    Raises what `json.loads` raises (ValueError, RecursionError beyond the
    interpreter's nesting limit); callers turn that into a refusal.
    """
    return json.loads(text, parse_constant=NonFinite, parse_float=_parse_float)


@dataclass(frozen=True)
class Problem:
    reason: str  # TOO_DEEP or INVALID_NUMBER
    path: str  # where: `properties.a.b[3]`
    message: str


def find_problem(value: Any, max_depth: int = MAX_DEPTH, root: str = "") -> Problem | None:
    """The first place where `value` nests deeper than `max_depth` or holds a
    non-finite number, or None. Iterative: any depth is inspected safely."""
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        current, path, depth = stack.pop()
        if isinstance(current, NonFinite):
            return Problem(
                INVALID_NUMBER,
                path,
                f"{path or 'value'} is {current[:40]}: only finite numbers are valid JSON",
            )
        if isinstance(current, dict | list):
            if depth >= max_depth:
                return Problem(
                    TOO_DEEP, path, f"{path or 'value'} nests deeper than {max_depth} levels"
                )
            children = current.items() if isinstance(current, dict) else enumerate(current)
            for key, child in children:
                stack.append((child, _child_path(path, key), depth + 1))
        elif isinstance(current, float) and not math.isfinite(current):
            return Problem(INVALID_NUMBER, path, f"{path or 'value'} is not a finite number")
    return None


def depth_of(value: Any, limit: int) -> int:
    """How deep `value` nests, counting no further than `limit` + 1 (iterative)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth + 1)
            if deepest > limit:
                return deepest
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return deepest


def rewrite(
    value: Any,
    on_key: Callable[[str, Any], tuple[bool, Any]] | None = None,
    max_depth: int | None = None,
    on_leaf: Callable[[Any], Any] | None = None,
) -> Any:
    """A copy of `value`, built without recursion.

    `on_key(key, child)` may replace a mapping entry: it answers (keep, new value);
    keep False drops the entry. `on_leaf` maps every value that is not a container.
    Containers deeper than `max_depth` become a short marker, so an over-deep
    document can still be stored as evidence.
    """
    root: list[Any] = [None]
    # (source, parent container, slot in the parent, depth of the source)
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        source, parent, slot, depth = stack.pop()
        if isinstance(source, dict | list) and max_depth is not None and depth >= max_depth:
            parent[slot] = _ELIDED
        elif isinstance(source, dict):
            copy: dict[Any, Any] = {}
            parent[slot] = copy
            for key, child in source.items():
                if on_key is not None and isinstance(key, str):
                    keep, child = on_key(key, child)
                    if not keep:
                        continue
                copy[key] = None
                stack.append((child, copy, key, depth + 1))
        elif isinstance(source, list):
            items: list[Any] = [None] * len(source)
            parent[slot] = items
            stack.extend((child, items, i, depth + 1) for i, child in enumerate(source))
        else:
            parent[slot] = source if on_leaf is None else on_leaf(source)
    return root[0]


def dumps(value: Any) -> str:
    """Compact JSON of anything `loads` returned, however deep (deeper than
    MAX_DEPTH is elided: it was refused for that, and is kept only as evidence)."""
    if depth_of(value, MAX_DEPTH) > MAX_DEPTH:
        value = rewrite(value, max_depth=MAX_DEPTH)
    return json.dumps(value, separators=(",", ":"), default=str)


def strict_dumps(value: Any) -> str:
    """JSON that every parser accepts (RFC 8259): a non-finite float, which nothing
    should have let in, is written as null rather than `Infinity`."""

    def finite(leaf: Any) -> Any:
        return None if isinstance(leaf, float) and not math.isfinite(leaf) else leaf

    return json.dumps(rewrite(value, on_leaf=finite), default=str, allow_nan=False)


def _child_path(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = str(key)[:40]
    return f"{path}.{name}" if path else name
