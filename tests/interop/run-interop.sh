#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Starts a real parley-server (port 0, a temporary database) and runs
# parley-interop.mjs against it:
#
#   run-interop.sh selftest            Chromium calls Chromium (exit code)
#   run-interop.sh bench [--calls N]   the call set-up benchmark
#   run-interop.sh peer ...            one browser peer (docs/interop.md)
#
# Exits 77 (skipped) when node, Chromium or playwright-core is missing;
# scripts/setup-chromium.sh DIR installs them, PARLEY_INTEROP_MODULES=DIR
# tells where playwright-core is.
set -u

here=$(cd "$(dirname "$0")" && pwd)
server_bin=${PARLEY_SERVER:?PARLEY_SERVER must name the parley-server binary}
chromium=${PARLEY_CHROMIUM:-/usr/bin/chromium}
modules=${PARLEY_INTEROP_MODULES:-}

skip() { echo "SKIP: $1 (run scripts/setup-chromium.sh)"; exit 77; }
command -v node >/dev/null 2>&1 || skip "node is missing"
[ -x "$chromium" ] || skip "$chromium is missing"
if [ -z "$modules" ] || [ ! -f "$modules/node_modules/playwright-core/package.json" ]; then
  skip "playwright-core is missing in ${modules:-\$PARLEY_INTEROP_MODULES}"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/parley-interop-XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  exec 3<&- 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Cheap password hashing: the tests log in a few users, fast.
printf '[auth]\nargon2-ops=1\nargon2-mem-kib=8\n' > "$dir/parley.conf"
mkfifo "$dir/server.fifo"
"$server_bin" --port 0 --config "$dir/parley.conf" --database "$dir/parley.db" \
  > "$dir/server.fifo" 2> "$dir/server.log" &
server_pid=$!
exec 3< "$dir/server.fifo"
if ! read -r -t 10 line <&3; then
  echo "the server did not start:"
  sed 's/^/  /' "$dir/server.log"
  exit 1
fi
url="http://127.0.0.1:${line##* }"

node "$here/parley-interop.mjs" "$1" --server "$url" "${@:2}"
status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
  echo "# the server's log ends with:"
  tail -n 20 "$dir/server.log" | sed 's/^/# server: /'
fi
exit "$status"
