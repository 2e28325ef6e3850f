#!/usr/bin/env bash
# Fetch Debian wallpaper photos (mate-backgrounds, gnome-backgrounds) into a cache folder for the
# robustness benchmark and tests. The photos are never committed; this script re-creates them.
set -euo pipefail
cache="${HAECHI_WALLPAPERS:-${XDG_CACHE_HOME:-$HOME/.cache}/haechi/wallpapers}"
if [ -f "$cache/.done" ]; then echo "$cache"; exit 0; fi
mkdir -p "$cache/debs" "$cache/root"
cd "$cache/debs"
for pkg in mate-backgrounds gnome-backgrounds; do
  ls "$pkg"_*.deb >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get download "$pkg" >/dev/null; }
done
for deb in *.deb; do dpkg -x "$deb" "$cache/root"; done
touch "$cache/.done"
echo "$cache"
