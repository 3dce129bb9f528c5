#!/usr/bin/env node
// SPDX-License-Identifier: GPL-3.0-or-later
//
// Drives headless Chromium peers (www/parley-call.html) of Parley calls
// against a running parley-server. See docs/interop.md.
//
//   parley-interop.mjs selftest --server URL
//   parley-interop.mjs bench --server URL [--calls N] [--cpu-seconds S] [--pings N]
//   parley-interop.mjs peer --server URL --user U --password P
//       (--call USER | --auto-answer) [--audio-only] [--duration S] [--timeout S]
//       [--still-video] [--tone HZ] [--remap-payload-types]
//
// playwright-core is loaded from $PARLEY_INTEROP_MODULES/node_modules
// (scripts/setup-chromium.sh installs it there). Exit codes: 0 success,
// 1 failure, 2 bad usage, 77 Chromium or playwright-core missing.

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu',
  // The fake camera runs at 20 fps unless told otherwise.
  '--use-fake-device-for-media-stream=fps=30', '--use-fake-ui-for-media-stream',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];

const EXIT_SKIP = 77;

// Milliseconds of CLOCK_MONOTONIC, the clock of parley-cli's "t".
const mono = () => Number(process.hrtime.bigint() / 1000n) / 1000;
// Pages stamp events with wall-clock milliseconds (their time origin plus
// their monotonic clock); this turns them into CLOCK_MONOTONIC ones.
const wallToMono = mono() - (performance.timeOrigin + performance.now());
const round1 = x => (x === null || x === undefined || !Number.isFinite(x)) ? null : Math.round(x * 10) / 10;

class UsageError extends Error {}

function parseArgs (argv) {
  const opts = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      opts._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = (eq > 0 ? a.slice(2, eq) : a.slice(2));
    if (['auto-answer', 'audio-only', 'help', 'remap-payload-types', 'still-video', 'verbose'].includes(key)) {
      opts[key] = true;
    } else if (eq > 0) {
      opts[key] = a.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length)
        throw new UsageError(`--${key} needs a value`);
      opts[key] = argv[++i];
    }
  }
  return opts;
}

function positiveNumber (opts, key, fallback) {
  if (opts[key] === undefined)
    return fallback;
  const n = Number(opts[key]);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${key} must be a positive number`);
  return n;
}

function loadPlaywright () {
  const dirs = [process.env.PARLEY_INTEROP_MODULES, here].filter(Boolean);
  for (const dir of dirs) {
    try {
      return createRequire(path.join(path.resolve(dir), 'resolve.js'))('playwright-core');
    } catch (e) {
      // Try the next directory.
    }
  }
  return null;
}

// The page, served over http://127.0.0.1 so that it is a secure context.
function serveWww () {
  const files = {
    '/parley-call.html': ['text/html; charset=utf-8', path.join(here, 'www', 'parley-call.html')],
    '/parley-call.js': ['text/javascript; charset=utf-8', path.join(here, 'www', 'parley-call.js')],
  };
  const server = http.createServer((req, res) => {
    const file = files[new URL(req.url, 'http://localhost').pathname];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' });
    fs.createReadStream(file[1]).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function api (base, method, route, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token)
    headers.authorization = 'Bearer ' + token;
  const res = await fetch(base + route, {
    method, headers, body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    // Not JSON: reported through the status.
  }
  return { status: res.status, json };
}

// Logs in, registering the user first when it does not exist yet.
async function account (base, username, password) {
  let login = await api(base, 'POST', '/api/login', { username, password });
  if (login.status === 401) {
    const reg = await api(base, 'POST', '/api/register', { username, password });
    if (reg.status !== 201 && reg.status !== 409)
      throw new Error(`register ${username}: HTTP ${reg.status} ${JSON.stringify(reg.json)}`);
    login = await api(base, 'POST', '/api/login', { username, password });
  }
  if (login.status !== 200 || !login.json || !login.json.accessToken)
    throw new Error(`login ${username}: HTTP ${login.status} ${JSON.stringify(login.json)}`);
  return { userId: login.json.userId, username: login.json.username, token: login.json.accessToken };
}

// Turns --call's argument into a user id: an exact user name match wins.
async function resolveUser (base, token, nameOrId) {
  const res = await api(base, 'GET', '/api/users?query=' + encodeURIComponent(nameOrId), null, token);
  const users = (res.status === 200 && res.json && res.json.users) || [];
  const hit = users.find(u => u.username === nameOrId.toLowerCase());
  return hit ? hit.userId : nameOrId;
}

function wsUrl (base) {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/ws';
  return u.toString();
}

let clkTck = null;
function clockTicks () {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch (e) {
      clkTck = 100;
    }
  }
  return clkTck;
}

// The process tree under @root from /proc: pid → {ticks, type}.
function sampleTree (root) {
  const parent = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name))
      continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch (e) {
      // The process ended meanwhile.
    }
  }
  const out = new Map();
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop();
    const info = parent.get(pid);
    if (!info)
      continue;
    let type = 'browser';
    try {
      // Chromium rewrites its child processes' command lines into one
      // string, so split on spaces too.
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
      const t = cmd.find(a => a.startsWith('--type='));
      if (t)
        type = t.slice(7);
      const sub = cmd.find(a => a.startsWith('--utility-sub-type='));
      if (sub)
        type += ':' + sub.slice(19).replace(/^.*\./, '');
    } catch (e) {
      // The process ended meanwhile.
    }
    out.set(pid, { ticks: info.ticks, type });
    for (const [child, c] of parent)
      if (c.ppid === pid)
        todo.push(child);
  }
  return out;
}

// CPU use of the tree under @root between two samples, in percent of one core.
function cpuBetween (before, after, seconds) {
  const byType = {};
  let total = 0;
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const ticks = a.ticks - (b ? b.ticks : 0);
    total += ticks;
    byType[a.type] = (byType[a.type] || 0) + ticks;
  }
  const pct = t => round1(100 * t / clockTicks() / seconds);
  return { total: pct(total), byType: Object.fromEntries(Object.entries(byType).map(([k, v]) => [k, pct(v)])) };
}

// A WAV file (48 kHz, mono, 16 bit) of one second of a sine tone of
// @hz (an integer, so that the file loops without a click) at -10 dBFS, for
// Chromium's --use-file-for-fake-audio-capture.
function toneWav (dir, hz) {
  const rate = 48000;
  const data = Buffer.alloc(rate * 2);
  for (let i = 0; i < rate; i++)
    data.writeInt16LE(Math.round(0.316 * 32767 * Math.sin(2 * Math.PI * hz * i / rate)), 2 * i);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  const file = path.join(dir, `tone-${hz}.wav`);
  fs.writeFileSync(file, Buffer.concat([header, data]));
  return file;
}

// One headless Chromium process with the call page, one user.
class BrowserPeer {
  constructor (pw, name, onEvent, extraArgs) {
    this.pw = pw;
    this.name = name;
    this.onEvent = onEvent;
    this.extraArgs = extraArgs || [];
    this.events = [];
    this.waiters = [];
    this.pageErrors = [];
  }

  async start (pageUrl) {
    this.server = await this.pw.chromium.launchServer({
      executablePath: CHROMIUM, headless: false, args: [...CHROMIUM_FLAGS, ...this.extraArgs],
    });
    this.pid = this.server.process().pid;
    this.browser = await this.pw.chromium.connect(this.server.wsEndpoint());
    this.version = this.browser.version();
    this.page = await this.browser.newPage();
    this.page.on('pageerror', e => {
      this.pageErrors.push(String(e));
      this.record({ event: 'page-error', message: String(e) });
    });
    await this.page.exposeFunction('parleyReport', ev => this.record(ev));
    await this.page.goto(pageUrl);
    await this.page.waitForFunction(() => window.parley !== undefined, null, { timeout: 10000 });
  }

  record (ev) {
    ev = { t: round1(ev.wallMs !== undefined ? ev.wallMs + wallToMono : mono()), ...ev };
    this.events.push(ev);
    if (this.onEvent)
      this.onEvent(this, ev);
    for (const w of [...this.waiters])
      if (w.match(ev)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(ev);
      }
  }

  // Resolves with the first event (already seen or coming) that matches.
  waitEvent (match, timeoutMs, what) {
    const seen = this.events.find(match);
    if (seen)
      return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { match, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no ${what || 'event'} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  // Like waitEvent, but resolves with null on timeout.
  maybeEvent (match, timeoutMs) {
    return this.waitEvent(match, timeoutMs).catch(() => null);
  }

  async login (base, username, password) {
    this.account = await account(base, username, password);
    this.userId = await this.page.evaluate(([u, t]) => window.parley.connect(u, t),
      [wsUrl(base), this.account.token]);
    return this.userId;
  }

  call (peerId, options) {
    return this.page.evaluate(([p, o]) => window.parley.call(p, o), [peerId, options]);
  }

  setAutoAnswer (on) {
    return this.page.evaluate(v => window.parley.setAutoAnswer(v), on);
  }

  hangup (reason) {
    return this.page.evaluate(r => window.parley.hangup(r), reason || null);
  }

  reject () {
    return this.page.evaluate(() => window.parley.reject());
  }

  ping (count, intervalMs) {
    return this.page.evaluate(([n, i]) => window.parley.ping(n, i), [count, intervalMs]);
  }

  report (callId) {
    return this.page.evaluate(id => window.parley.report(id), callId || null);
  }

  async close () {
    try {
      if (this.browser)
        await this.browser.close();
    } catch (e) {
      // Closing anyway.
    }
    if (this.server)
      await this.server.close().catch(() => {});
  }
}

const on = (name, callId) => ev => ev.event === name && (!callId || ev.callId === callId);

function stat (values) {
  const v = values.filter(x => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length)
    return { n: 0, median: null, p90: null, min: null, max: null };
  const q = p => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p / 100 * v.length) - 1))];
  const median = v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  return { n: v.length, median: round1(median), p90: round1(q(90)), min: round1(v[0]), max: round1(v[v.length - 1]) };
}

// Media flowed both ways as far as one side can tell: it received sound
// (and, in a video call, decoded frames) and sent RTP of every kind. With
// @stillVideo a picture that does not move (a still test pattern) will do.
function mediaFlowed (report, stillVideo) {
  const problems = [];
  if (!report)
    return ['no call'];
  const m = report.marks;
  if (m.connected === undefined)
    problems.push('never connected');
  if (m['first-remote-audio'] === undefined)
    problems.push('no remote audio');
  if (!(report.stats.outbound.audio && report.stats.outbound.audio.packets > 0))
    problems.push('no audio sent');
  if (report.video) {
    if (m['first-remote-video'] === undefined)
      problems.push('no remote video frame');
    if (!report.remoteVideo.nonBlack)
      problems.push('remote video black');
    if (!report.remoteVideo.moving && !stillVideo)
      problems.push('remote video frozen');
    if (!(report.stats.outbound.video && report.stats.outbound.video.packets > 0))
      problems.push('no video sent');
  }
  return problems;
}

// Whether @report's connection sent RTP of every kind of its call.
function sentAll (report) {
  const out = report.stats.outbound;
  return !!(out.audio && out.audio.packets > 0 && (!report.video || (out.video && out.video.packets > 0)));
}

async function withPeers (pw, names, onEvent, fn, extraArgs) {
  const www = await serveWww();
  const pageUrl = `http://127.0.0.1:${www.address().port}/parley-call.html`;
  const peers = [];
  try {
    for (const name of names) {
      const peer = new BrowserPeer(pw, name, onEvent, extraArgs);
      peers.push(peer);
      await peer.start(pageUrl);
    }
    return await fn(...peers);
  } finally {
    for (const peer of peers)
      await peer.close();
    www.close();
  }
}

function uniqueName (prefix) {
  return `${prefix}${process.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 32);
}

// One call from @caller to @callee (auto-answering), until media flows at
// both ends. Returns both reports.
async function establish (caller, callee, video, timeoutMs, waitFor) {
  const callId = await caller.call(callee.userId, { video, dataChannel: true });
  const ends = [caller, callee];
  await Promise.all(ends.map(p => p.waitEvent(on('connected', callId), timeoutMs, 'connected')));
  const wanted = waitFor || (video ? ['first-remote-video'] : []);
  await Promise.all(ends.flatMap(p => wanted.map(w => p.waitEvent(on(w, callId), timeoutMs, w))));
  return callId;
}

async function hangupAndWait (who, other, callId, timeoutMs) {
  await who.hangup();
  return other.waitEvent(on('ended', callId), timeoutMs, 'ended');
}

// ---------------------------------------------------------------- selftest

// Polls @fn every 50 ms until it returns something truthy.
async function waitUntil (fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value)
      return value;
    if (Date.now() > deadline)
      throw new Error(`no ${what} within ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 50));
  }
}

async function selftest (pw, opts) {
  const base = opts.server;
  let n = 0, failed = 0;
  const check = (ok, what, detail) => {
    n++;
    if (!ok)
      failed++;
    console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${what}${detail !== undefined ? ' # ' + JSON.stringify(detail) : ''}`);
    return ok;
  };
  const verbose = opts.verbose ? (peer, ev) => console.log(`# ${peer.name} ${JSON.stringify(ev)}`) : null;
  console.log('TAP version 13');

  await withPeers(pw, ['alice', 'bob'], verbose, async (alice, bob) => {
    const pw8 = 'interop password';
    await alice.login(base, uniqueName('ia'), pw8);
    await bob.login(base, uniqueName('ib'), pw8);
    check(alice.userId && bob.userId && alice.userId !== bob.userId, 'both browsers are logged in',
      { alice: alice.userId, bob: bob.userId });
    console.log(`# ${alice.version}`);

    // 1. A video call from alice to bob, answered automatically.
    await bob.setAutoAnswer(true);
    let callId = null;
    try {
      callId = await establish(alice, bob, true, 20000,
        ['first-remote-video', 'remote-video-ok', 'first-remote-audio', 'remote-audio-frequency', 'datachannel-open']);
      check(true, 'video call: connected, video and sound at both ends');
    } catch (e) {
      check(false, 'video call: connected, video and sound at both ends', String(e.message));
    }
    const ra = await alice.report(callId);
    const rb = await bob.report(callId);
    check(ra && rb && ra.callId === rb.callId && ra.outgoing && !rb.outgoing, 'both ends are in the same call, alice calling');
    for (const [who, r] of [['alice', ra], ['bob', rb]]) {
      const problems = mediaFlowed(r);
      check(problems.length === 0, `${who} sent and received audio and video`, problems.length ? problems : undefined);
      check(r && r.remoteVideo.width === 640 && r.remoteVideo.height === 480, `${who} decodes 640x480 video`,
        r && { width: r.remoteVideo.width, height: r.remoteVideo.height });
      check(r && r.remoteAudio.frequency > 100 && r.remoteAudio.frequency < 4000, `${who} hears a tone`,
        r && { hz: r.remoteAudio.frequency });
      console.log(`# ${who}: remote tone ${r && r.remoteAudio.frequency} Hz, video luma ${r && round1(r.remoteVideo.meanLuma)}, ` +
        `change ${r && round1(r.remoteVideo.maxChange)}, marks ${JSON.stringify(r && r.marks)}`);
    }
    check(ra && rb && Math.abs(ra.remoteAudio.frequency - rb.remoteAudio.frequency) <= 0.05 * ra.remoteAudio.frequency,
      'both ends hear the same fake tone');
    let ping = null;
    try {
      ping = await alice.ping(50, 20);
    } catch (e) {
      ping = { error: String(e.message) };
    }
    check(ping && ping.received >= 45, 'the unreliable data channel echoes pings', ping);
    // Mid-call glare: both ends renegotiate at once; the polite callee
    // rolls back or the impolite caller ignores, and the call goes on.
    const before = await bob.page.evaluate(() => window.parley.negotiation());
    const beforeA = await alice.page.evaluate(() => window.parley.negotiation());
    const offersBefore = [beforeA.offersSent, before.offersSent, beforeA.rtpFrames];
    await Promise.all([alice, bob].map(p => p.page.evaluate(() => window.parley.renegotiate())));
    let settled = null, last = null;
    try {
      settled = await waitUntil(async () => {
        const n = last = await Promise.all([alice, bob].map(p => p.page.evaluate(() => window.parley.negotiation())));
        // When one offer arrives before the other side made its own, that
        // side's answer also satisfies its restartIce(): no glare, one offer.
        const done = n.every(x => x && x.signalingState === 'stable' && !x.makingOffer &&
          x.connectionState === 'connected') &&
          n[0].offersSent + n[1].offersSent > offersBefore[0] + offersBefore[1] &&
          n[1].rtpFrames > before.rtpFrames + 15 && n[0].rtpFrames > offersBefore[2] + 15;
        return done ? n : null;
      }, 15000, 'the renegotiation to settle');
    } catch (e) {
      // Checked below.
    }
    check(settled !== null, 'a mid-call glare settles and video goes on', settled ? undefined : { before, last });
    if (settled)
      console.log(`# glare: alice ignored ${settled[0].offersIgnored} offer(s), bob rolled back ${settled[1].rollbacks} time(s)`);

    let ended = null;
    try {
      ended = await hangupAndWait(alice, bob, callId, 10000);
    } catch (e) {
      // Checked below.
    }
    check(ended && ended.reason === 'hangup' && ended.by === 'remote', 'bob sees alice hang up', ended && ended.reason);
    const afterA = await alice.report(callId);
    const afterB = await bob.report(callId);
    check(afterA.state === 'ended' && afterB.state === 'ended', 'the call ended at both ends');

    // 2. An audio call the other way round; the callee hangs up.
    await bob.setAutoAnswer(false);
    await alice.setAutoAnswer(true);
    try {
      callId = await establish(bob, alice, false, 20000, ['first-remote-audio']);
      check(true, 'audio call bob → alice: connected with sound at both ends');
    } catch (e) {
      check(false, 'audio call bob → alice: connected with sound at both ends', String(e.message));
    }
    const rAudio = await alice.report(callId);
    check(rAudio && !rAudio.video && !rAudio.stats.inbound.video && rAudio.stats.inbound.audio,
      'the audio call carries no video', rAudio && { video: rAudio.video, inbound: Object.keys(rAudio.stats.inbound) });
    ended = null;
    try {
      ended = await hangupAndWait(alice, bob, callId, 10000);
    } catch (e) {
      // Checked below.
    }
    check(ended && ended.reason === 'hangup', 'bob sees the callee hang up');

    // 3. A rejected call.
    await alice.setAutoAnswer(false);
    callId = await bob.call(alice.userId, { video: true });
    const rang = await alice.maybeEvent(on('incoming', callId), 10000);
    check(rang && rang.media === 'video', 'alice is rung for a video call', rang && rang.media);
    if (rang)
      await alice.reject();
    ended = await bob.maybeEvent(on('ended', callId), 10000);
    check(ended && ended.reason === 'rejected', 'bob sees the call rejected', ended && ended.reason);

    // 4. Calling a user that has no device online ends the call as offline.
    const carol = await account(base, uniqueName('ic'), pw8);
    callId = await alice.call(carol.userId, { video: false });
    ended = await alice.maybeEvent(on('ended', callId), 10000);
    check(ended && ended.reason === 'offline', 'a call to an offline user ends as offline', ended && ended.reason);

    // 5. Both call each other at once: the smaller call id survives.
    await Promise.all([alice.setAutoAnswer(true), bob.setAutoAnswer(true)]);
    const [ca, cb] = await Promise.all([alice.call(bob.userId, { video: false }), bob.call(alice.userId, { video: false })]);
    // When one offer arrived before the other side called, that side
    // answers it instead (call() returns the ringing call's id).
    const survivor = ca < cb ? ca : cb;
    const both = await Promise.all([alice, bob].map(p => p.maybeEvent(on('connected', survivor), 15000)));
    check(both.every(Boolean), 'both calling at once: the smaller call id connects at both ends', { ca, cb });
    if (ca !== cb) {
      const [loser, loserOwner] = ca < cb ? [cb, bob] : [ca, alice];
      const dropped = await loserOwner.maybeEvent(on('ended', loser), 5000);
      check(dropped && dropped.reason === 'glare', 'the other call is dropped', dropped && dropped.reason);
    } else {
      check(true, 'the other call is dropped # SKIP one call arrived before the other was made');
    }
    await bob.hangup();
    await alice.maybeEvent(on('ended', survivor), 10000);

    const errors = [...alice.pageErrors, ...bob.pageErrors];
    check(errors.length === 0, 'no script errors in the pages', errors.length ? errors : undefined);
    const callErrors = [...alice.events, ...bob.events].filter(e => e.event === 'call-error' || e.event === 'candidate-error');
    check(callErrors.length === 0, 'no WebRTC errors', callErrors.length ? callErrors : undefined);
  });

  console.log(`1..${n}`);
  return failed === 0 ? 0 : 1;
}

// ---------------------------------------------------------------- bench

async function bench (pw, opts) {
  const base = opts.server;
  const calls = Math.round(positiveNumber(opts, 'calls', 20));
  const cpuSeconds = positiveNumber(opts, 'cpu-seconds', 10);
  const pings = Math.round(positiveNumber(opts, 'pings', 200));
  const verbose = opts.verbose ? (peer, ev) => console.error(`${peer.name} ${JSON.stringify(ev)}`) : null;
  const out = process.stdout;

  return withPeers(pw, ['caller', 'callee'], verbose, async (a, b) => {
    await a.login(base, uniqueName('ba'), 'bench password');
    await b.login(base, uniqueName('bb'), 'bench password');
    await b.setAutoAnswer(true);
    out.write(`Chromium ${a.version}, ${calls} sequential video calls (640x480 30 fps fake camera) ` +
      `through parley-server ${base}\n\n`);

    // Warm-up call (not counted): the first getUserMedia and codec set-up
    // of a fresh browser are slower than any later one.
    let callId = await establish(a, b, true, 30000);
    await hangupAndWait(a, b, callId, 10000);

    const rows = [];
    const columns = [
      ['callerConnected', 'A conn', a, 'connected'], ['calleeConnected', 'B conn', b, 'connected'],
      ['callerFirstVideo', 'A video', a, 'first-remote-video'], ['calleeFirstVideo', 'B video', b, 'first-remote-video'],
      ['callerFirstAudioRtp', 'A aRTP', a, 'first-remote-audio-rtp'], ['calleeFirstAudioRtp', 'B aRTP', b, 'first-remote-audio-rtp'],
      ['callerFirstAudio', 'A sound', a, 'first-remote-audio'], ['calleeFirstAudio', 'B sound', b, 'first-remote-audio'],
      ['callerOfferSent', 'A offer', a, 'offer-sent'], ['offerAtCallee', 'offer@B', b, 'offer-received'],
    ];
    out.write('ms from call() at A (A caller, B callee; conn = connectionState connected, video = first decoded\n' +
      'frame, aRTP = first audio packet, sound = first non-silent audio, A offer = offer sent (after\n' +
      'getUserMedia and createOffer), offer@B = offer received):\n' +
      ' call' + columns.map(c => c[1].padStart(9)).join('') + '\n');
    for (let i = 1; i <= calls; i++) {
      callId = await establish(a, b, true, 30000);
      // Sound comes in beeps: wait a little for the first one at both ends.
      await Promise.all([a, b].map(p => p.maybeEvent(on('first-remote-audio', callId), 3000)));
      const start = a.events.find(on('calling', callId)).wallMs;
      const row = { call: i };
      for (const [key, , peer, name] of columns) {
        const ev = peer.events.find(on(name, callId));
        row[key] = ev ? round1(ev.wallMs - start) : null;
      }
      rows.push(row);
      out.write(String(i).padStart(5) +
        columns.map(c => (row[c[0]] === null ? '-' : row[c[0]].toFixed(1)).padStart(9)).join('') + '\n');
      await hangupAndWait(a, b, callId, 10000);
    }
    const summary = {};
    for (const key of Object.keys(rows[0]).filter(k => k !== 'call'))
      summary[key] = stat(rows.map(r => r[key]));
    out.write('\n                      median      p90      min      max\n');
    for (const [key, s] of Object.entries(summary))
      out.write(`${key.padEnd(20)} ${String(s.median).padStart(8)} ${String(s.p90).padStart(8)} ` +
        `${String(s.min).padStart(8)} ${String(s.max).padStart(8)}\n`);

    // One longer call: CPU of each browser's process tree, then data
    // channel pings with media flowing.
    callId = await establish(a, b, true, 30000, ['first-remote-video', 'remote-video-ok']);
    await Promise.all([a, b].map(p => p.maybeEvent(on('remote-audio-frequency', callId), 3000)));
    const before = [sampleTree(a.pid), sampleTree(b.pid)];
    const t0 = mono();
    await new Promise(r => setTimeout(r, cpuSeconds * 1000));
    const after = [sampleTree(a.pid), sampleTree(b.pid)];
    const seconds = (mono() - t0) / 1000;
    const cpu = { caller: cpuBetween(before[0], after[0], seconds), callee: cpuBetween(before[1], after[1], seconds) };
    const ra = await a.report(callId);
    const rb = await b.report(callId);
    const ping = await a.ping(pings, 20);
    await hangupAndWait(a, b, callId, 10000);

    const media = r => ({
      receivedFps: round1(r.stats.inbound.video && r.stats.inbound.video.framesPerSecond),
      receivedSize: r.stats.inbound.video ? `${r.stats.inbound.video.width}x${r.stats.inbound.video.height}` : null,
      sentFps: round1(r.stats.outbound.video && r.stats.outbound.video.framesPerSecond),
      videoCodec: r.stats.inbound.video && r.stats.inbound.video.codec,
      audioCodec: r.stats.inbound.audio && r.stats.inbound.audio.codec,
      qualityLimitation: r.stats.outbound.video && r.stats.outbound.video.qualityLimitationReason,
      toneHz: r.remoteAudio.frequency, videoMoving: r.remoteVideo.moving, videoNonBlack: r.remoteVideo.nonBlack,
      problems: mediaFlowed(r),
    });
    const mediaA = media(ra), mediaB = media(rb);
    const load = os.loadavg().map(round1);
    out.write(`\nCPU during a ${round1(seconds)} s video call (% of one core, ${clockTicks()} ticks/s; ` +
      `${os.cpus().length} cores, load average ${load.join(' ')}):\n`);
    for (const [who, c, m] of [['caller', cpu.caller, mediaA], ['callee', cpu.callee, mediaB]])
      out.write(`  ${who}: ${c.total}%  ${JSON.stringify(c.byType)}  receiving ${m.receivedSize} at ${m.receivedFps} fps ` +
        `(${m.videoCodec}, ${m.audioCodec}), sending ${m.sentFps} fps, tone ${m.toneHz} Hz\n`);
    const rtt = { sent: ping.sent, received: ping.received, p50: round1(ping.p50), p90: round1(ping.p90), p99: round1(ping.p99), max: round1(ping.max) };
    out.write(`Data channel ping RTT (unreliable, ${ping.sent} pings, ${ping.received} answered): ` +
      `p50 ${rtt.p50} ms, p99 ${rtt.p99} ms\n`);

    const result = {
      chromium: {
        version: a.version, calls, server: base,
        setupMs: {
          connected: { caller: summary.callerConnected, callee: summary.calleeConnected },
          firstVideo: { caller: summary.callerFirstVideo, callee: summary.calleeFirstVideo },
          firstAudioRtp: { caller: summary.callerFirstAudioRtp, callee: summary.calleeFirstAudioRtp },
          firstAudio: { caller: summary.callerFirstAudio, callee: summary.calleeFirstAudio },
          offerSent: summary.callerOfferSent,
          offerAtCallee: summary.offerAtCallee,
        },
        perCall: rows,
        dcPingMs: rtt,
        cpuPercent: { seconds: round1(seconds), caller: cpu.caller.total, callee: cpu.callee.total, callerByType: cpu.caller.byType, calleeByType: cpu.callee.byType },
        media: { caller: mediaA, callee: mediaB },
        machine: { cores: os.cpus().length, loadAverage: load },
      },
    };
    out.write(JSON.stringify(result) + '\n');
    const problems = [...mediaA.problems, ...mediaB.problems];
    if (problems.length)
      console.error('media problems: ' + problems.join(', '));
    return problems.length ? 1 : 0;
  });
}

// ---------------------------------------------------------------- peer

async function peer (pw, opts) {
  const base = opts.server;
  if (!opts.user || !opts.password)
    throw new UsageError('peer needs --user and --password');
  if (!!opts.call === !!opts['auto-answer'])
    throw new UsageError('peer needs exactly one of --call USER and --auto-answer');
  const duration = positiveNumber(opts, 'duration', 5);
  const timeout = positiveNumber(opts, 'timeout', 60);
  const tone = opts.tone === undefined ? null : positiveNumber(opts, 'tone', 0);
  if (tone !== null && (!Number.isInteger(tone) || tone < 50 || tone > 8000))
    throw new UsageError('--tone must be a whole number of hertz from 50 to 8000');
  const stillVideo = !!opts['still-video'];
  const line = ev => process.stdout.write(JSON.stringify(ev) + '\n');
  // A steady tone instead of the fake microphone's beeps.
  const toneDir = tone ? fs.mkdtempSync(path.join(os.tmpdir(), 'parley-tone-')) : null;
  const extraArgs = tone ? [`--use-file-for-fake-audio-capture=${toneWav(toneDir, tone)}`] : [];

  try {
    return await peerCall(pw, opts, { duration, timeout, stillVideo, line, extraArgs });
  } finally {
    if (toneDir)
      fs.rmSync(toneDir, { recursive: true, force: true });
  }
}

async function peerCall (pw, opts, { duration, timeout, stillVideo, line, extraArgs }) {
  const base = opts.server;
  return withPeers(pw, [opts.user], (p, ev) => line(ev), async (me) => {
    await me.login(base, opts.user, opts.password);
    let callId;
    if (opts.call) {
      const target = await resolveUser(base, me.account.token, opts.call);
      callId = await me.call(target, {
        video: !opts['audio-only'], dataChannel: true, remapPayloadTypes: !!opts['remap-payload-types'],
      });
    } else {
      await me.setAutoAnswer(true);
      callId = (await me.waitEvent(on('incoming'), timeout * 1000, 'incoming call')).callId;
    }
    const deadline = Date.now() + timeout * 1000;
    const left = () => Math.max(1, deadline - Date.now());
    const ended = me.waitEvent(on('ended', callId), timeout * 1000 + duration * 1000 + 5000, 'end').catch(() => null);
    // Media flowing at our end: connected, sound, and in a video call
    // moving non-black frames.
    const flowing = (async () => {
      const first = await me.waitEvent(on('connected', callId), left(), 'connected');
      const report = await me.report(callId);
      const wanted = ['first-remote-audio', 'remote-audio-frequency'];
      if (report.video)
        wanted.push('first-remote-video', stillVideo ? 'remote-video-non-black' : 'remote-video-ok');
      for (const w of wanted)
        await me.waitEvent(on(w, callId), left(), w);
      return first;
    })();
    const first = await Promise.race([flowing.then(() => 'flowing', e => String(e.message)), ended.then(() => 'ended')]);
    // The RTP statistics exist only while the connection does: judge the
    // report taken as soon as media flowed both ways (or the call ended).
    // Our own first video RTP may follow the first frames received (the
    // encoder starts late on a loaded machine), and statistics have no
    // event: look again every 50 ms until every kind was sent, within the
    // time limit.
    let live = await me.report(callId);
    while (first === 'flowing' && live.state !== 'ended' && !sentAll(live) && Date.now() < deadline) {
      await new Promise(r => setTimeout(r, 50));
      live = await me.report(callId);
    }
    let report = live;
    if (first === 'flowing') {
      // Keep the call up for --duration seconds, or until the other side ends it.
      await Promise.race([ended, new Promise(r => setTimeout(r, duration * 1000))]);
      report = await me.report(callId);
      if (report.state !== 'ended')
        await me.hangup();
      report = await me.report(callId);
    }
    let problems = mediaFlowed(live, stillVideo);
    if (first !== 'flowing' && first !== 'ended')
      problems = [first, ...problems];
    line({ t: round1(mono()), event: 'result', ok: problems.length === 0, problems, live, report });
    return problems.length === 0 ? 0 : 1;
  }, extraArgs);
}

// ---------------------------------------------------------------- main

async function main () {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
    const mode = opts._[0];
    if (opts.help || !['selftest', 'bench', 'peer'].includes(mode))
      throw new UsageError('usage: parley-interop.mjs (selftest|bench|peer) --server URL [options]; see docs/interop.md');
    if (!opts.server)
      throw new UsageError('--server URL is needed');
    opts.server = opts.server.replace(/\/+$/, '');
    new URL(opts.server);
    if (!fs.existsSync(CHROMIUM)) {
      console.error(`SKIP: ${CHROMIUM} is missing (scripts/setup-chromium.sh installs it)`);
      return EXIT_SKIP;
    }
    const pw = loadPlaywright();
    if (!pw) {
      console.error('SKIP: playwright-core is missing (scripts/setup-chromium.sh DIR, then PARLEY_INTEROP_MODULES=DIR)');
      return EXIT_SKIP;
    }
    if (mode === 'selftest')
      return await selftest(pw, opts);
    if (mode === 'bench')
      return await bench(pw, opts);
    return await peer(pw, opts);
  } catch (e) {
    if (e instanceof UsageError || e instanceof TypeError && /URL/.test(e.message)) {
      console.error(e.message);
      return 2;
    }
    console.error('parley-interop: ' + (e && e.stack || e));
    return 1;
  }
}

process.exit(await main());
