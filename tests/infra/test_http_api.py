"""The HTTP API: one route per topology route, proxied to its function."""

from __future__ import annotations

import json
from typing import Any

from infra.topology import TOPOLOGY

from .conftest import Synth


def test_routes_equal_the_topology(beacon: Synth) -> None:
    routes = beacon.of_type("AWS::ApiGatewayV2::Route").values()
    actual = sorted(r["Properties"]["RouteKey"] for r in routes)
    expected = sorted(
        f"{route.method} {route.path}" for fn in TOPOLOGY.functions for route in fn.http_routes
    )
    assert actual == expected


def test_each_route_reaches_its_function_with_payload_2(beacon: Synth) -> None:
    integrations = beacon.of_type("AWS::ApiGatewayV2::Integration")
    by_key = {r["Properties"]["RouteKey"]: r["Properties"] for r in _routes(beacon)}
    for fn in TOPOLOGY.functions:
        fn_arn = {
            "Fn::GetAtt": [beacon.logical_id(beacon.stack.functions[fn.name].function), "Arn"]
        }
        for route in fn.http_routes:
            props = by_key[f"{route.method} {route.path}"]
            # No authorizer: write keys and admin keys are checked in the functions.
            assert props.get("AuthorizationType", "NONE") == "NONE"
            integration_id = props["Target"]["Fn::Join"][1][1]["Ref"]
            integration = integrations[integration_id]["Properties"]
            assert integration["IntegrationType"] == "AWS_PROXY"
            assert integration["IntegrationUri"] == fn_arn
            assert integration["PayloadFormatVersion"] == "2.0"


def test_preflight_reaches_the_function(beacon: Synth) -> None:
    (api,) = beacon.of_type("AWS::ApiGatewayV2::Api").values()
    assert "CorsConfiguration" not in api["Properties"]
    keys = {r["Properties"]["RouteKey"] for r in _routes(beacon)}
    assert "OPTIONS /v1/{proxy+}" in keys


def test_default_stage_logs_and_throttles(beacon: Synth) -> None:
    (stage,) = beacon.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": 1000,
        "ThrottlingRateLimit": 500,
    }
    log_group_id = beacon.logical_id(beacon.stack.http_api.access_logs)
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    fields = json.loads(props["AccessLogSettings"]["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert not any("sourceIp" in value for value in fields.values()), "no raw IPs in logs"


def test_api_url_output(beacon: Synth) -> None:
    outputs = beacon.template.to_json()["Outputs"]
    api_id = next(iter(beacon.of_type("AWS::ApiGatewayV2::Api")))
    value = json.dumps(outputs["ApiUrl"]["Value"])
    assert api_id in value


def _routes(beacon: Synth) -> list[dict[str, Any]]:
    return list(beacon.of_type("AWS::ApiGatewayV2::Route").values())
