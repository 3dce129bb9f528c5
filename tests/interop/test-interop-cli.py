#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Browser interop: a standard browser peer (headless Chromium running
www/parley-call.html, MDN's Perfect Negotiation over Parley's WebSocket
protocol) calls parley-cli and is called by it, through a real
parley-server. Media is proved by content at both ends: parley-cli must
hear the browser's tone and count its video frames; the browser must hear
parley-cli's tone and see the colours of its SMPTE bars. TAP-style output;
exit 0 on success, 1 on failure, 77 (skipped) without node, Chromium or
playwright-core (scripts/setup-chromium.sh DIR, PARLEY_INTEROP_MODULES=DIR).

Environment: PARLEY_SERVER, PARLEY_CLI, PARLEY_INTEROP_MODULES (set by meson);
PARLEY_CHROMIUM (default /usr/bin/chromium)."""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from calltest import (TONE_TOLERANCE_HZ, CliProcess, Server, Tap, Users,  # noqa: E402
                      cleanup_workdir, colors_match, diag, parse_colors, pattern_patch_colors,
                      tone_seen, unexpected_log_lines, workdir)

EXIT_SKIP = 77
COLOR_TOLERANCE = 30
# The browser's microphone plays a steady tone from a file (see docs/interop.md:
# parley-cli's analysis looks at a fixed part of every 500 ms of audio, and
# Chromium's default fake microphone beeps 20 ms every 500 ms, so the beep can
# stay outside that part for a whole call).
BROWSER_TONE = 587
CALLEE_TONE = 660
CALLER_TONE = 440
PATTERN = "smpte"
DRIVER = os.path.join(HERE, "parley-interop.mjs")


def skip(why):
    print(f"SKIP: {why} (run scripts/setup-chromium.sh)", flush=True)
    sys.exit(EXIT_SKIP)


chromium = os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium")
modules = os.environ.get("PARLEY_INTEROP_MODULES", "")
if shutil.which("node") is None:
    skip("node is missing")
if not os.access(chromium, os.X_OK):
    skip(f"{chromium} is missing")
if not modules or not os.path.isfile(os.path.join(modules, "node_modules", "playwright-core",
                                                  "package.json")):
    skip(f"playwright-core is missing in {modules or '$PARLEY_INTEROP_MODULES'}")

tap = Tap()
work = workdir("parley-interop-cli-")
server = Server(work).start()
users = Users(server, work)
# bob is parley-cli; alice is the browser (the driver registers her).
users.register("bob")
ALICE, ALICE_PASSWORD = "alice", "password of alice"
expected_colors = pattern_patch_colors(PATTERN)
browser_count = 0


def browser(*args):
    """One browser peer (parley-interop.mjs peer) for alice."""
    global browser_count
    browser_count += 1
    argv = ["node", DRIVER, "peer", "--server", server.url, "--user", ALICE,
            "--password", ALICE_PASSWORD, "--still-video", "--tone", str(BROWSER_TONE),
            "--timeout", "40"] + list(args)
    proc = CliProcess(argv, dict(os.environ), f"browser-{browser_count}", work)
    users.procs.append(proc)
    return proc


def cli_video_frames(proc, call_id):
    return [e.get("frames", 0) for e in proc.select("media-report", kind="video", callId=call_id)]


def cli_video_moves(proc, call_id, timeout=20):
    """Waits for two video reports of the call with more frames in the later one."""
    first = proc.wait_for(lambda e: e.get("event") == "media-report" and e.get("kind") == "video"
                          and e.get("callId") == call_id and e.get("frames", 0) > 0, timeout)
    if not first:
        return None
    later = proc.wait_for(lambda e: e.get("event") == "media-report" and e.get("kind") == "video"
                          and e.get("callId") == call_id
                          and e.get("frames", 0) >= first["frames"] + 10, timeout)
    return (first, later) if later else None


def browser_tone(proc, hz, timeout=20):
    return proc.wait_for(lambda e: e.get("event") in ("remote-audio-frequency", "remote-audio-tone")
                         and abs((e.get("hz") or 0) - hz) <= TONE_TOLERANCE_HZ, timeout)


def browser_pattern(proc, timeout=20):
    return proc.wait_for(lambda e: e.get("event") == "remote-video-colors" and
                         colors_match(expected_colors, parse_colors(e.get("colors")),
                                      COLOR_TOLERANCE), timeout)


def offer_payload_types(sdp):
    """{"opus": pt, "VP8": pt} from the a=rtpmap lines of an SDP."""
    out = {}
    for line in sdp.splitlines():
        if line.startswith("a=rtpmap:"):
            pt, _, codec = line[len("a=rtpmap:"):].partition(" ")
            name = codec.split("/")[0]
            if name.lower() == "opus" or name.upper() == "VP8":
                out.setdefault("opus" if name.lower() == "opus" else "VP8", int(pt))
    return out


def browser_result(proc, timeout=30):
    return proc.wait_event("result", timeout)


def webrtc_errors(proc):
    return [e for e in proc.events if e.get("event") in ("call-error", "candidate-error",
                                                          "page-error", "server-error")]


def cli_call_id(proc, timeout=20, start=0):
    ev = proc.wait_event("call-state", timeout, start, state="active")
    return ev and ev.get("callId")


def check_cli_receives(cli, call_id, video, who):
    """parley-cli hears the browser's tone and, in a video call, decodes frames."""
    tap.ok(cli.wait_event("first-remote-frame", 15, kind="audio", callId=call_id),
           f"{who}: parley-cli decodes the browser's audio", diag(cli))
    tap.ok(tone_seen(cli, BROWSER_TONE, call_id=call_id),
           f"{who}: parley-cli hears the browser's {BROWSER_TONE} Hz tone",
           [(e.get("frequency"), e.get("level")) for e in
            cli.select("media-report", kind="audio", callId=call_id)])
    if video:
        tap.ok(cli.wait_event("first-remote-frame", 15, kind="video", callId=call_id),
               f"{who}: parley-cli decodes the browser's first video frame", diag(cli))
        moves = cli_video_moves(cli, call_id)
        tap.ok(moves and moves[1].get("width", 0) > 0 and moves[1].get("height", 0) > 0,
               f"{who}: the browser's video frames keep arriving at parley-cli",
               cli_video_frames(cli, call_id))
    else:
        tap.ok(not cli.select("first-remote-frame", kind="video", callId=call_id),
               f"{who}: no video reaches parley-cli in an audio-only call")


def check_browser_receives(web, tone, video, who):
    """The browser hears parley-cli's tone and, in a video call, sees its bars."""
    tap.ok(web.wait_event("connected", 20), f"{who}: the browser connects", diag(web))
    got = browser_tone(web, tone)
    tap.ok(got, f"{who}: the browser hears parley-cli's {tone} Hz tone",
           (web.select("remote-audio-frequency") + web.select("remote-audio-tone"))[-4:])
    if video:
        tap.ok(web.wait_event("first-remote-video", 15),
               f"{who}: the browser decodes parley-cli's video", diag(web))
        tap.ok(browser_pattern(web),
               f"{who}: the browser sees parley-cli's SMPTE bars (8 patch colours)",
               [e.get("colors") for e in web.select("remote-video-colors")][-3:])


def check_browser_result(web, who):
    res = browser_result(web)
    tap.ok(res and res.get("ok"), f"{who}: the browser's own check passes (media both ways)",
           res and res.get("problems") or diag(web))
    tap.ok(web.wait_exit(20) == 0 and not webrtc_errors(web),
           f"{who}: the browser peer exits 0 without WebRTC or page errors",
           webrtc_errors(web) or diag(web))
    return res


def check_cli_clean(cli, who):
    bad = unexpected_log_lines(cli.stderr_path)
    tap.ok(not bad, f"{who}: parley-cli logs no warnings", "\n".join(bad[-10:]))


try:
    # 1. Chromium calls parley-cli (video); parley-cli hangs up.
    bob = users.spawn("bob", "listen", "--auto-answer", "--test-media", "--tone",
                      str(CALLEE_TONE), "--pattern", PATTERN, "--stats-interval", "1000")
    if not bob.wait_event("connected", 15):
        raise RuntimeError(f"bob's listen did not connect:\n{bob.log_tail()}")
    who = "Chromium → parley-cli (video)"
    web = browser("--call", "bob", "--duration", "60")
    call_id = cli_call_id(bob, 40)
    tap.ok(call_id, f"{who}: parley-cli answers and the call becomes active", diag(bob, web))
    check_browser_receives(web, CALLEE_TONE, True, who)
    check_cli_receives(bob, call_id, True, who)
    st = bob.wait_for(lambda e: e.get("event") == "stats" and e.get("callId") == call_id and
                      e.get("audioCodec") and e.get("videoCodec"), 10)
    tap.ok(st and st.get("audioCodec", "").lower() == "opus" and
           st.get("videoCodec", "").lower() == "vp8",
           f"{who}: parley-cli's stats name Opus and VP8", st)
    mark = bob.mark()
    r = users.control("bob", "hangup")
    ended = web.wait_event("ended", 15)
    tap.ok(r.returncode == 0 and ended and ended.get("reason") == "hangup" and
           ended.get("by") == "remote", f"{who}: the browser sees parley-cli hang up",
           (r.stderr, ended))
    b_end = bob.wait_event("call-state", 10, mark, state="ended")
    tap.ok(b_end and b_end.get("reason") == "hangup", f"{who}: the call ends at parley-cli",
           b_end)
    check_browser_result(web, who)

    # 2. Chromium calls parley-cli, audio only; the browser hangs up.
    who = "Chromium → parley-cli (audio only)"
    mark = bob.mark()
    web = browser("--call", "bob", "--audio-only", "--duration", "2")
    call_id = cli_call_id(bob, 40, mark)
    tap.ok(call_id, f"{who}: the call becomes active", diag(bob, web))
    check_browser_receives(web, CALLEE_TONE, False, who)
    check_cli_receives(bob, call_id, False, who)
    b_end = bob.wait_event("call-state", 30, mark, state="ended")
    tap.ok(b_end and b_end.get("reason") == "hangup", f"{who}: parley-cli sees the browser hang up",
           b_end)
    res = check_browser_result(web, who)
    tap.ok(res and res.get("live") and not res["live"].get("video") and
           not res["live"]["stats"]["inbound"].get("video"),
           f"{who}: the browser receives no video", res and res.get("live", {}).get("stats"))

    # 3. Chromium calls parley-cli with Opus and VP8 under other payload type
    # numbers than Chromium's defaults (as other browsers number them);
    # parley-cli answers with those numbers and renegotiates mid-call.
    who = "Chromium → parley-cli (other payload types)"
    mark = bob.mark()
    web = browser("--call", "bob", "--remap-payload-types", "--duration", "60")
    call_id = cli_call_id(bob, 40, mark)
    tap.ok(call_id, f"{who}: the call becomes active", diag(bob, web))
    offer = bob.wait_for(lambda e: e.get("event") == "call-signal" and
                         e.get("type") == "call-offer", 5, mark)
    sdp = offer and offer.get("frame", {}).get("sdp", "")
    pts = offer_payload_types(sdp or "")
    tap.ok(pts.get("opus") not in (None, 111) and pts.get("VP8") not in (None, 96),
           f"{who}: the browser's offer numbers Opus and VP8 otherwise than 111 and 96", pts)
    check_browser_receives(web, CALLEE_TONE, True, who)
    check_cli_receives(bob, call_id, True, who)
    mark = bob.mark()
    r = users.control("bob", "renegotiate")
    answer = bob.wait_for(lambda e: e.get("event") == "call-signal" and
                          e.get("type") == "call-answer", 15, mark)
    tap.ok(r.returncode == 0 and answer, f"{who}: the browser answers parley-cli's new offer",
           (r.stderr, diag(bob)))
    tone_after = bob.wait_for(lambda e: e.get("event") == "media-report" and
                              e.get("kind") == "audio" and e.get("callId") == call_id and
                              abs((e.get("frequency") or 0) - BROWSER_TONE) <= TONE_TOLERANCE_HZ,
                              15, bob.mark())
    tap.ok(tone_after and cli_video_moves(bob, call_id),
           f"{who}: after the renegotiation parley-cli still gets sound and video", diag(bob))
    bars_after = answer and web.wait_for(
        lambda e: e.get("event") == "remote-video-colors" and e.get("t", 0) > answer["t"] + 500
        and colors_match(expected_colors, parse_colors(e.get("colors")), COLOR_TOLERANCE), 15)
    tap.ok(bars_after, f"{who}: after the renegotiation the browser still sees parley-cli's bars",
           [(e.get("t"), e.get("colors")) for e in web.select("remote-video-colors")][-4:])
    r = users.control("bob", "hangup")
    ended = web.wait_event("ended", 15)
    tap.ok(r.returncode == 0 and ended and ended.get("reason") == "hangup",
           f"{who}: the browser sees parley-cli hang up", (r.stderr, ended))
    check_browser_result(web, who)

    bob.stop()
    check_cli_clean(bob, "parley-cli listen")

    # 4. parley-cli calls Chromium (video); the browser hangs up.
    who = "parley-cli → Chromium (video)"
    web = browser("--auto-answer", "--duration", "4")
    if not web.wait_event("hello", 30):
        raise RuntimeError(f"the browser did not log in:\n{web.log_tail()}")
    bob = users.spawn("bob", "call", ALICE, "--test-media", "--tone", str(CALLER_TONE),
                      "--pattern", PATTERN, "--stats-interval", "1000")
    call_id = cli_call_id(bob, 30)
    tap.ok(call_id, f"{who}: the browser answers and the call becomes active", diag(bob, web))
    check_browser_receives(web, CALLER_TONE, True, who)
    check_cli_receives(bob, call_id, True, who)
    b_end = bob.wait_event("call-state", 30, state="ended")
    tap.ok(b_end and b_end.get("reason") == "hangup", f"{who}: parley-cli sees the browser hang up",
           b_end)
    tap.ok(bob.wait_exit(10) == 0, f"{who}: `call` exits 0", diag(bob))
    check_browser_result(web, who)
    check_cli_clean(bob, "parley-cli call (video)")

    # 5. parley-cli calls Chromium, audio only; parley-cli hangs up.
    who = "parley-cli → Chromium (audio only)"
    web = browser("--auto-answer", "--duration", "60")
    if not web.wait_event("hello", 30):
        raise RuntimeError(f"the browser did not log in:\n{web.log_tail()}")
    bob = users.spawn("bob", "call", ALICE, "--test-media", "--audio-only", "--tone",
                      str(CALLER_TONE), "--stats-interval", "1000")
    call_id = cli_call_id(bob, 30)
    tap.ok(call_id, f"{who}: the browser answers and the call becomes active", diag(bob, web))
    incoming = web.select("incoming")
    tap.ok(incoming and incoming[0].get("media") == "audio",
           f"{who}: the browser is rung for an audio call", incoming)
    check_browser_receives(web, CALLER_TONE, False, who)
    check_cli_receives(bob, call_id, False, who)
    r = users.control("bob", "hangup")
    ended = web.wait_event("ended", 15)
    tap.ok(r.returncode == 0 and ended and ended.get("reason") == "hangup" and
           ended.get("by") == "remote", f"{who}: the browser sees parley-cli hang up",
           (r.stderr, ended))
    tap.ok(bob.wait_exit(10) == 0, f"{who}: `call` exits 0", diag(bob))
    check_browser_result(web, who)
    check_cli_clean(bob, "parley-cli call (audio only)")
except Exception as e:  # noqa: BLE001 - any failure becomes a failed test line
    tap.ok(False, "the interop scenario ran to the end", f"{type(e).__name__}: {e}")
finally:
    users.stop_all()
    server.stop()

status = tap.done()
if status == 0:
    cleanup_workdir(work)
else:
    print(f"# logs kept in {work}", flush=True)
sys.exit(status)
