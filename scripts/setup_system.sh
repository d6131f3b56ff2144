#!/usr/bin/env bash
# System packages Octavia needs: media tools, espeak-ng, Apertium and its language pairs.
# `--bench` adds what `make bench` needs (wrk, the HTTP load generator).
# Idempotent: does nothing (in well under a second) when everything is installed.
set -euo pipefail
PACKAGES=(ffmpeg espeak-ng sox apertium apertium-eng-spa apertium-es-pt apertium-fr-es apertium-spa-ita
          apertium-spa-cat apertium-eng-cat)
[ "${1:-}" = "--bench" ] && PACKAGES+=(wrk)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
