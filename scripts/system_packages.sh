#!/usr/bin/env bash
# Install the Debian packages listed in scripts/apt-packages.txt that are missing (root only; idempotent).
# Sourced by setup_env.sh for the test flavour. Non-root users get one line naming what is missing.
set -euo pipefail
list="$(dirname "${BASH_SOURCE[0]}")/apt-packages.txt"
missing=()
while read -r pkg _; do
  [ -z "$pkg" ] || [ "${pkg:0:1}" = "#" ] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$list"
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "cam_guard: not root, so these Debian packages stay missing and their tests skip: ${missing[*]}" >&2
  fi
fi
