"""The dashboard's "What a page is told" panel: a person's decision item — exactly
what GET /v1/personalize answers for them — and why: the consent that allows it,
the rule of each segment told, the allow-list of each trait, the band of each score.
"""

from __future__ import annotations

import html
from typing import Any

from functions.shared.config import BeaconConfig
from functions.shared.decision import Decision, DecisionRules, StoredDecision


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def touchpoint_panel(
    profile: dict[str, Any], stored: StoredDecision | None, config: BeaconConfig
) -> str:
    rules = DecisionRules.from_config(config)
    decision = stored.decision if stored is not None else None
    rows = [_consent_row(profile, rules)]
    if decision is None or not decision.personalized:
        rows.append(
            '<tr><td>answer</td><td><code>"personalized": false</code> and the page\'s '
            "defaults: nothing the person did is used</td></tr>"
        )
    else:
        rows += _told_rows(profile, decision, rules, config)
    return (
        "<section data-testid='touchpoint'><h2>What a page is told</h2>"
        "<p>GET /v1/personalize for this person (the decision item), and why.</p>"
        f"<table>{''.join(rows)}</table></section>"
    )


def _consent_row(profile: dict[str, Any], rules: DecisionRules) -> str:
    consent = profile.get("consent") or {}
    parts = []
    for category in rules.required_consent:
        decided = consent.get(category)
        if isinstance(decided, dict) and "granted" in decided:
            verdict = "granted" if decided["granted"] else "refused"
            parts.append(
                f"{category}: {verdict} at {decided.get('at', '?')} ({decided.get('source', '?')})"
            )
        else:
            default = "granted (opt-out default)" if rules.opt_out else "never granted (opt-in)"
            parts.append(f"{category}: {default}")
    return (
        f"<tr><td>consent (personalize.required_consent)</td><td>{_e('; '.join(parts))}</td></tr>"
    )


def _told_rows(
    profile: dict[str, Any], decision: Decision, rules: DecisionRules, config: BeaconConfig
) -> list[str]:
    conditions = {s.id: " ".join(s.condition.split()) for s in config.segments.segments}
    rows = []
    for segment in decision.segments:
        if not rules.segment_told(segment):
            continue
        since = (profile.get("segments", {}).get(segment) or {}).get("since", "")
        rows.append(
            f"<tr><td>segment {_e(segment)}</td><td>since {_e(since)}; rule "
            f"<code>{_e(conditions.get(segment, '?'))}</code></td></tr>"
        )
    held = sorted(
        s
        for s, m in (profile.get("segments") or {}).items()
        if isinstance(m, dict) and m.get("held_out")
    )
    if held:
        rows.append(f"<tr><td>not told</td><td>held out of {_e(', '.join(held))}</td></tr>")
    for name, value in decision.traits.items():
        if rules.trait_told(name):
            where = "personalize.traits" if name in rules.traits else "personalize.computed_traits"
            rows.append(f"<tr><td>trait {_e(name)}</td><td>{_e(value)} ({where})</td></tr>")
    scores = profile.get("scores") or {}
    for model, band in decision.scores.items():
        probability = (scores.get(model) or {}).get("probability", "?")
        rows.append(
            f"<tr><td>score {_e(model)}</td><td>band {_e(band)} (probability "
            f"{_e(probability)}; the manifest's bands)</td></tr>"
        )
    return rows
