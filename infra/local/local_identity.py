"""Who is who on the local stack's moto, which enforces IAM (docs/deploy.md).

The admin identity is an IAM user that the moto process creates before it
answers its first request, with these fixed keys, so that the local stack, a
restarted stack on a kept `beacon moto`, the `beacon` operator commands and the
AWS CLI (`--endpoint-url`) can all act as the operator. Each function acts as
its own role instead (`infra/local/iam.py`).
"""

from __future__ import annotations

ACCOUNT = "123456789012"  # moto's default account
ADMIN_USER = "beacon-local-admin"
ADMIN_ACCESS_KEY_ID = "AKIABEACONLOCALADMIN"
ADMIN_SECRET_ACCESS_KEY = "local-admin-secret-not-a-real-one"  # noqa: S105 - moto only
ADMIN_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
)
