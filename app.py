#!/usr/bin/env python3
"""CDK app: `npx cdk synth` / `npx cdk deploy` run this (see cdk.json).

The config file is `beacon.yaml`, or `-c beacon:config=path/to/file.yaml`. An
invalid file fails synth with the line at fault (exit status 1).
"""

from __future__ import annotations

import sys

import aws_cdk as cdk
import cdk_nag

from functions.shared.config import ConfigError, load_config
from infra.stack import BeaconStack
from infra.topology import TOPOLOGY

CONFIG_CONTEXT = "beacon:config"
DEFAULT_CONFIG = "beacon.yaml"

app = cdk.App()
config_path = app.node.try_get_context(CONFIG_CONTEXT) or DEFAULT_CONFIG
try:
    config = load_config(config_path)
except ConfigError as err:
    print(err, file=sys.stderr)
    sys.exit(1)
except FileNotFoundError:
    print(f"Beacon configuration {config_path} not found", file=sys.stderr)
    sys.exit(1)

BeaconStack(app, "Beacon", topology=TOPOLOGY, config=config, config_path=config_path)
# cdk-nag 3 is a CDK policy-validation plugin (no longer an aspect): any
# unacknowledged AwsSolutions finding fails synth with a report.
cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app, verbose=True))
app.synth()
