#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Call benchmark: parley-cli peers (real webrtcbin) through a real
parley-server on loopback, and, when available, two headless Chromium peers
through the same server in the same run, with the ratios.

Prints, over N calls (default 20): ms from `call` to connected and to the
first decoded remote video frame at both ends (median, p90); data channel
ping RTT p50/p99 with media flowing; CPU of each peer during a 640x480
30 fps video call. Every figure comes from the peers' JSON events, whose
times are CLOCK_MONOTONIC milliseconds shared by all processes here.

Usage: bench-calls.py [--calls N] [--cpu-seconds S] [--pings N] [--no-chromium]
Chromium needs /usr/bin/chromium and PARLEY_INTEROP_MODULES (scripts/setup-chromium.sh)."""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "integration"))
from calltest import Server, Users, cleanup_workdir, workdir  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(values) - 1)
    return values[f] + (values[c] - values[f]) * (k - f)


def cpu_ticks(pid):
    """utime + stime of a process and its (waited-for) children, in ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15])


def cli_pid(proc):
    return proc.proc.pid


def floor_rtt(count, realtime=False, sctp=False):
    """The bare UDP round trip between two other processes (bench-udp-rtt), at the
    pings' interval: the floor under any data channel round trip at that moment.
    With realtime, both run under SCHED_FIFO (None without the privilege). With sctp,
    SCTP messages on one thread per process instead (bench-sctp-rtt, None if not
    built)."""
    binary = os.environ.get("PARLEY_BENCH_SCTP_RTT" if sctp else "PARLEY_BENCH_UDP_RTT")
    if not binary:
        return None
    r = subprocess.run([binary, "--count", str(count), "--interval-ms", "20", "--json"] +
                       (["--realtime"] if realtime else []),
                       capture_output=True, text=True, timeout=120)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if r.returncode == 0 and lines else None


def measure_parley(args, users):
    setup = {"caller_connected": [], "callee_connected": [], "caller_video": [],
             "callee_video": []}
    # Both peers are running clients (like two open apps), as the browsers are: a call is
    # placed with `call-control "call bob"` on alice's running `listen`.
    bob = users.spawn("bob", "listen", "--auto-answer", "--test-media", "--stats-interval", "0")
    alice = users.spawn("alice", "listen", "--test-media", "--stats-interval", "0")
    if not (bob.wait_event("connected", 15) and alice.wait_event("connected", 15)):
        raise RuntimeError("the peers did not connect:\n" + bob.log_tail() + alice.log_tail())
    failures = 0
    for i in range(args.calls):
        mark, amark = bob.mark(), alice.mark()
        users.control("alice", "call bob")
        t0 = alice.wait_event("call-state", 20, amark, state="outgoing-ringing")
        a_on = alice.wait_event("call-state", 20, amark, state="active")
        b_on = bob.wait_event("call-state", 20, mark, state="active")
        a_v = alice.wait_event("first-remote-frame", 20, amark, kind="video")
        b_v = bob.wait_event("first-remote-frame", 20, mark, kind="video")
        if not (t0 and a_on and b_on and a_v and b_v):
            failures += 1
            print(f"# call {i} failed\n" + alice.log_tail() + "\n" + bob.log_tail(),
                  file=sys.stderr)
        else:
            setup["caller_connected"].append(a_on["t"] - t0["t"])
            setup["callee_connected"].append(b_on["t"] - t0["t"])
            setup["caller_video"].append(a_v["t"] - t0["t"])
            setup["callee_video"].append(b_v["t"] - t0["t"])
        users.control("alice", "hangup")
        alice.wait_event("call-state", 15, amark, state="ended")
        bob.wait_event("call-state", 15, mark, state="ended")
    # Call glare: both users call each other at the same moment; the time from the first
    # `call` to connected at both ends, against the normal set-up above.
    glare = []
    merged = 0
    for i in range(args.glare):
        mark, amark = bob.mark(), alice.mark()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda c: users.control(*c), (("alice", "call bob"), ("bob", "call alice"))))
        starts = [e for e in (alice.wait_event("call-state", 20, amark, state="outgoing-ringing"),
                              bob.wait_event("call-state", 5, mark, state="outgoing-ringing"))
                  if e]
        a_on = alice.wait_event("call-state", 20, amark, state="active")
        b_on = bob.wait_event("call-state", 20, mark, state="active")
        if starts and a_on and b_on:
            glare.append(max(a_on["t"], b_on["t"]) - min(e["t"] for e in starts))
        else:
            failures += 1
        if alice.wait_event("call-merged", 0, amark) or bob.wait_event("call-merged", 0, mark):
            merged += 1
        users.control("alice", "hangup")
        alice.wait_event("call-state", 15, amark, state="ended")
        bob.wait_event("call-state", 15, mark, state="ended")
    alice.stop()

    # CPU of each peer in a video call, then data channel pings with media flowing, in
    # the browser run's order and at its interval (20 ms).
    mark = bob.mark()
    alice = users.spawn("alice", "call", "bob", "--test-media", "--stats-interval", "0")
    alice.wait_event("call-state", 20, state="active")
    bob.wait_event("first-remote-frame", 20, mark, kind="video")
    alice.wait_event("first-remote-frame", 20, kind="video")
    a0, b0, w0 = cpu_ticks(cli_pid(alice)), cpu_ticks(cli_pid(bob)), time.monotonic()
    # The measurement window: CPU time used over wall time while the call runs.
    time.sleep(args.cpu_seconds)
    a1, b1, w1 = cpu_ticks(cli_pid(alice)), cpu_ticks(cli_pid(bob)), time.monotonic()
    pmark = alice.mark()
    reply = users.control("alice", f"ping {args.pings}")
    ping = alice.wait_event("dc-ping", 60, pmark) if reply.returncode == 0 else None
    # The same over the call's direct data link (ParleyLink: SCTP, DTLS and ICE on the
    # sending thread and the one receiving thread), which the game sessions use.
    lmark = alice.mark()
    reply = users.control("alice", f"link-ping {args.pings}")
    link_ping = (alice.wait_event("dc-ping", 60, lmark, path="link")
                 if reply.returncode == 0 else None)
    # The same number of bare UDP round trips while the call still runs.
    floor = floor_rtt(args.pings)
    floor_rt = floor_rtt(args.pings, realtime=True)
    floor_sctp = floor_rtt(args.pings, sctp=True)
    users.control("alice", "hangup")
    alice.wait_exit(15)
    bob.stop()
    wall = w1 - w0
    return {
        "calls": len(setup["caller_connected"]),
        "failures": failures,
        "setup": {k: {"median": pct(v, 50), "p90": pct(v, 90)} for k, v in setup.items()},
        "ping": {"p50": ping.get("p50Ms") if ping else None,
                 "p99": ping.get("p99Ms") if ping else None,
                 "received": ping.get("received") if ping else 0,
                 "thread_priority": ping.get("threadPriority") if ping else None},
        "link_ping": {"p50": link_ping.get("p50Ms") if link_ping else None,
                      "p99": link_ping.get("p99Ms") if link_ping else None,
                      "received": link_ping.get("received") if link_ping else 0},
        "udp_floor": floor,
        "udp_floor_realtime": floor_rt,
        "sctp_one_thread": floor_sctp,
        "cpu": {"caller": 100.0 * (a1 - a0) / CLK_TCK / wall,
                "callee": 100.0 * (b1 - b0) / CLK_TCK / wall},
        "glare": {"runs": len(glare), "merged": merged, "median": pct(glare, 50),
                  "max": max(glare) if glare else float("nan")},
    }


def measure_chromium(args, server):
    """Runs the browser driver's bench mode (tests/interop) against the same server and
    converts its result to this script's shape."""
    here_interop = os.path.join(here, "..", "interop", "parley-interop.mjs")
    modules = os.environ.get("PARLEY_INTEROP_MODULES", "")
    if not os.path.exists("/usr/bin/chromium") or \
            not os.path.exists(os.path.join(modules, "node_modules", "playwright-core")):
        return None, "Chromium or playwright-core is missing (scripts/setup-chromium.sh)"
    cmd = ["node", here_interop, "bench", "--server", server.url, "--calls", str(args.calls),
           "--cpu-seconds", str(args.cpu_seconds), "--pings", str(args.pings)]
    r = subprocess.run(cmd, capture_output=True, timeout=1800, text=True)
    for line in reversed(r.stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"chromium"' in line:
            c = json.loads(line)["chromium"]
            setup = c["setupMs"]
            return {
                "calls": c["calls"],
                "setup": {
                    "caller_connected": setup["connected"]["caller"],
                    "callee_connected": setup["connected"]["callee"],
                    "caller_video": setup["firstVideo"]["caller"],
                    "callee_video": setup["firstVideo"]["callee"],
                },
                "ping": {"p50": c["dcPingMs"]["p50"], "p99": c["dcPingMs"]["p99"]},
                "cpu": {"caller": c["cpuPercent"]["caller"], "callee": c["cpuPercent"]["callee"]},
                "version": c.get("version"),
            }, None
    return None, f"the Chromium run gave no result (exit {r.returncode}): {r.stderr[-800:]}"


def fmt(v, unit="ms"):
    return "n/a" if v is None or v != v else f"{v:.1f} {unit}"


def ratio(a, b):
    if a is None or b is None or b == 0 or a != a or b != b:
        return "n/a"
    return f"{a / b:.2f}×"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--cpu-seconds", type=float, default=10.0)
    ap.add_argument("--pings", type=int, default=500)
    ap.add_argument("--glare", type=int, default=10)
    ap.add_argument("--no-chromium", action="store_true")
    args = ap.parse_args()

    work = workdir("parley-bench-calls-")
    server = Server(work).start()
    try:
        users = Users(server, work)
        users.register("alice", "bob")
        parley = measure_parley(args, users)
        users.stop_all()
        chromium, why = (None, "disabled") if args.no_chromium else measure_chromium(args, server)
    finally:
        server.stop()
        cleanup_workdir(work)

    print(f"Call setup through parley-server on loopback, {parley['calls']} calls "
          f"({parley['failures']} failed), 640x480 30 fps video + opus:")
    rows = [("call → connected, caller", "caller_connected"),
            ("call → connected, callee", "callee_connected"),
            ("call → first remote video frame, caller", "caller_video"),
            ("call → first remote video frame, callee", "callee_video")]
    print(f"{'':44} {'Parley median / p90':>24} {'Chromium median / p90':>24} {'ratio (median)':>15}")
    for label, key in rows:
        p = parley["setup"][key]
        c = chromium["setup"][key] if chromium else None
        print(f"{label:44} {fmt(p['median']):>11} / {fmt(p['p90']):>10} "
              f"{fmt(c and c.get('median')):>11} / {fmt(c and c.get('p90')):>10} "
              f"{ratio(p['median'], c and c.get('median')):>15}")
    pp = parley["ping"]
    lp = parley["link_ping"]
    cp = chromium["ping"] if chromium else {}
    # Games' data channels run on the call's direct link; webrtcbin's channel for reference.
    print(f"{'data channel ping RTT p50 (with media)':44} {fmt(lp['p50']):>24} "
          f"{fmt(cp.get('p50')):>24} {ratio(lp['p50'], cp.get('p50')):>15}")
    print(f"{'data channel ping RTT p99 (with media)':44} {fmt(lp['p99']):>24} "
          f"{fmt(cp.get('p99')):>24} {ratio(lp['p99'], cp.get('p99')):>15}")
    print(f"{'  (Parley link; received ' + str(lp['received']) + ')':44}")
    print(f"{'  webrtcbin data channel p50 / p99':44} {fmt(pp['p50']):>11} / "
          f"{fmt(pp['p99']):>10}")
    # What the system granted the threads of Parley's data path (real-time where permitted,
    # as for root here; a short time slice otherwise).
    print(f"{'  Parley data path threads got':44} {pp.get('thread_priority') or 'n/a':>24}")
    for key, label, what in (
            ("udp_floor", "  floor: bare UDP round trip, same call", "no SCTP or DTLS"),
            ("udp_floor_realtime", "  the same under SCHED_FIFO", "no SCTP or DTLS"),
            ("sctp_one_thread", "  SCTP on one thread per process, same call", "no DTLS")):
        fl = parley.get(key)
        if fl:
            print(f"{label:44} {fl['p50Ms']:>10.3f} / {fl['p99Ms']:.3f} ms   (p50 / p99, two "
                  f"other processes, {what})")
    cc = chromium["cpu"] if chromium else {}
    for side in ("caller", "callee"):
        print(f"{'CPU of the ' + side + ' in a video call':44} {fmt(parley['cpu'][side], '%'):>24} "
              f"{fmt(cc.get(side), '%'):>24} {ratio(parley['cpu'][side], cc.get(side)):>15}")
    g = parley["glare"]
    normal = max(parley["setup"]["caller_connected"]["median"],
                 parley["setup"]["callee_connected"]["median"])
    print(f"Call glare ({g['runs']} rounds of both calling at once, {g['merged']} merged): "
          f"first call → connected at both ends median {fmt(g['median'])}, max {fmt(g['max'])}; "
          f"max / normal median = {ratio(g['max'], normal)} (target ≤ 2×)")
    if chromium is None:
        print(f"Chromium not measured: {why}")
    else:
        print(f"Chromium {chromium.get('version')}, {chromium['calls']} calls, same server, "
              "same run, one after the other.")
    print("Targets: connected ≤ Chromium; first video ≤ 0.8× Chromium; ping p50 ≤ 0.5 ms, "
          "p99 ≤ 2.7 ms; CPU below Chromium.")
    print(json.dumps({"parley": parley, "chromium": chromium}))
    return 0 if parley["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
