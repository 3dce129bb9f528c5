#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Calls across network namespaces that this test creates itself: alice and
bob live in two namespaces with no route between them; parley-server and a
real coturn live in a third (which does not forward). A call can only
connect through the TURN relay, with credentials from the server's
endpoint. Then the link of one peer goes down for 3 s mid-call, and later its
address changes for good (a move to another network); both times the call
must recover by itself. At the end, a hangup releases the call's relay
allocations on the TURN server instead of leaving them to expire. Needs root
(CI runs as root); skips otherwise. TAP output."""

import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from calltest import (Server, Tap, Users, cleanup_workdir, diag, tone_seen,  # noqa: E402
                      unexpected_warnings, workdir)

TURN_SECRET = "netns-test-turn-secret"
TURN_TTL_S = 6

tap = Tap()
if os.geteuid() != 0:
    tap.skip_all("network namespaces need root (CI runs as root)")
for tool in ("ip", "turnserver"):
    if shutil.which(tool) is None:
        tap.skip_all(f"{tool} is not installed")

tag = str(os.getpid())
ns = {"alice": f"parley-a{tag}", "bob": f"parley-b{tag}", "relay": f"parley-t{tag}"}
veth = {"alice": (f"pva{tag}", f"pta{tag}"), "bob": (f"pvb{tag}", f"ptb{tag}")}
RELAY_IP = "10.77.9.1"
nets = {"alice": ("10.77.1.2", "10.77.1.1"), "bob": ("10.77.2.2", "10.77.2.1")}


def ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=20)


def setup_namespaces():
    for n in ns.values():
        ip("netns", "add", n)
        ip("-n", n, "link", "set", "lo", "up")
    ip("-n", ns["relay"], "addr", "add", f"{RELAY_IP}/32", "dev", "lo")
    for user in ("alice", "bob"):
        inner, outer = veth[user]
        addr, gw = nets[user]
        ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        ip("link", "set", inner, "netns", ns[user])
        ip("link", "set", outer, "netns", ns["relay"])
        ip("-n", ns[user], "addr", "add", f"{addr}/24", "dev", inner)
        ip("-n", ns[user], "link", "set", inner, "up")
        ip("-n", ns["relay"], "addr", "add", f"{gw}/24", "dev", outer)
        ip("-n", ns["relay"], "link", "set", outer, "up")
        ip("-n", ns[user], "route", "add", f"{RELAY_IP}/32", "via", gw)
    # Routes to each other's subnet exist, so that only the relay namespace's refusal to
    # forward keeps the peers apart (as a NAT or firewall would).
    ip("-n", ns["alice"], "route", "add", "10.77.2.0/24", "via", nets["alice"][1])
    ip("-n", ns["bob"], "route", "add", "10.77.1.0/24", "via", nets["bob"][1])
    subprocess.run(["ip", "netns", "exec", ns["relay"], "sysctl", "-q", "-w",
                    "net.ipv4.ip_forward=0"], check=True, timeout=20)


def cleanup_namespaces():
    for n in ns.values():
        subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)


def start_turn(work):
    log = open(os.path.join(work, "turn.log"), "ab")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns["relay"], "turnserver", "-n",
         f"--listening-ip={RELAY_IP}", f"--relay-ip={RELAY_IP}", "--listening-port=3478",
         "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}", "--realm=parley.test",
         "--no-tls", "--no-dtls", "--no-tcp-relay", "--no-cli",
         f"--db={work}/turndb", f"--pidfile={work}/turn.pid", "--min-port=50000",
         # -v: the log names each allocation and each deallocation (a refresh with
         # lifetime 0), which the last test counts.
         "--max-port=50999", "--log-file=stdout", "--simple-log", "-v"],
        stdout=log, stderr=subprocess.STDOUT)
    return proc


def turn_sessions(path, offset):
    """The TURN sessions that allocated, and those that deallocated (a refresh with lifetime 0),
    in the TURN server's log from byte offset on."""
    allocated, freed = set(), set()
    with open(path, "rb") as f:
        f.seek(offset)
        for line in f.read().decode(errors="replace").splitlines():
            m = re.search(r"session (\d+): .*ALLOCATE processed, success", line)
            if m:
                allocated.add(m.group(1))
            m = re.search(r"session (\d+): refreshed, .*lifetime=0", line)
            if m:
                freed.add(m.group(1))
    return allocated, freed


def is_relay(e, side):
    return e.get(f"{side}CandidateType") == "relay" and \
        e.get(f"{side}Address", "").startswith(RELAY_IP + ":")


def relay_pair(proc, start=0, timeout=15):
    """A stats line whose selected pair goes through the relay (either candidate)."""
    return proc.wait_for(lambda e: e.get("event") == "stats" and e.get("bytesReceived", 0) > 0
                         and (is_relay(e, "local") or is_relay(e, "remote")), timeout, start)


def relay_only_pair(proc, start=0, timeout=15):
    """A stats line whose own (local) candidate is a relay one: what --relay-only promises."""
    return proc.wait_for(lambda e: e.get("event") == "stats" and e.get("bytesReceived", 0) > 0
                         and is_relay(e, "local"), timeout, start)


work = workdir("parley-netns-")
turn = server = users = None
try:
    cleanup_namespaces()
    setup_namespaces()
    tap.ok(subprocess.run(["ip", "netns", "exec", ns["alice"], "ping", "-c", "1", "-W", "1",
                           nets["bob"][0]], capture_output=True).returncode != 0,
           "alice's namespace has no path to bob's")
    turn = start_turn(work)
    server = Server(work, netns=ns["relay"], host=RELAY_IP,
                    turn_uris=f"turn:{RELAY_IP}:3478?transport=udp",
                    env={"PARLEY_TURN_SECRET": TURN_SECRET,
                         "PARLEY_TURN_TTL": str(TURN_TTL_S)}).start()
    users = Users(server, work, netns={"alice": ns["alice"], "bob": ns["bob"]})
    users.register("alice", "bob")

    # 1. The call connects through the relay only.
    bob = users.spawn("bob", "listen", "--auto-answer", "--test-media", "--tone", "660",
                      "--stats-interval", "500")
    tap.ok(bob.wait_event("connected", 15), "bob connects from his namespace", diag(bob))
    alice = users.spawn("alice", "call", "bob", "--audio-only", "--test-media", "--tone", "440",
                        "--stats-interval", "500")
    active = alice.wait_event("call-state", 30, state="active")
    tap.ok(active and bob.wait_event("call-state", 30, state="active"),
           "the call between namespaces without a route connects", diag(alice, bob))
    tap.ok(relay_pair(alice) and relay_pair(bob),
           "both ends' selected candidate pair goes through the relay", diag(alice, bob))
    tap.ok(tone_seen(bob, 440) and tone_seen(alice, 660),
           "tones arrive both ways through the relay", diag(alice, bob))
    # The call's direct data link (ParleyLink) gets the call's TURN server and credentials:
    # with no route between the namespaces, its round trips can only go through the relay.
    pmark = alice.mark()
    r = users.control("alice", "link-ping 20")
    p = alice.wait_event("dc-ping", 30, pmark, path="link") if r.returncode == 0 else None
    tap.ok(p and p.get("received", 0) >= 18,
           "round trips over the call's data link go through the relay", diag(alice, bob))

    # 2. The link of alice goes down for 3 s; the call recovers by itself.
    amark, bmark = alice.mark(), bob.mark()
    inner = veth["alice"][0]
    ip("-n", ns["alice"], "link", "set", inner, "down")
    down_at = time.monotonic()
    reconnecting = alice.wait_event("call-state", 10, amark, state="reconnecting")
    remaining = 3.0 - (time.monotonic() - down_at)
    if remaining > 0:
        # The outage itself lasts 3 s; this is the fault being injected, not a wait for a result.
        time.sleep(remaining)
    ip("-n", ns["alice"], "link", "set", inner, "up")
    ip("-n", ns["alice"], "route", "replace", f"{RELAY_IP}/32", "via", nets["alice"][1])
    tap.ok(reconnecting, "alice's call goes to reconnecting while her link is down", diag(alice))
    back = alice.wait_event("call-state", 45, amark, state="active")
    tap.ok(back and back.get("callId") == active.get("callId"),
           "the same call is active again after the link returns", diag(alice, bob))
    tap.ok(bob.wait_event("call-state", 45, bmark, state="active") or
           not bob.select("call-state", state="ended"),
           "bob's side of the call is active again", diag(bob))
    later_a, later_b = alice.mark(), bob.mark()
    tap.ok(tone_seen(bob, 440, later_b, 30) and tone_seen(alice, 660, later_a, 30),
           "media flows both ways again without user action", diag(alice, bob))
    tap.ok(not alice.select("call-state", state="ended") and
           not bob.select("call-state", state="ended"),
           "the call never ended during the outage", diag(alice, bob))
    # The call's direct data link is offered afresh on the recovered connection.
    pmark = alice.mark()
    r = users.control("alice", "link-ping 20")
    p = alice.wait_event("dc-ping", 30, pmark, path="link") if r.returncode == 0 else None
    tap.ok(p and p.get("received", 0) >= 18,
           "round trips over the call's data link work again after the outage",
           diag(alice, bob))

    # 2b. A network change: alice's address changes for good mid-call (a laptop moving to
    # another network). Her connection to the server and the relay's allocation die with the
    # old address; the call must find its way back by itself, on the new one.
    amark, bmark = alice.mark(), bob.mark()
    old_addr, gw = nets["alice"]
    new_addr = "10.77.1.3"
    ip("-n", ns["alice"], "addr", "del", f"{old_addr}/24", "dev", inner)
    ip("-n", ns["alice"], "addr", "add", f"{new_addr}/24", "dev", inner)
    ip("-n", ns["alice"], "route", "replace", f"{RELAY_IP}/32", "via", gw)
    ip("-n", ns["alice"], "route", "replace", "10.77.2.0/24", "via", gw)
    changed_at = time.monotonic()
    tap.ok(alice.wait_event("call-state", 15, amark, state="reconnecting"),
           "alice's call goes to reconnecting when her address changes", diag(alice))
    back = alice.wait_event("call-state", 45, amark, state="active")
    tap.ok(back and back.get("callId") == active.get("callId"),
           "the same call is active again on the new address "
           f"({time.monotonic() - changed_at:.1f} s after the change)", diag(alice, bob))
    later_a, later_b = alice.mark(), bob.mark()
    tap.ok(tone_seen(bob, 440, later_b, 30) and tone_seen(alice, 660, later_a, 30),
           "media flows both ways after the network change", diag(alice, bob))
    tap.ok(not alice.select("call-state", state="ended") and
           not bob.select("call-state", state="ended"),
           "the call never ended during the network change", diag(alice, bob))
    users.control("alice", "hangup")
    alice.wait_event("call-state", 15, state="ended")
    alice.wait_exit(10)

    # 3. Credentials expire: the next call fetches fresh ones (the relay is the only path).
    # Let the credentials the running listener fetched before the first call expire: time
    # passing is the condition under test here.
    time.sleep(TURN_TTL_S + 1)
    bmark = bob.mark()
    turn_log = os.path.join(work, "turn.log")
    turn_mark = os.path.getsize(turn_log)
    alice = users.spawn("alice", "call", "bob", "--audio-only", "--relay-only", "--test-media",
                        "--tone", "440", "--stats-interval", "500")
    tap.ok(alice.wait_event("call-state", 30, state="active") and
           relay_only_pair(alice) and tone_seen(bob, 440, bmark),
           "after the TURN credentials expired a new relay-only call still connects",
           diag(alice, bob))
    users.control("alice", "hangup")
    alice.wait_exit(15)

    # 4. That hangup released the call's relay allocations (both ends' media and data link)
    # on the TURN server rather than leaving them there until they expire. The server's log
    # is the only signal: it is read again until it says so, 10 s at most.
    ended = bob.wait_event("call-state", 15, bmark, state="ended")
    deadline = time.monotonic() + 10
    while True:
        allocated, freed = turn_sessions(turn_log, turn_mark)
        if (allocated and allocated <= freed) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    tap.ok(ended and allocated and allocated <= freed,
           "the hangup releases the call's TURN allocations instead of leaving them to expire",
           f"allocated {len(allocated)}, not released: {sorted(allocated - freed)}\n" +
           diag(alice, bob))
    bob.stop()
    users.stop_all()
    bad = unexpected_warnings(work)
    tap.ok(not bad, "no peer logged an unexpected warning or critical", "\n".join(bad[:10]))
except Exception as e:  # noqa: BLE001 - any failure of the harness fails the test
    tap.ok(False, "the test ran to the end", repr(e))
finally:
    if users:
        users.stop_all()
    if server:
        server.stop()
    if turn:
        turn.terminate()
        turn.wait(10)
    cleanup_namespaces()
    if tap.failed == 0:
        cleanup_workdir(work)
    else:
        print(f"# logs kept in {work}", flush=True)

sys.exit(tap.done())
