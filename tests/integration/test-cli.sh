#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# End-to-end tests of parley-cli (and so of the client engine) against a
# real parley-server: chat both ways, offline delivery, the outbox across
# a client restart and a server crash. TAP output.
set -u

server_bin=${PARLEY_SERVER:?PARLEY_SERVER must name the parley-server binary}
cli_bin=${PARLEY_CLI:?PARLEY_CLI must name the parley-cli binary}
dir=$(mktemp -d "${TMPDIR:-/tmp}/parley-cli-test-XXXXXX")
server_pid=
bg_pids=()
n=0
failed=0

cleanup() {
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null; done
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  exec 3<&- 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  [ -f "$dir/server.log" ] && tail -n 20 "$dir/server.log" | sed 's/^/# server: /'
}
check() { local what=$1; shift; if "$@" >> "$dir/commands.log" 2>&1; then ok "$what"; else not_ok "$what"; tail -n 5 "$dir/commands.log" | sed "s/^/# /"; fi; }

# Waits (up to $2 seconds) until file $1 has a line matching $3.
wait_for_line() {
  local file=$1 timeout=$2 pattern=$3 deadline=$((SECONDS + $2))
  while ((SECONDS <= deadline)); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

printf '[auth]\nargon2-ops=1\nargon2-mem-kib=8\n' > "$dir/parley.conf"
start_server() {
  rm -f "$dir/server.fifo"
  mkfifo "$dir/server.fifo"
  PARLEY_TURN_SECRET=cli-test-turn-secret PARLEY_TURN_URIS=turn:127.0.0.1:3478?transport=udp \
  G_MESSAGES_DEBUG=all "$server_bin" --port "${1:-0}" --config "$dir/parley.conf" \
    --database "$dir/parley.db" > "$dir/server.fifo" 2>> "$dir/server.log" &
  server_pid=$!
  exec 3< "$dir/server.fifo"
  local line
  if ! read -r -t 10 line <&3; then echo "Bail out! the server did not start"; exit 1; fi
  url="http://127.0.0.1:${line##* }"
}
stop_server() {
  kill "-$1" "$server_pid"
  wait "$server_pid" 2>/dev/null
  server_pid=
  exec 3<&-
}

as() {
  local user=$1; shift
  PARLEY_PASSWORD="password of $user" "$cli_bin" --server "$url" --profile "$dir/$user" "$@"
}

echo "TAP version 13"
start_server

for user in alice bob; do
  check "register $user" as "$user" register "$user"
  check "login $user" as "$user" login "$user"
done
check "a duplicate registration fails with exit code 2" \
  bash -c '! PARLEY_PASSWORD=x12345678 "$0" --server "$1" --profile "$2/x" register alice 2>/dev/null; [ "$(PARLEY_PASSWORD=x12345678 "$0" --server "$1" --profile "$2/x" register alice >/dev/null 2>&1; echo $?)" = 2 ]' \
  "$cli_bin" "$url" "$dir"

# 1. Chat both ways, both online.
as bob listen --count 1 --timeout 20 > "$dir/bob1.jsonl" &
bob_listen=$!; bg_pids+=("$bob_listen")
wait_for_line "$dir/bob1.jsonl" 10 '"event":"connected"'
check "alice sends to bob" as alice send bob "Hello Bob"
wait "$bob_listen"
check "bob receives alice's message" grep -q '"body":"Hello Bob"' "$dir/bob1.jsonl"
check "the first message from a stranger names its sender" grep -q '"from":"alice"' "$dir/bob1.jsonl"
check "every listen line is JSON with a monotonic time" \
  python3 -c 'import json,sys; ts=[json.loads(l)["t"] for l in open(sys.argv[1])]; assert ts and ts == sorted(ts)' "$dir/bob1.jsonl"
check "message ids are time-ordered UUIDs (version 7, of about now)" \
  python3 -c 'import json,sys,time,uuid; ids=[json.loads(l)["id"] for l in open(sys.argv[1]) if "\"id\"" in l]; u=[uuid.UUID(i) for i in ids]; assert u and all(x.version == 7 and x.variant == uuid.RFC_4122 and abs((x.int >> 80) / 1000 - time.time()) < 600 for x in u), ids' "$dir/bob1.jsonl"

as alice listen --count 1 --timeout 20 > "$dir/alice1.jsonl" &
alice_listen=$!; bg_pids+=("$alice_listen")
wait_for_line "$dir/alice1.jsonl" 10 '"event":"connected"'
check "bob answers alice" as bob send alice "Hi Alice"
wait "$alice_listen"
check "alice receives bob's answer" grep -q '"body":"Hi Alice"' "$dir/alice1.jsonl"

# 2. Offline delivery: bob is offline while alice writes three messages.
for i in 1 2 3; do
  check "alice sends offline message $i" as alice send bob "offline $i"
done
as bob listen --count 3 --timeout 20 > "$dir/bob2.jsonl"
check "bob gets the three offline messages in order" \
  bash -c '[ "$(grep -o "\"body\":\"offline [0-9]\"" "$0" | tr -d "\n")" = "\"body\":\"offline 1\"\"body\":\"offline 2\"\"body\":\"offline 3\"" ]' "$dir/bob2.jsonl"

# 3. The outbox survives a client restart while the server is down.
stop_server TERM
as alice send bob "sent while the server was down"
status=$?
check "send without a server queues the message (exit code 3)" test "$status" -eq 3
start_server
check "the next send delivers the queued message and the new one" as alice send bob "after the restart"
as bob listen --count 2 --timeout 20 > "$dir/bob3.jsonl"
check "bob receives the queued message" grep -q '"body":"sent while the server was down"' "$dir/bob3.jsonl"
check "bob receives the new message" grep -q '"body":"after the restart"' "$dir/bob3.jsonl"
as bob history alice > "$dir/bob-history.jsonl"
check "the queued message arrived exactly once" \
  test "$(grep -c '"body":"sent while the server was down"' "$dir/bob-history.jsonl")" -eq 1

# 4. A message the server acknowledged survives kill -9 of the server.
check "alice sends just before the crash" as alice send bob "survives kill -9"
stop_server KILL
start_server
as bob listen --count 1 --timeout 20 > "$dir/bob4.jsonl"
check "bob receives the acknowledged message after the crash" \
  grep -q '"body":"survives kill -9"' "$dir/bob4.jsonl"

# 5. A running client rides out a server restart: it reconnects by itself.
as bob listen --count 1 --timeout 30 > "$dir/bob5.jsonl" &
bob_listen=$!; bg_pids+=("$bob_listen")
wait_for_line "$dir/bob5.jsonl" 10 '"event":"connected"'
port=${url##*:}
stop_server TERM
check "the listener notices the lost connection" \
  wait_for_line "$dir/bob5.jsonl" 10 '"event":"reconnecting"'
start_server "$port"
check "the listener reconnects to the restarted server" \
  bash -c 'deadline=$((SECONDS + 20)); while ((SECONDS <= deadline)); do
             [ "$(grep -c "\"event\":\"connected\"" "$0")" -ge 2 ] && exit 0; sleep 0.05; done; exit 1' \
  "$dir/bob5.jsonl"
check "alice writes after the restart" as alice send bob "after the reconnect"
wait "$bob_listen"
check "the reconnected listener receives it" grep -q '"body":"after the reconnect"' "$dir/bob5.jsonl"

# 6. TURN credentials for the logged-in user.
as alice turn-credentials > "$dir/turn.json"
alice_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["userId"])' \
           "$dir/alice/session.json")
check "turn-credentials names alice in the TURN user name" \
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1]));
assert c["username"].split(":")[1] == sys.argv[2] and c["password"] and c["uris"]' \
  "$dir/turn.json" "$alice_id"

# 7. An expired access token is refreshed (and the refresh token rotated).
python3 - "$dir/parley.db.key" "$dir/alice/session.json" <<'PY'
import base64, hashlib, hmac, json, sys, time
key = open(sys.argv[1], "rb").read()
session = json.load(open(sys.argv[2]))
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
now = int(time.time())
claims = {"sub": session["userId"], "iat": now - 2000, "exp": now - 1000, "jti": "expired"}
body = b64(json.dumps(claims, separators=(",", ":")).encode())
sig = b64(hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest())
session["accessToken"] = head + "." + body + "." + sig
json.dump(session, open(sys.argv[2], "w"))
PY
old_refresh=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["refreshToken"])' \
              "$dir/alice/session.json")
refreshes=$(grep -c "POST /api/refresh" "$dir/server.log")
check "a send with an expired access token succeeds after a refresh" \
  as alice send bob "with a refreshed token"
check "the client did refresh" test "$(grep -c "POST /api/refresh" "$dir/server.log")" -gt "$refreshes"
check "the refresh token was rotated" \
  python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["refreshToken"] != sys.argv[2]' \
  "$dir/alice/session.json" "$old_refresh"

as alice conversations > "$dir/alice-conv.jsonl"
check "alice's conversation with bob is listed" grep -q 'bob' "$dir/alice-conv.jsonl"

# The server logged at debug level all along: no secret and no content in it.
check "the server logged something" test -s "$dir/server.log"
check "the log holds no password" bash -c '! grep -q "password of" "$0"' "$dir/server.log"
for user in alice bob; do
  for key in accessToken refreshToken; do
    secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
             "$dir/$user/session.json" "$key")
    check "the log holds no $key of $user" bash -c '[ ${#1} -gt 20 ] && ! grep -qF "$1" "$0"' \
      "$dir/server.log" "$secret"
  done
done
check "the log holds no message content" \
  bash -c '! grep -qE "Hello Bob|Hi Alice|offline [0-9]|survives kill" "$0"' "$dir/server.log"

check "bad usage exits with 1" bash -c '"$0" --server "$1" frobnicate >/dev/null 2>&1; [ $? -eq 1 ]' "$cli_bin" "$url"

echo "1..$n"
exit $((failed > 0))
