#!/usr/bin/env bash
# checkov (Terraform policy scanner) in a venv of its own: its pinned dependencies clash with
# Haechi's. Installed on first use; arguments go to checkov, which is told not to call home.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-checkov"
if [ ! -x "$venv/bin/checkov" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet "checkov==3.3.30" >&2
fi
exec "$venv/bin/checkov" --skip-download --quiet --compact "$@"
