"""The activation wire model and the `destinations:` configuration."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from functions.shared.activations import activation_json, parse_activation
from functions.shared.destinations import DEFAULT_RETRY_SCHEDULE, Destinations, signing_secrets
from infra.local.destinations import for_local_stack, local_secret_value
from tests.unit.webhook.factories import OLD_SECRET, SECRET, activation, destination


class _Holder(BaseModel):
    """How BeaconConfig holds the section."""

    destinations: Destinations = ()


def test_activation_round_trips_as_snake_case_json():
    original = activation()
    text = activation_json(original)
    assert b'"profile_id":"prof_1"' in text and b'"held_out":false' in text
    assert parse_activation(text) == original


def test_activation_ignores_unknown_fields_and_checks_kind_fields():
    assert parse_activation(activation_json(activation())[:-1] + b',"new_field":1}').id == "act_01"
    with pytest.raises(ValidationError, match="needs segment_id"):
        activation(segment_id=None)
    with pytest.raises(ValidationError, match="needs model, threshold and score"):
        activation(type="score.crossed", segment_id=None)
    with pytest.raises(ValidationError):
        activation(at="2026-03-01T12:00:00")  # no zone


def test_defaults():
    hook = destination()
    assert hook.activations == ("segment.entered", "segment.exited", "score.crossed")
    assert hook.segments is None and hook.models is None
    assert hook.required_consent == ("marketing",)
    assert hook.retry == DEFAULT_RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert hook.timeout.connect == 3 and hook.timeout.total == 10
    assert hook.enabled and not hook.allow_private_network
    assert destination(type="iterable").url == "https://api.iterable.com"


def test_the_type_picks_the_model_and_extra_fields_are_refused():
    section = _Holder.model_validate(
        {
            "destinations": [
                {
                    "type": "braze",
                    "name": "b",
                    "url": "https://rest.fra-02.braze.eu/",
                    "secret": {"secret_name": "beacon/b"},
                },
                {"type": "iterable", "name": "i", "secret": {"secret_name": "beacon/i"}},
            ]
        }
    )
    assert [type(d).__name__ for d in section.destinations] == [
        "BrazeDestination",
        "IterableDestination",
    ]
    assert section.destinations[0].url == "https://rest.fra-02.braze.eu"  # trailing / dropped
    with pytest.raises(ValidationError, match="mapping"):
        destination(type="braze", mapping={"a": 1})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        destination(type="mailchimp")


def test_names_are_unique_slugs():
    hook = destination().model_dump()
    with pytest.raises(ValidationError, match="duplicate destination name: hooks"):
        _Holder.model_validate({"destinations": [hook, hook]})
    with pytest.raises(ValidationError, match="lower-case"):
        destination(name="Hooks!")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "http://hooks.example.com"}, "is not an https URL"),
        ({"url": "https://user:pw@hooks.example.com"}, "credentials in the URL"),
        ({"url": "https://hooks.example.com/#x"}, "fragment"),
        ({"retry": [5, 0]}, "more than 0"),
        ({"retry": [50_000]}, "at most 43200"),
        ({"timeout": {"connect": 20, "total": 5}}, "connect must not exceed total"),
        ({"activations": ["segment.left"]}, "segment.entered"),
        ({"mapping": {"who": "{{ person.name }}"}}, "unknown activation field 'person'"),
        ({"secret": {"secret_name": "s", "local_secret": "nope"}}, "must start with whsec_"),
        ({"secret": {"secret_name": "s", "local_secret": "whsec_!!"}}, "not valid base64"),
        ({"secret": {"secret_name": "s", "local_secret": "whsec_c2hvcnQ="}}, "24 to 64 bytes"),
        ({"secret": {"secret_name": "bad name"}}, "not a valid Secrets Manager"),
    ],
)
def test_invalid_destinations(fields, message):
    with pytest.raises(ValidationError, match=message):
        destination(**fields)


def test_presets_take_base_urls_without_query():
    with pytest.raises(ValidationError, match="query"):
        destination(type="braze", url="https://rest.iad-01.braze.com?x=1")
    assert destination(url="https://hooks.example.com/in?token=t").url.endswith("?token=t")


def test_signing_secrets_allow_rotation():
    assert signing_secrets(f" {SECRET}  {OLD_SECRET} ") == (SECRET, OLD_SECRET)
    with pytest.raises(ValueError, match="empty"):
        signing_secrets("  ")


def test_local_secret_values():
    assert local_secret_value(destination()) == SECRET
    env_ref = destination(secret={"secret_name": "s", "local_secret": "${HOOK_SECRET}"})
    assert local_secret_value(env_ref, {"HOOK_SECRET": OLD_SECRET}) == OLD_SECRET
    with pytest.raises(KeyError, match="HOOK_SECRET"):
        local_secret_value(env_ref, {})
    derived = destination(secret={"secret_name": "s"})
    assert signing_secrets(local_secret_value(derived, {}))  # a valid whsec_, the same each time
    assert local_secret_value(derived, {}) == local_secret_value(derived, {})
    braze = destination(type="braze")
    assert local_secret_value(braze, {}).startswith("local-braze-")


def test_for_local_stack_points_at_the_sinks():
    gateway = "http://127.0.0.1:8080/"
    assert for_local_stack(destination(), gateway).url == "http://127.0.0.1:8080/_sink/hooks"
    assert for_local_stack(destination(type="braze"), gateway).url.endswith("/_sink/braze")
    sfmc = for_local_stack(destination(type="salesforce_journey_builder"), gateway)
    assert sfmc.url == sfmc.auth_url == "http://127.0.0.1:8080/_sink/sfmc"  # type: ignore[union-attr]
    custom = destination(local_url="http://127.0.0.1:9000/in")
    assert for_local_stack(custom, gateway).url == "http://127.0.0.1:9000/in"
