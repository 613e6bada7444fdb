"""Secrets Manager secrets named by the user configuration."""

from __future__ import annotations

from typing import get_args

from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from functions.shared.config import BeaconConfig
from infra.topology import SecretRole

# Long enough to be unguessable, alphanumeric so it pastes into any snippet
# (Basic auth, a query string, analytics.js' `load("...")`) without escaping.
_KEY = secretsmanager.SecretStringGenerator(password_length=32, exclude_punctuation=True)


class Secrets(Construct):
    """One generated secret per source write key, one for the admin key, and the
    IP-hash salt when the config asks for hashing.

    Their names come from the config (the functions look them up by those
    names), so they are fixed physical names, unlike every other resource.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: BeaconConfig, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.write_keys: dict[str, secretsmanager.Secret] = {}
        for source in config.sources:
            self.write_keys[source.name] = self._secret(
                f"WriteKey-{source.name}",
                source.write_key_secret,
                f"Beacon write key of source {source.name!r}",
                key,
            )
        self.admin_key = self._secret(
            "AdminKey", config.admin.admin_key_secret, "Beacon admin key (read API)", key
        )
        self.identifier_salt = self._secret(
            "IdentifierSalt",
            config.consent.identifier_salt_secret,
            "Beacon salt for hashed identifiers and erasure suppressions",
            key,
        )
        # A destination's credential is the user's (a Braze REST key, ...): created with
        # a placeholder value to be replaced (docs/deploy.md), one per secret name.
        self.destinations: dict[str, secretsmanager.Secret] = {}
        for destination in config.destinations:
            name = destination.secret.secret_name
            if name not in self.destinations:
                self.destinations[name] = self._secret(
                    f"Destination-{destination.name}",
                    name,
                    f"Beacon credential of destination {destination.name!r}",
                    key,
                )
        # The key each source's backend signs user ids with for the touchpoint.
        self.identity_verification: dict[str, secretsmanager.Secret] = {}
        for source in config.sources:
            if source.identity_verification_secret:
                self.identity_verification[source.name] = self._secret(
                    f"IdentityVerification-{source.name}",
                    source.identity_verification_secret,
                    f"Beacon identity-verification key of source {source.name!r} (user id HMAC)",
                    key,
                )
        self.ip_hash_salt: secretsmanager.Secret | None = None
        if config.ingest.ip_hash_salt_secret:
            self.ip_hash_salt = self._secret(
                "IpHashSalt", config.ingest.ip_hash_salt_secret, "Beacon IP hash salt", key
            )

    @property
    def all(self) -> tuple[secretsmanager.Secret, ...]:
        return tuple(s for role in get_args(SecretRole) for s in self.by_role(role))

    def by_role(self, role: SecretRole) -> tuple[secretsmanager.Secret, ...]:
        """The secrets a function row's `secrets` role names: exactly those, no more."""
        if role == "write_keys":
            return tuple(self.write_keys.values())
        if role == "admin_key":
            return (self.admin_key,)
        if role == "identifier_salt":
            return (self.identifier_salt,)
        if role == "destinations":
            return tuple(self.destinations.values())
        if role == "identity_verification":
            return tuple(self.identity_verification.values())
        return (self.ip_hash_salt,) if self.ip_hash_salt is not None else ()

    def _secret(
        self, construct_id: str, name: str, description: str, key: kms.IKey
    ) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=name,
            description=description,
            encryption_key=key,
            generate_secret_string=_KEY,
        )
