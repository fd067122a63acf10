#!/usr/bin/env bash
# Installs the pinned client libraries that tests/clients.rs runs against ringkv:
#   - RQ, Celery, kombu and redis-py (requirements.txt) into a virtualenv at target/clients-venv
#   - BullMQ (bullmq/package-lock.json) into tests/clients/bullmq/node_modules with `npm ci`
#   - Redlock, ioredis and node-redis (locks/package-lock.json) into tests/clients/locks/node_modules with `npm ci`
# Needs python3 with venv (Debian: python3-venv) and node + npm. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."

python3 -m venv target/clients-venv
target/clients-venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input \
    -r tests/clients/requirements.txt
(cd tests/clients/bullmq && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/clients/locks && npm ci --no-audit --no-fund --loglevel=error)
