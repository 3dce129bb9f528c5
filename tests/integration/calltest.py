# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for Parley's call tests: a real parley-server, parley-cli
processes whose JSON-line events are collected by reader threads, waits on
those events with timeouts (never sleeps), TAP output, and the expected
colours of a test pattern rendered locally by GStreamer."""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0
        print("TAP version 13", flush=True)

    def ok(self, cond, what, diag=None):
        self.n += 1
        if cond:
            print(f"ok {self.n} - {what}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {self.n} - {what}", flush=True)
            for line in str(diag or "").splitlines()[-25:]:
                print(f"# {line}", flush=True)
        return bool(cond)

    def skip_all(self, why):
        print(f"1..0 # SKIP {why}", flush=True)
        sys.exit(0)

    def done(self):
        print(f"1..{self.n}", flush=True)
        return 1 if self.failed else 0


class Server:
    """A parley-server on a fresh database and a port picked by the kernel."""

    def __init__(self, workdir, env=None, turn_uris=None, netns=None, host="127.0.0.1"):
        self.workdir = workdir
        self.binary = os.environ["PARLEY_SERVER"]
        self.extra_env = env or {}
        self.turn_uris = turn_uris
        self.netns = netns
        self.host = host
        self.proc = None
        self.url = None
        conf = os.path.join(workdir, "parley.conf")
        with open(conf, "w") as f:
            f.write("[auth]\nargon2-ops=1\nargon2-mem-kib=8\n")
        self.conf = conf

    def start(self):
        env = dict(os.environ)
        env["PARLEY_TURN_SECRET"] = env.get("PARLEY_TURN_SECRET", "call-test-turn-secret")
        if self.turn_uris:
            env["PARLEY_TURN_URIS"] = self.turn_uris
        env.update(self.extra_env)
        cmd = [self.binary, "--port", "0", "--config", self.conf,
               "--database", os.path.join(self.workdir, "parley.db")]
        if self.host != "127.0.0.1":
            cmd += ["--listen", self.host]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        log = open(os.path.join(self.workdir, "server.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, env=env)
        line = _readline_with_timeout(self.proc.stdout, 10)
        if not line or b"listening on port" not in line:
            raise RuntimeError(f"parley-server did not start: {line!r}")
        port = int(line.split()[-1])
        self.url = f"http://{self.host}:{port}"
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _readline_with_timeout(stream, timeout):
    result = []
    t = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return result[0] if result else None


class CliProcess:
    """A running parley-cli whose stdout JSON lines are collected."""

    def __init__(self, argv, env, name, logdir):
        self.name = name
        self.events = []
        self.cond = threading.Condition()
        self.stderr_path = os.path.join(logdir, f"{name}.stderr")
        self.stdout_path = os.path.join(logdir, f"{name}.jsonl")
        self._stdout_log = open(self.stdout_path, "a")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=open(self.stderr_path, "ab"), env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            self._stdout_log.write(line + "\n")
            self._stdout_log.flush()
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "unparsable", "line": line}
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout=15.0, start=0):
        """Waits until an event at index >= start satisfies pred; returns it or None."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    return None
                self.cond.wait(remaining)

    def wait_event(self, event, timeout=15.0, start=0, **fields):
        return self.wait_for(lambda e: e.get("event") == event and
                             all(e.get(k) == v for k, v in fields.items()),
                             timeout, start)

    def mark(self):
        with self.cond:
            return len(self.events)

    def select(self, event, **fields):
        with self.cond:
            return [e for e in self.events if e.get("event") == event and
                    all(e.get(k) == v for k, v in fields.items())]

    def states(self):
        return [e["state"] for e in self.select("call-state")]

    def wait_exit(self, timeout=15.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait_exit(10) is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)

    def log_tail(self):
        out = []
        for path in (self.stdout_path, self.stderr_path):
            try:
                with open(path, errors="replace") as f:
                    out += [f"{self.name}: {l.rstrip()}" for l in f.readlines()[-12:]]
            except OSError:
                pass
        return "\n".join(out)


class Users:
    """parley-cli profiles of registered users on one server; "bob#2" is a second device
    (profile) of bob."""

    def __init__(self, server, workdir, netns=None):
        self.server = server
        self.workdir = workdir
        self.cli = os.environ["PARLEY_CLI"]
        self.netns = netns or {}
        self.procs = []
        self.counter = 0

    def argv(self, user, *args):
        argv = [self.cli, "--server", self.server.url,
                "--profile", os.path.join(self.workdir, user)] + list(args)
        ns = self.netns.get(user)
        if ns:
            argv = ["ip", "netns", "exec", ns] + argv
        return argv

    def env(self, user):
        env = dict(os.environ)
        env["PARLEY_PASSWORD"] = f"password of {user.split('#')[0]}"
        # GStreamer 1.22.0 and libnice log a few harmless warnings of their own (see
        # KNOWN_UPSTREAM_WARNINGS); instead of making every warning fatal, the tests check the
        # logs with check_logs() and fail on any other warning or critical.
        debug = [d for d in env.get("G_DEBUG", "").split(",")
                 if d and d not in ("fatal-warnings", "fatal-criticals")]
        env["G_DEBUG"] = ",".join(debug)
        if "ASAN_OPTIONS" in env:
            # In sanitizer builds: the full unwinding on every malloc that the leak
            # suppressions need slows a video pipeline down by an order of magnitude, enough to
            # trip the peers' timers. Memory errors still abort; leaks of the call engine are
            # checked by its unit tests (tests/engine), not in these processes.
            env["ASAN_OPTIONS"] += ":fast_unwind_on_malloc=1:detect_leaks=0"
        return env

    def run(self, user, *args, timeout=30):
        return subprocess.run(self.argv(user, *args), env=self.env(user), capture_output=True,
                              timeout=timeout)

    def register(self, *users):
        ids = {}
        for user in users:
            r = self.run(user, "register", user)
            if r.returncode != 0:
                raise RuntimeError(f"register {user}: {r.stderr.decode()}")
            r = self.run(user, "login", user)
            if r.returncode != 0:
                raise RuntimeError(f"login {user}: {r.stderr.decode()}")
            ids[user] = json.loads(r.stdout)["userId"]
        return ids

    def add_device(self, user, n):
        """Logs @user in on another device (profile "user#n"); returns that name for
        spawn(), run() and control()."""
        device = f"{user}#{n}"
        r = self.run(device, "login", user)
        if r.returncode != 0:
            raise RuntimeError(f"login {device}: {r.stderr.decode()}")
        return device

    def spawn(self, user, *args):
        self.counter += 1
        p = CliProcess(self.argv(user, *args), self.env(user), f"{self.counter:02d}-{user}",
                       self.workdir)
        self.procs.append(p)
        return p

    def control(self, user, command):
        if command == "hangup":
            return self.run(user, "hangup", timeout=10)
        return self.run(user, "call-control", command, timeout=10)

    def stop_all(self):
        for p in self.procs:
            p.stop()
        self.procs = []


# Warnings that GStreamer 1.22.0 and libnice 0.1.21 log in normal operation.
KNOWN_UPSTREAM_WARNINGS = (
    # webrtcbin: a new jitterbuffer meets the SSRC of an m-line without a transceiver yet;
    # it only skips enabling NACK on that jitterbuffer.
    "jitter_buffer_set_retransmission: code should not be reached",
    # libnice: an agent with TURN allocations is released while their refreshes run: at a
    # restart, where the engine does not close webrtcbin's agent first (docs/calls.md, "TURN").
    "We still have alive TURN refreshes",
    # rtpmanager: a session's hash table changes while its RTCP thread iterates it at
    # teardown (parley-cli itself never calls g_hash_table_foreach).
    "g_hash_table_foreach: assertion 'version == hash_table->version'",
)


def unexpected_log_lines(path):
    """Warning, critical and error lines of one parley-cli log that are not known upstream
    ones."""
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip() for line in f
                    if ("-WARNING **" in line or "-CRITICAL **" in line or "-ERROR **" in line)
                    and not any(k in line for k in KNOWN_UPSTREAM_WARNINGS)]
    except OSError:
        return []


def unexpected_warnings(workdir):
    """unexpected_log_lines() of every parley-cli log of a test."""
    return [f"{name}: {line}" for name in sorted(os.listdir(workdir)) if name.endswith(".stderr")
            for line in unexpected_log_lines(os.path.join(workdir, name))]


def workdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR", "/tmp"))
    return d


def cleanup_workdir(d):
    if os.environ.get("PARLEY_KEEP_TEST_DIR"):
        print(f"# kept {d}", flush=True)
        return
    shutil.rmtree(d, ignore_errors=True)


# Media checks

TONE_TOLERANCE_HZ = 15


def diag(*procs):
    """The ends of the logs of some parley-cli processes, for a failed check."""
    return "\n".join(p.log_tail() for p in procs)


def tone_seen(proc, hz, start=0, timeout=20, call_id=None):
    """Waits for an audio report (of the call, when given) that found the tone hz."""
    return proc.wait_for(lambda e: e.get("event") == "media-report" and e.get("kind") == "audio"
                         and (call_id is None or e.get("callId") == call_id)
                         and abs((e.get("frequency") or 0) - hz) <= TONE_TOLERANCE_HZ,
                         timeout, start)

def pattern_patch_colors(pattern, width=640, height=480):
    """Mean RGB and the largest per-channel standard deviation of the 8
    patches (4 columns x 2 rows, each centred in its cell, 1/4 of its size)
    of one frame of videotestsrc's pattern, rendered here without any network
    or codec in between: a list of ((r, g, b), sd)."""
    # Rendered in I420 like a call's video source (some patterns depend on the format),
    # then converted to RGB as the far end's analysis does.
    cmd = ["gst-launch-1.0", "-q", "videotestsrc", f"pattern={pattern}", "num-buffers=1", "!",
           f"video/x-raw,format=I420,width={width},height={height}", "!", "videoconvert", "!",
           "video/x-raw,format=RGB", "!", "fdsink", "fd=1"]
    raw = subprocess.run(cmd, capture_output=True, timeout=30, check=True).stdout
    if len(raw) < width * height * 3:
        raise RuntimeError(f"pattern {pattern}: got {len(raw)} bytes")
    patches = []
    cw, ch = width // 4, height // 2
    pw, ph = max(1, cw // 4), max(1, ch // 4)
    for row in range(2):
        for col in range(4):
            x0 = col * cw + (cw - pw) // 2
            y0 = row * ch + (ch - ph) // 2
            values = ([], [], [])
            for y in range(y0, y0 + ph):
                base = (y * width + x0) * 3
                line = raw[base:base + pw * 3]
                for c in range(3):
                    values[c].extend(line[c::3])
            mean = tuple(statistics.fmean(v) for v in values)
            sd = max(statistics.pstdev(v) for v in values)
            patches.append((mean, sd))
    return patches


def parse_colors(text):
    out = []
    for word in (text or "").split():
        if len(word) != 6:
            return None
        out.append(tuple(int(word[i:i + 2], 16) for i in (0, 2, 4)))
    return out if len(out) == 8 else None


def colors_match(expected, measured, tolerance=30, max_sd=20, min_patches=2):
    """Whether the measured patch colours show the expected pattern: every
    patch that is uniform in the source (edges inside a patch move its mean
    under any lossy codec) is within tolerance on every channel."""
    if not measured or len(measured) != len(expected):
        return False
    uniform = [(mean, got) for (mean, sd), got in zip(expected, measured) if sd <= max_sd]
    if len(uniform) < min_patches:
        raise ValueError("the pattern has too few uniform patches to be recognised")
    return all(abs(e - m) <= tolerance for mean, got in uniform for e, m in zip(mean, got))
