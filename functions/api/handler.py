"""Read/admin API Lambda: profiles, consent history, export, erasure, experiment reports
(admin key).

Its own function, so the ingest bundle stays small and ingest's role never
reads personal data. Thin: check the key, call `People`, answer JSON.
"""

from __future__ import annotations

import hmac
import urllib.parse
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.archive_data import ArchiveData
from functions.api.consent_data import ConsentData
from functions.api.delivery_data import DeliveryData
from functions.api.experiment_reports import ExperimentReports
from functions.api.identity_data import IdentityData
from functions.api.links import Links
from functions.api.people import People
from functions.api.profile_data import ProfileData
from functions.api.settings import ApiSettings
from functions.experiments.book import ExperimentBook
from functions.shared.config import BeaconConfig, load_config
from functions.shared.dal.archive_athena import AthenaArchive, AthenaHistory
from functions.shared.dal.archive_store import ArchiveStore
from functions.shared.dal.consent_store import ConsentStore
from functions.shared.dal.deliveries_store import DeliveriesStore
from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import IdentityStore
from functions.shared.dal.kinesis import KinesisWriter
from functions.shared.dal.profiles_store import ProfilesStore
from functions.shared.dal.secrets import secret_value
from functions.shared.observability import logger, metrics, tracer
from functions.shared.ports import EventArchive
from functions.shared.untrusted_json import strict_dumps


@cache
def config() -> BeaconConfig:
    return load_config(ApiSettings().config_file)


@cache
def people() -> People:
    settings = ApiSettings()
    salt = secret_value(config().consent.identifier_salt_secret).encode()
    return People(
        identity=IdentityData(IdentityStore(DynamoTable(settings.identity_table)), salt),
        consent=ConsentData(ConsentStore(DynamoTable(settings.consent_table))),
        others=(profile_data(), delivery_data(), archive_data()),
        salt=salt,
    )


def athena_history(bucket: str) -> EventArchive:
    """Deployed: export through Athena, erasure by the archive-erasure job. The local
    stack hands the files themselves instead (infra/local/firehose.py)."""
    return AthenaHistory(ArchiveStore(bucket), AthenaArchive(timeout_s=20))


archive_history: Callable[[str], EventArchive] = athena_history


@cache
def archive_data() -> ArchiveData:
    return ArchiveData(archive_history(ApiSettings().archive_bucket))


@cache
def delivery_data() -> DeliveryData:
    return DeliveryData(DeliveriesStore(DynamoTable(ApiSettings().deliveries_table)))


@cache
def profile_data() -> ProfileData:
    settings = ApiSettings()
    return ProfileData(ProfilesStore(DynamoTable(settings.profiles_table)), config().segments)


@cache
def experiment_reports() -> ExperimentReports:
    settings = ApiSettings()
    return ExperimentReports(
        ExperimentBook.from_config(config()), ProfilesStore(DynamoTable(settings.profiles_table))
    )


def _json(status: int, payload: dict[str, Any]) -> Response[str]:
    # Every answer is strict JSON: whatever a profile holds, no `Infinity` or `NaN`.
    return Response(status, "application/json", strict_dumps(payload))


def _unauthorized() -> Response[str]:
    return _json(401, {"error": "an admin key is required: Authorization: Bearer <key>"})


@cache
def links() -> Links:
    settings = ApiSettings()
    return Links(
        store=IdentityStore(DynamoTable(settings.identity_table)),
        commands=KinesisWriter(settings.consented_stream),
    )


@cache
def app() -> APIGatewayHttpResolver:
    resolver = APIGatewayHttpResolver()

    def authorized() -> bool:
        auth = resolver.current_event.headers.get("authorization") or ""
        expected = secret_value(config().admin.admin_key_secret)
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    def admin(view: Callable[..., Response[str]]) -> Callable[..., Response[str]]:
        """Every route needs the admin key; path parameters arrive URL-decoded."""

        def guarded(**params: str) -> Response[str]:
            if not authorized():
                return _unauthorized()
            try:
                return view(**{k: urllib.parse.unquote(v) for k, v in params.items()})
            except ValueError as err:
                return _json(400, {"error": str(err)})

        return guarded

    def found(payload: dict[str, Any] | None, missing: str) -> Response[str]:
        if payload is None:
            return _json(404, {"error": missing})
        return _json(200, payload)

    @resolver.get("/v1/profiles/<ref>")
    @admin
    def get_profile(ref: str) -> Response[str]:
        # A 200 always carries a profile id: a caller waiting for 200 (identity still
        # catching up) must not read a profile that does not exist yet.
        lookup = people().profile(ref)
        if lookup.profile is None:
            return _json(404, {"error": f"no profile for {ref}", "known": lookup.known})
        return _json(200, lookup.profile)

    @resolver.get("/v1/profiles/<ref>/consent")
    @admin
    def get_consent(ref: str) -> Response[str]:
        return found(people().consent_history(ref), f"no profile for {ref}")

    @resolver.get("/v1/profiles/<ref>/deliveries")
    @admin
    def get_deliveries(ref: str) -> Response[str]:
        person = people().find(ref)
        if not person.profile_ids:
            return _json(404, {"error": f"no profile for {ref}"})
        return _json(200, {"identifier": ref, "deliveries": delivery_data().history(person)})

    @resolver.get("/v1/profiles/<ref>/export")
    @admin
    def export_profile(ref: str) -> Response[str]:
        return found(people().export(ref), f"no profile for {ref}")

    @resolver.get("/v1/segments")
    @admin
    def list_segments() -> Response[str]:
        return _json(200, {"segments": profile_data().segments()})

    @resolver.get("/v1/experiments")
    @admin
    def list_experiments() -> Response[str]:
        return _json(200, {"experiments": experiment_reports().all()})

    @resolver.get("/v1/experiments/<name>")
    @admin
    def get_experiment(name: str) -> Response[str]:
        return found(experiment_reports().one(name), f"no experiment {name}")

    @resolver.get("/v1/identity/suggestions")
    @admin
    def list_suggestions() -> Response[str]:
        return _json(200, {"suggestions": links().open()})

    @resolver.post("/v1/identity/suggestions/<a>/<b>/<decision>")
    @admin
    def decide_suggestion(a: str, b: str, decision: str) -> Response[str]:
        return found(links().decide(a, b, decision), f"no suggested link between {a} and {b}")

    @resolver.delete("/v1/profiles/<ref>")
    @admin
    def erase_profile(ref: str) -> Response[str]:
        result = people().erase(ref)
        logger.info("erasure", extra={"records_deleted": result["records_deleted"]})
        return _json(200, result)

    return resolver


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app().resolve(event, context)
