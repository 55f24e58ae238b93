#!/usr/bin/env bash
# Run RLHF Audit Trail on its embedded defaults (SQLite, local files, built-in local TSA).
#   scripts/run.sh                 set up, initialise the home, serve on http://127.0.0.1:8000
#   scripts/run.sh append FILE     any rlhf-audit command instead, after the same set-up
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/rlhf-audit init
if [ "$#" -eq 0 ]; then set -- serve; fi
exec .venv/bin/rlhf-audit "$@"
