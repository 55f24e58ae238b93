#!/usr/bin/env bash
# Run the whole test suite (storage tests run on SQLite and on the PostgreSQL at
# RLHF_AUDIT_TEST_PG, default postgresql://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
