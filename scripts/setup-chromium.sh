#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Sets up the browser peers of Parley's call interop tests and call
# benchmark (tests/interop): Debian's chromium (and nodejs/npm when `node`
# or `npm` is missing), then playwright-core, the version pinned by
# tests/interop/package-lock.json, into DIR:
#
#   scripts/setup-chromium.sh [DIR]        (default: <build>/interop-node,
#                                           <build> being $MESON_BUILD_ROOT
#                                           or build/)
#
# The test driver finds the modules through PARLEY_INTEROP_MODULES=DIR (the
# meson tests set it). Running it again with an unchanged lock file only
# checks that everything is there.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
src="$top/tests/interop"

if [ $# -gt 1 ]; then
  echo "usage: $0 [DIR]" >&2
  exit 2
fi
dir=${1:-${MESON_BUILD_ROOT:-$top/build}/interop-node}
if [ -z "$dir" ]; then
  echo "usage: $0 [DIR]" >&2
  exit 2
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
updated=
apt_install() {
  if [ -z "$updated" ]; then
    "${sudo_cmd[@]}" apt-get update -q
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "$@"
}

# Debian's chromium package installs the launcher /usr/bin/chromium that
# the driver starts.
if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium"
  apt_install chromium
fi

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian's ${missing[*]}"
  apt_install "${missing[@]}"
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ -f "$dir/node_modules/playwright-core/package.json" ] &&
   cmp -s "$src/package-lock.json" "$dir/package-lock.json" &&
   cmp -s "$src/package.json" "$dir/package.json"; then
  echo "playwright-core already installed in $dir"
else
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  # `npm ci` installs exactly what the lock file records (from npm's cache
  # when it has it) and never rewrites the lock file.
  (cd "$dir" && npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error)
fi

if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
  echo "$0: npm did not install playwright-core into $dir" >&2
  exit 1
fi
version=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/playwright-core/package.json")
echo "playwright-core $version installed in $dir (node $(node --version)," \
  "$(/usr/bin/chromium --version 2>/dev/null | head -n 1))"
