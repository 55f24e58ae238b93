#!/usr/bin/env bash
# Create .venv and install the project with its test tools and the ML extra; a no-op when
# nothing changed. torch is installed first and on its own: a bare requirement would pull a
# multi-GB CUDA build where a CPU build is at hand (RLHF_AUDIT_TORCH overrides the pin).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="${RLHF_AUDIT_EXTRAS:-test,ml}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# setup.py and the C sources it builds (ledger/_jcs.c, _merkle.c) count too: a changed C file is rebuilt.
stamp=".venv/.installed-$( (cat pyproject.toml setup.py ledger/_jcs.c ledger/_merkle.c; echo "$EXTRAS") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing RLHF Audit Trail [$EXTRAS] into .venv (first run only; a few minutes)" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [[ ",$EXTRAS," == *",ml,"* ]] && ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "${RLHF_AUDIT_TORCH:-torch==2.13.0}"
  fi
  .venv/bin/python -m pip install --quiet -e ".[$EXTRAS]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
