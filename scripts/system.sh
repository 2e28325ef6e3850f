# Sourced by scripts/demo and scripts/test: the Debian packages a command needs, installed when
# missing (as root, through apt), or else one sentence naming them and how to install them.
# Usage: need_debian "WHO NEEDS THEM" "PACKAGE|CHECK" ...  (CHECK is a shell test that passes
# when the package is already there).
need_debian() {
  local who="$1" missing=() item
  shift
  for item in "$@"; do
    eval "${item#*|}" >/dev/null 2>&1 || missing+=("${item%%|*}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$who needs Debian's package(s) ${missing[*]}; install them with:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing Debian's ${missing[*]} for $who (apt-get, once) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What every command needs: Python 3.11+ with venv (Debian keeps ensurepip in python3-venv).
need_debian "Haechi" \
  "python3|command -v python3" \
  "python3-venv|python3 -c 'import ensurepip, venv'"
