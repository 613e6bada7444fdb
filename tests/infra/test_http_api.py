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
    assert "$context.path" not in fields.values(), "a read-API path names a person"


def test_requests_refused_before_the_functions_are_logged(beacon: Synth) -> None:
    """API Gateway answers 413/431 itself: the access log is their record (the local
    gateway writes failed events under gateway/ instead)."""
    (stage,) = beacon.of_type("AWS::ApiGatewayV2::Stage").values()
    fields = json.loads(stage["Properties"]["AccessLogSettings"]["Format"])
    assert fields["status"] == "$context.status"
    assert fields["errorMessage"] == "$context.error.message"
    assert fields["errorType"] == "$context.error.responseType"


def test_access_logs_are_encrypted_with_the_stack_key(beacon: Synth) -> None:
    log_group_id = beacon.logical_id(beacon.stack.http_api.access_logs)
    (key_id,) = beacon.of_type("AWS::KMS::Key")
    props = beacon.resources[log_group_id]["Properties"]
    assert props["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    statements = beacon.resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
    [logs] = [s for s in statements if s.get("Sid") == "CloudWatchLogsEncryptsAccessLogs"]
    assert logs["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert "kms:GenerateDataKey*" in logs["Action"]
    condition = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert ":log-group:*" in json.dumps(condition), "this account's log groups only"


def test_api_url_output(beacon: Synth) -> None:
    outputs = beacon.template.to_json()["Outputs"]
    api_id = next(iter(beacon.of_type("AWS::ApiGatewayV2::Api")))
    value = json.dumps(outputs["ApiUrl"]["Value"])
    assert api_id in value
    log_group_id = beacon.logical_id(beacon.stack.http_api.access_logs)
    assert outputs["ApiAccessLogs"]["Value"] == {"Ref": log_group_id}


def _routes(beacon: Synth) -> list[dict[str, Any]]:
    return list(beacon.of_type("AWS::ApiGatewayV2::Route").values())
