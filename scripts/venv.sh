# Sourced by scripts/demo and scripts/test: make sure .venv exists with Haechi installed in it.
# Re-installs only when setup.cfg changed since the last install, so repeated runs start fast.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/system.sh"
venv="$root/.venv"
extras="${HAECHI_EXTRAS:-}"
stamp="$venv/.haechi-installed${extras:+-$extras}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$root/setup.cfg" -nt "$stamp" ]; then
  echo "Installing Haechi${extras:+ with its $extras tools} and its packages into $venv" \
       "(the first time takes a few minutes) ..." >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # One line per package as pip takes it, so a first run is never minutes of silence.
  "$venv/bin/python" -m pip install --progress-bar off -e "$root${extras:+[$extras]}" 2>&1 \
    | sed -u -n -e 's/^Collecting \([^ ]*\).*/  getting \1/p' -e 's/^Successfully installed.*/  installed./p' \
      -e '/^ERROR/p' -e '/rror:/p' >&2
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
