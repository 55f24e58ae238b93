#!/usr/bin/env bash
# Run RLHF Audit Trail on its embedded defaults (SQLite, local files, built-in local TSA).
#   scripts/run.sh                 set up, initialise the home and show the log's status
#   scripts/run.sh append FILE     any rlhf-audit command, after the same set-up
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/rlhf-audit init
if [ "$#" -eq 0 ]; then set -- status; fi
exec .venv/bin/rlhf-audit "$@"
