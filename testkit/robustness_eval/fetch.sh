#!/usr/bin/env bash
# Fetch the photos of the robustness eval split (testkit/robustness_eval/) from Debian bookworm
# wallpaper packages that the project's own benchmark does not use (scripts/fetch_wallpapers.sh
# takes mate-backgrounds and gnome-backgrounds), into a cache folder, and print that folder.
# Nothing fetched here is ever committed. The generator checks every photo it uses against the
# SHA-256 in manifest.json, so a changed package is noticed, never silently used.
set -euo pipefail
cache="${HAECHI_ROBUSTNESS_PHOTOS:-${XDG_CACHE_HOME:-$HOME/.cache}/haechi/robustness-eval/photos}"
if [ -f "$cache/.done" ]; then echo "$cache"; exit 0; fi
mkdir -p "$cache/debs" "$cache/root"
cd "$cache/debs"
packages="plasma-workspace-wallpapers lomiri-wallpapers lomiri-wallpapers-16.04
lomiri-wallpapers-20.04 ukui-wallpapers lxqt-themes xfdesktop4-data"
for pkg in $packages; do
  ls "$pkg"_*.deb >/dev/null 2>&1 || apt-get download "$pkg" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get download "$pkg" >/dev/null; }
done
for deb in *.deb; do dpkg -x "$deb" "$cache/root"; done
# the extracted tree is what the split needs; the packages themselves (about 150 MB) go
ls *.deb > "$cache/packages.txt"
rm -f ./*.deb
touch "$cache/.done"
echo "$cache"
