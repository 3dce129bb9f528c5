#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs what is missing, builds Parley, starts a local parley-server on
# its embedded SQLite database and runs a short demo: two users, alice and
# bob, chat and call each other with parley-cli. The server keeps running
# until Ctrl-C.
# Usage: scripts/run.sh [--demo-only]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build="$top/build"
data=${PARLEY_DATA_DIR:-"${XDG_DATA_HOME:-$HOME/.local/share}/parley-demo"}
port=${PARLEY_PORT:-8421}

"$here/setup.sh" "$build"

server="$build/src/server/parley-server"
cli="$build/src/cli/parley-cli"
mkdir -p "$data"

"$server" --port "$port" --database "$data/parley.db" > "$data/server.out" 2> "$data/server.log" &
server_pid=$!
listen_pid=
cleanup() {
  [ -n "$listen_pid" ] && kill "$listen_pid" 2>/dev/null || true
  kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for _ in $(seq 100); do
  grep -q "listening on port" "$data/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
url="http://127.0.0.1:$port"
echo "parley-server is running at $url (database $data/parley.db, log $data/server.log)"

as() {
  local user=$1; shift
  PARLEY_PASSWORD="demo password for $user" "$cli" --server "$url" --profile "$data/$user" "$@"
}

for user in alice bob; do
  as "$user" register "$user" >/dev/null 2>&1 || true   # already registered on a second run
  as "$user" login "$user"
done

echo
echo "bob listens; alice writes to him:"
as bob listen --count 2 --timeout 20 &
listen_pid=$!
as alice send bob "Hello Bob, this is Parley."
as alice send bob "Messages are stored durably before they are acknowledged."
wait "$listen_pid" || true
listen_pid=
echo
echo "alice's conversations:"
as alice conversations

echo
echo "alice calls bob for 3 seconds (test tone and pattern; bob answers automatically):"
as bob listen --auto-answer --test-media --tone 660 --calls 1 --timeout 30 \
  --stats-interval 0 > "$data/bob-call.jsonl" &
listen_pid=$!
for _ in $(seq 100); do
  grep -q '"event":"connected"' "$data/bob-call.jsonl" 2>/dev/null && break
  sleep 0.1
done
as alice call bob --test-media --tone 440 --duration 3 --stats-interval 0 |
  grep -E '"(call-state|first-remote-frame)"|"kind":"audio"' || true
wait "$listen_pid" || true
listen_pid=

if [ "${1:-}" = "--demo-only" ]; then
  exit 0
fi
echo
echo "The server keeps running; try for example:"
echo "  PARLEY_PASSWORD='demo password for bob' $cli --server $url --profile $data/bob send alice 'Hi!'"
echo "Press Ctrl-C to stop it."
wait "$server_pid"
