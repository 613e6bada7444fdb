"""Who receives what, and the request each destination type gets."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks import Webhook

from functions.webhook.mapping import render
from functions.webhook.presets import (
    TokenCache,
    braze_requests,
    destination_accepts,
    iterable_event_id,
    iterable_request,
    parse_salesforce_token,
    salesforce_event_request,
    salesforce_token_request,
    webhook_request,
)
from tests.unit.webhook.factories import (
    OLD_SECRET,
    SECRET,
    activation,
    braze,
    destination,
    iterable,
    score_activation,
    sfmc,
    webhook,
)

# -- destination_accepts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dest_fields", "act_fields", "reason"),
    [
        ({}, {}, None),
        ({"enabled": False}, {}, "disabled"),
        ({}, {"held_out": True}, "held_out"),
        ({"activations": ["score.crossed"]}, {}, "kind_not_subscribed: segment.entered"),
        ({"segments": ["churners"]}, {}, "segment_not_subscribed: vip"),
        ({"segments": ["vip"]}, {}, None),
        ({}, {"consent": {}}, "consent_missing: marketing"),
        ({}, {"consent": {"marketing": False}}, "consent_missing: marketing"),
        (
            {"required_consent": ["Marketing", "advertising"]},
            {"consent": {"marketing": True}},
            "consent_missing: advertising",
        ),
        ({"required_consent": []}, {"consent": {}}, None),
        ({}, {"consent": {"Marketing": True}}, None),
    ],
)
def test_destination_accepts(dest_fields, act_fields, reason):
    assert destination_accepts(destination(**dest_fields), activation(**act_fields)) == reason


def test_model_filter_applies_to_scores_only():
    only_ltv = destination(models=["ltv"])
    assert destination_accepts(only_ltv, score_activation()) == "model_not_subscribed: churn"
    assert destination_accepts(only_ltv, activation()) is None
    assert destination_accepts(destination(segments=["x"]), score_activation()) is None


def test_presets_need_an_identifier():
    anonymous = activation(user_id=None, email=None)
    assert destination_accepts(destination(), anonymous) is None  # a webhook takes profile ids
    assert destination_accepts(braze(), anonymous) == (
        "no_identifier: braze needs user_id or email"
    )
    assert destination_accepts(iterable(), anonymous) is not None
    dest = sfmc(contact_key="email")
    assert (
        destination_accepts(dest, activation(email=None)) == "no_identifier: ContactKey needs email"
    )
    assert destination_accepts(dest, activation(user_id=None)) is None


# -- generic webhook ---------------------------------------------------------------------------


def test_webhook_sends_the_activation_signed():
    now = int(time.time())
    request = webhook_request(webhook(), activation(), f"{SECRET} {OLD_SECRET}", now)
    assert request.method == "POST"
    assert request.url == "https://hooks.example.com/beacon"
    assert request.activation_ids == ("act_01",)
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"] == "act_01"
    body = json.loads(request.body)
    assert body["type"] == "segment.entered" and body["segment_id"] == "vip"
    assert "model" not in body  # nulls left out
    for secret in (SECRET, OLD_SECRET):
        assert Webhook(secret).verify(request.body, dict(request.headers))["id"] == "act_01"
    assert request.loggable_headers()["webhook-signature"] == "***"


def test_webhook_mapping_template():
    mapping = {
        "event": "beacon.{{ type }}",
        "user": {"id": "{{ user_id }}", "name": "{{ traits.first_name }}"},
        "score": "{{ score }}",
        "first_tag": "{{ traits.tags.0 }}",
        "missing": "{{ traits.nope.deeper }}",
        "text": "{{ profile_id }} in {{ segment_id }} ({{ score }})",
        "list": ["{{ consent }}", 3, True],
    }
    request = webhook_request(webhook(mapping=mapping), score_activation(), SECRET, 1)
    assert json.loads(request.body) == {
        "event": "beacon.score.crossed",
        "user": {"id": "u-42", "name": "Ada"},
        "score": 0.81,
        "first_tag": "a",
        "missing": None,
        "text": "prof_1 in  (0.81)",
        "list": [{"marketing": True}, 3, True],
    }


def test_render_leaves_non_templates_alone():
    assert render({"a": 1, "b": None, "c": "plain"}, {}) == {"a": 1, "b": None, "c": "plain"}


# -- Braze -------------------------------------------------------------------------------------


def test_braze_users_track():
    acts = [
        activation(),
        activation(id="act_x", type="segment.exited", user_id=None),
        score_activation(),
    ]
    [request] = braze_requests(braze(), acts, "braze-key")
    assert request.url == "https://rest.iad-01.braze.com/users/track"
    assert request.headers["Authorization"] == "Bearer braze-key"
    assert request.activation_ids == ("act_01", "act_x", "act_02")
    body = json.loads(request.body)
    assert body["attributes"] == [
        {"external_id": "u-42", "beacon_segments": {"add": ["vip"]}},
        {"email": "ada@example.com", "beacon_segments": {"remove": ["vip"]}},
        {"external_id": "u-42", "beacon_churn_score": 0.81, "beacon_churn_threshold": "high"},
    ]
    assert body["events"][0] == {
        "external_id": "u-42",
        "name": "segment.entered",
        "time": "2026-03-01T12:00:00+00:00",
        "properties": {"activation_id": "act_01", "profile_id": "prof_1", "segment_id": "vip"},
    }
    assert body["events"][2]["properties"]["score"] == 0.81


def test_braze_batches_respect_the_75_object_limit():
    acts = [activation(id=f"a{i}") for i in range(160)]
    requests = braze_requests(braze(), acts, "k")
    sizes = [len(json.loads(r.body)["events"]) for r in requests]
    assert sizes == [75, 75, 10]
    assert all(len(json.loads(r.body)["attributes"]) <= 75 for r in requests)
    assert [i for r in requests for i in r.activation_ids] == [a.id for a in acts]


# -- Salesforce Marketing Cloud -----------------------------------------------------------------


def test_salesforce_token_request():
    dest = sfmc(account_id=5100001)  # unquoted in YAML
    request = salesforce_token_request(dest, "client-secret")
    assert request.url == "https://mc123.auth.marketingcloudapis.com/v2/token"
    assert json.loads(request.body) == {
        "grant_type": "client_credentials",
        "client_id": "client-1",
        "client_secret": "client-secret",
        "account_id": "5100001",
    }
    assert "account_id" not in json.loads(salesforce_token_request(sfmc(), "s").body)


def test_salesforce_event_request():
    dest = sfmc()
    request = salesforce_event_request(dest, score_activation(), "tok")
    assert request.url == "https://mc123.rest.marketingcloudapis.com/interaction/v1/events"
    assert request.headers["Authorization"] == "Bearer tok"
    body = json.loads(request.body)
    assert body["ContactKey"] == "u-42"
    assert body["EventDefinitionKey"] == "APIEvent-beacon"
    assert body["Data"] == {
        "activation_id": "act_02",
        "type": "score.crossed",
        "profile_id": "prof_1",
        "model": "churn",
        "threshold": "high",
        "score": 0.81,
        "at": "2026-03-01T12:00:00+00:00",
        "email": "ada@example.com",
    }


def test_salesforce_token_answer():
    assert parse_salesforce_token(b'{"access_token":"t","expires_in":1079}') == ("t", 1079.0)
    for bad in (b"{}", b"not json", b'{"access_token":"","expires_in":5}', b"[]"):
        with pytest.raises(ValueError, match="access_token"):
            parse_salesforce_token(bad)


def test_token_cache_expires_before_the_token_does():
    now = [1000.0]
    cache = TokenCache(margin_s=60, clock=lambda: now[0])
    assert cache.get("k") is None
    cache.put("k", "tok", 1080)
    now[0] += 1019
    assert cache.get("k") == "tok"
    now[0] += 1
    assert cache.get("k") is None  # 1080 - 60 s later: renew
    cache.put("k", "tok2", 1080)
    cache.invalidate("k")
    assert cache.get("k") is None


# -- Iterable ----------------------------------------------------------------------------------


def test_iterable_events_track():
    request = iterable_request(iterable(), activation(), "it-key")
    assert request.url == "https://api.iterable.com/api/events/track"
    assert request.headers["Api-Key"] == "it-key"
    assert json.loads(request.body) == {
        "email": "ada@example.com",
        "userId": "u-42",
        "eventName": "segment.entered",
        "id": "act_01",
        "createdAt": 1772366400,
        "dataFields": {
            "activation_id": "act_01",
            "profile_id": "prof_1",
            "segment_id": "vip",
            "at": "2026-03-01T12:00:00+00:00",
        },
    }
    only_email = json.loads(iterable_request(iterable(), activation(user_id=None), "k").body)
    assert "userId" not in only_email


def test_iterable_event_ids_are_stable_and_valid():
    assert iterable_event_id("seg:vip:prof_1") == iterable_event_id("seg:vip:prof_1")
    assert len(iterable_event_id("seg:vip:prof_1")) == 64


# -- recommendations and persona (issue 17) --------------------------------------------------


def test_braze_sends_recommendations_and_persona_as_attributes():
    told = {"recommendations": ["sku-101", "sku-102"], "persona": "Weekend Cyclists"}
    acts = [activation(**told), score_activation(**told), activation(id="act_3")]
    body = json.loads(braze_requests(braze(), acts, "k")[0].body)
    assert body["attributes"][0] == {
        "external_id": "u-42",
        "beacon_segments": {"add": ["vip"]},
        "beacon_recommendations": ["sku-101", "sku-102"],
        "beacon_persona": "Weekend Cyclists",
    }
    assert body["attributes"][1]["beacon_recommendations"] == ["sku-101", "sku-102"]
    assert "beacon_recommendations" not in body["attributes"][2]  # none known: none sent
    assert len(body["attributes"]) == len(acts)  # one object per activation, as before
    renamed = braze(recommendations_attribute="recs", persona_attribute="segment_persona")
    first = json.loads(braze_requests(renamed, acts[:1], "k")[0].body)["attributes"][0]
    assert first["recs"] == ["sku-101", "sku-102"] and first["segment_persona"]


def test_the_generic_webhook_includes_them_only_when_asked():
    told = activation(recommendations=["sku-101"], persona="Weekend Cyclists")
    plain = json.loads(webhook_request(webhook(), told, SECRET, 1).body)
    assert "recommendations" not in plain and "persona" not in plain
    asked = webhook(include=["recommendations", "persona"])
    body = json.loads(webhook_request(asked, told, SECRET, 1).body)
    assert body["recommendations"] == ["sku-101"] and body["persona"] == "Weekend Cyclists"
    mapped = webhook(mapping={"items": "{{ recommendations }}"})
    assert json.loads(webhook_request(mapped, told, SECRET, 1).body) == {"items": ["sku-101"]}


def test_an_activation_caps_its_recommendations():
    with pytest.raises(ValueError, match="at most 10"):
        activation(recommendations=[f"sku-{i}" for i in range(11)])


def test_the_generic_webhook_sends_channel_influence_only_when_asked():
    told = activation(channels={"email": 0.75, "search": 0.25})
    plain = json.loads(webhook_request(webhook(), told, SECRET, 1).body)
    assert "channels" not in plain
    body = json.loads(webhook_request(webhook(include=["channels"]), told, SECRET, 1).body)
    assert body["channels"] == {"email": 0.75, "search": 0.25}
    mapped = webhook(mapping={"email_share": "{{ channels.email }}"})
    assert json.loads(webhook_request(mapped, told, SECRET, 1).body) == {"email_share": 0.75}
