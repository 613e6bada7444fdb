"""One destination, some activations: build, send and classify the requests.

The handler's part is around this: fetch the destination's secret, keep only
what `destination_accepts`, ask the circuit breaker, then act on each result's
`outcome` with `outcomes.decide` (and log it). Tokens are cached for the
container's life, so keep one `Deliverer` per container.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from functions.shared.activations import Activation
from functions.shared.destinations import (
    AnyDestination,
    BrazeDestination,
    IterableDestination,
    SalesforceJourneyBuilderDestination,
    WebhookDestination,
)
from functions.webhook import presets
from functions.webhook.outcomes import Outcome, classify
from functions.webhook.sender import HttpResult, PreparedRequest, send
from functions.webhook.ssrf import Resolver


class Transport(Protocol):
    def __call__(
        self,
        request: PreparedRequest,
        *,
        connect_timeout: float,
        total_timeout: float,
        allow_private_network: bool = False,
        allow_loopback_http: bool = False,
        resolver: Resolver | None = None,
    ) -> HttpResult: ...


@dataclass(frozen=True)
class DeliveryResult:
    """One HTTP exchange and what it means for the activations it carried."""

    activation_ids: tuple[str, ...]
    outcome: Outcome
    result: HttpResult  # the last exchange (the token request's, if that failed)
    request: PreparedRequest | None  # None if no event request was built


class Deliverer:
    def __init__(
        self,
        *,
        tokens: presets.TokenCache | None = None,
        transport: Transport = send,
        allow_loopback_http: bool = False,
        resolver: Resolver | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`allow_loopback_http` only on the local stack (its sinks are http://127.0.0.1)."""
        self.tokens = tokens or presets.TokenCache(clock=clock)
        self._transport = transport
        self._allow_loopback_http = allow_loopback_http
        self._resolver = resolver
        self._now = now

    def deliver(
        self, destination: AnyDestination, activations: Sequence[Activation], secret: str
    ) -> list[DeliveryResult]:
        """Send accepted activations; `secret` is the value of `destination.secret`."""
        if not activations:
            return []
        if isinstance(destination, WebhookDestination):
            timestamp = int(self._now().timestamp())
            return [
                self._exchange(
                    destination, presets.webhook_request(destination, a, secret, timestamp)
                )
                for a in activations
            ]
        if isinstance(destination, BrazeDestination):
            return [
                self._exchange(destination, request)
                for request in presets.braze_requests(destination, activations, secret)
            ]
        if isinstance(destination, IterableDestination):
            return [
                self._exchange(destination, presets.iterable_request(destination, a, secret))
                for a in activations
            ]
        return self._salesforce(destination, activations, secret)

    def _salesforce(
        self,
        destination: SalesforceJourneyBuilderDestination,
        activations: Sequence[Activation],
        client_secret: str,
    ) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        for activation in activations:
            token = self._token(destination, client_secret)
            if isinstance(token, DeliveryResult):
                # The token failed: every activation in this call fails the same way.
                ids = tuple(a.id for a in activations[len(results) :])
                return [*results, DeliveryResult(ids, token.outcome, token.result, None)]
            request = presets.salesforce_event_request(destination, activation, token)
            delivered = self._exchange(destination, request)
            if delivered.outcome.status == 401:
                # Tokens can die before expires_in (revoked, rotated secret): renew once.
                self.tokens.invalidate(presets.salesforce_token_key(destination))
                token = self._token(destination, client_secret)
                if isinstance(token, DeliveryResult):
                    results.append(
                        DeliveryResult((activation.id,), token.outcome, token.result, None)
                    )
                    continue
                request = presets.salesforce_event_request(destination, activation, token)
                delivered = self._exchange(destination, request)
            results.append(delivered)
        return results

    def _token(
        self, destination: SalesforceJourneyBuilderDestination, client_secret: str
    ) -> str | DeliveryResult:
        key = presets.salesforce_token_key(destination)
        cached = self.tokens.get(key)
        if cached is not None:
            return cached
        request = presets.salesforce_token_request(destination, client_secret)
        result = self._send(destination, request)
        outcome = classify(result, self._now())
        if outcome.verdict != "delivered":
            # A 410 from the auth server says nothing about the journey: plain failure.
            verdict = "failed" if outcome.verdict == "disable" else outcome.verdict
            failed = Outcome(
                verdict, f"token: {outcome.reason}", outcome.status, outcome.retry_after_s
            )
            return DeliveryResult((), failed, result, None)
        try:
            token, expires_in = presets.parse_salesforce_token(result.body)
        except ValueError as err:
            return DeliveryResult(
                (), Outcome("retry", f"token: {err}", result.status), result, None
            )
        self.tokens.put(key, token, expires_in)
        return token

    def _exchange(self, destination: AnyDestination, request: PreparedRequest) -> DeliveryResult:
        result = self._send(destination, request)
        return DeliveryResult(
            request.activation_ids, classify(result, self._now()), result, request
        )

    def _send(self, destination: AnyDestination, request: PreparedRequest) -> HttpResult:
        return self._transport(
            request,
            connect_timeout=destination.timeout.connect,
            total_timeout=destination.timeout.total,
            allow_private_network=destination.allow_private_network,
            allow_loopback_http=self._allow_loopback_http,
            resolver=self._resolver,
        )
