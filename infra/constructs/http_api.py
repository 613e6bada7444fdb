"""The HTTP API in front of the functions that have `http_routes`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jsii
from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.topology import Function


@dataclass(frozen=True)
class Throttle:
    """Default-stage limits: a pixel on a busy site bursts, a bot loop should not."""

    burst: int = 1000
    rate: int = 500


# Access log fields: one record per request, those refused before any function ran
# included (413 over 10 MB, 431 over 10240 bytes of request line and headers, ...:
# status, errorMessage and errorType say which). Deliberately no
# $context.identity.sourceIp (raw IPs never reach Beacon's logs) and no
# $context.path (a read-API path names a person: routeKey says which route).
_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "errorMessage": "$context.error.message",
    "errorType": "$context.error.responseType",
}


class HttpApi(Construct):
    """One route per topology `HttpRoute`, each proxied to its function (payload 2.0).

    No API-level CORS: the ingest function answers preflight itself from the
    config's allowed origins, so OPTIONS routes must reach it. No authorizer:
    write keys are checked in the function (as Segment's API does) and the
    pixel is public by design.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Iterable[tuple[Function, lambda_.IFunction]],
        key: kms.IKey,
        throttle: Throttle | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        throttle = throttle or Throttle()
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,  # operational, no personal data
        )
        _let_logs_use(key, self.access_logs)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="Beacon collection API (Segment and Snowplow compatible)",
            create_default_stage=False,  # the stage below needs access logs and throttling
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(burst_limit=throttle.burst, rate_limit=throttle.rate),
            access_log_settings=_AccessLogSettings(self.access_logs),
        )
        for row, handler in routes:
            integration = integrations.HttpLambdaIntegration(
                f"{row.name}-integration",
                handler,
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            )
            for route in row.http_routes:
                self.api.add_routes(
                    path=route.path,
                    methods=[apigwv2.HttpMethod[route.method]],
                    integration=integration,
                )

    @property
    def url(self) -> str:
        # The $default stage is served at the API's root, so its URL is the endpoint.
        return f"{self.api.api_endpoint}/"


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """JSON access logs (one object per request) into `log_group`."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(_json(_ACCESS_LOG_FIELDS))


def _let_logs_use(key: kms.IKey, log_group: logs.LogGroup) -> None:
    """CloudWatch Logs encrypts a log group's events with `key` as the service itself,
    so the key policy must allow it, for this account's log groups only."""
    stack = Stack.of(log_group)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchLogsEncryptsAccessLogs",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )


def _json(fields: dict[str, str]) -> str:
    # Numbers and strings alike are quoted: API Gateway substitutes "-" for
    # absent values, which would be invalid JSON unquoted.
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in fields.items()) + "}"
