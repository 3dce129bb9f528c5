#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs the PeerJS server (npm package `peer`, the version pinned by
# tests/bench/peerjs/package-lock.json) into DIR, for the relay benchmark
# that compares parley-server with it:
#
#   scripts/setup-peerjs.sh DIR
#   build/tests/bench/parley-bench --server-binary build/src/server/parley-server \
#     --mode relay --peerjs DIR
#
# Installs Debian's nodejs and npm first when `node` or `npm` is missing.
# Running it again with an unchanged lock file does nothing.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
src="$top/tests/bench/peerjs"
dir=$1

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "Installing Debian's nodejs and npm"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends nodejs npm
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ -f "$dir/node_modules/peer/package.json" ] &&
   cmp -s "$src/package-lock.json" "$dir/package-lock.json" &&
   cmp -s "$src/package.json" "$dir/package.json"; then
  echo "PeerJS server already installed in $dir"
  exit 0
fi

cp "$src/package.json" "$src/package-lock.json" "$dir/"
# `npm ci` installs exactly what the lock file records and never rewrites it.
(cd "$dir" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)

if [ ! -f "$dir/node_modules/peer/package.json" ]; then
  echo "$0: npm did not install the peer package into $dir" >&2
  exit 1
fi
version=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/peer/package.json")
echo "PeerJS server $version installed in $dir (node $(node --version))"
