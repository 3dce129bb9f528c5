/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A standard browser peer of Parley calls: the Calls section of
 * docs/protocol.md over Parley's WebSocket, with MDN's Perfect Negotiation
 * pattern on the RTCPeerConnection (the caller impolite, the callee
 * polite). It measures what the interop tests and the call benchmark need
 * (docs/interop.md) and is driven through window.parley:
 *
 *   await parley.connect (wsUrl, accessToken)  → own user id (after hello)
 *   await parley.call (peerUserId, {video, dataChannel})  → call id
 *   parley.setAutoAnswer (true)
 *   parley.hangup ()
 *   await parley.ping (count, intervalMs)  → data channel RTTs
 *   await parley.report ()  → marks, media checks and RTP stats
 *
 * Every event also goes to window.parleyReport (event) when the driver
 * exposed that function.
 */
'use strict';

(() => {
  const VIDEO = { width: 640, height: 480, frameRate: 30 };
  // Audio louder than this (RMS of full scale) counts as sound.
  const AUDIO_RMS_THRESHOLD = 0.01;
  // Mean luma (0–255) above which a frame is not black, and mean absolute
  // luma change between probes above which the picture moves.
  const LUMA_NON_BLACK = 16;
  const LUMA_MOVING = 0.5;
  const RESTART_AFTER_DISCONNECTED_MS = 4000;

  const logEl = document.getElementById('log');
  let ws = null;
  let autoAnswer = false;
  let audioContext = null;

  const parley = {
    userId: null,
    events: [],
    current: null,
    calls: [],
    framesSent: 0,
    framesReceived: 0,
  };
  window.parley = parley;

  function emit (event, fields) {
    // wallMs (the page's time origin plus its monotonic clock) compares
    // across browser processes on one machine.
    const ev = { event, wallMs: performance.timeOrigin + performance.now(), ...fields };
    parley.events.push(ev);
    if (logEl.textContent.length < 100000)
      logEl.textContent += JSON.stringify(ev) + '\n';
    if (typeof window.parleyReport === 'function')
      window.parleyReport(ev);
  }

  function randomId (prefix) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return prefix + Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  }

  function send (frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      emit('send-failed', { type: frame.type });
      return false;
    }
    ws.send(JSON.stringify(frame));
    parley.framesSent++;
    return true;
  }

  function percentile (sorted, p) {
    if (sorted.length === 0)
      return null;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
    return sorted[i];
  }

  function getAudioContext () {
    if (!audioContext)
      audioContext = new AudioContext();
    if (audioContext.state === 'suspended')
      audioContext.resume().catch(() => {});
    return audioContext;
  }

  class Call {
    constructor ({ callId, peerId, outgoing, video, dataChannel, remapPayloadTypes }) {
      this.id = callId;
      this.peerId = peerId;
      this.outgoing = outgoing;
      // The caller is impolite and the callee polite, for the whole call.
      this.polite = !outgoing;
      this.video = video;
      this.wantDataChannel = dataChannel;
      // Offers with Opus and VP8 under other payload type numbers than
      // Chromium's own (111 and 96), as other browsers use.
      this.remapPayloadTypes = !!remapPayloadTypes;
      this.payloadTypes = null;
      this.gen = 0;
      this.t0 = performance.now();
      this.marks = {};
      this.state = outgoing ? 'outgoing-ringing' : 'incoming-ringing';
      this.endReason = null;
      this.pc = null;
      this.stream = null;
      this.dc = null;
      this.answered = false;
      this.offersSent = 0;
      this.offerRefs = new Set();
      this.makingOffer = false;
      this.ignoreOffer = false;
      this.isSettingRemoteAnswerPending = false;
      this.pendingCandidates = [];
      this.queue = Promise.resolve();
      this.timers = [];
      this.pings = new Map();
      this.pingSeq = 0;
      this.audio = { frequency: null, voiced: 0, peakRms: 0, power: null, binHz: 0 };
      this.videoProbe = { colors: null, frames: 0, meanLuma: null, maxLuma: 0, maxChange: 0, nonBlack: false, moving: false, prev: null, width: 0, height: 0 };
    }

    ms () {
      return Math.round((performance.now() - this.t0) * 10) / 10;
    }

    mark (name, fields) {
      if (name in this.marks)
        return;
      this.marks[name] = this.ms();
      emit(name, { callId: this.id, ms: this.marks[name], ...fields });
    }

    setState (state) {
      if (this.state === state)
        return;
      this.state = state;
      emit('state', { callId: this.id, state, ms: this.ms() });
    }

    sendFrame (type, fields) {
      return send({ type, recipientId: this.peerId, callId: this.id, ...fields });
    }

    // Serialises the handling of this call's incoming frames.
    enqueue (what, fn) {
      this.queue = this.queue.then(() => this.ended ? null : fn()).catch(e => {
        emit('call-error', { callId: this.id, what, message: String(e && e.message || e) });
      });
      return this.queue;
    }

    get ended () {
      return this.state === 'ended';
    }

    async openMedia () {
      if (this.stream)
        return;
      // Without audio processing the far side gets Chromium's fake beeps
      // as they are (echo cancellation and gain control smear them).
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
        video: this.video ? VIDEO : false,
      });
      document.getElementById('local').srcObject = this.stream;
      this.mark('media-ready');
    }

    // Builds the RTCPeerConnection of the current generation.
    buildPeerConnection () {
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      const gen = this.gen;
      let endSent = false;
      this.pc = pc;
      this.makingOffer = false;
      this.ignoreOffer = false;
      this.isSettingRemoteAnswerPending = false;

      pc.onnegotiationneeded = async () => {
        if (this.pc !== pc || this.ended || pc.signalingState !== 'stable')
          return;
        // The callee offers only once it answered (renegotiation).
        if (!this.outgoing && !this.answered)
          return;
        try {
          this.makingOffer = true;
          if (this.remapPayloadTypes) {
            const offer = await pc.createOffer();
            await pc.setLocalDescription({ type: 'offer', sdp: this.remapOffer(offer.sdp) });
          } else {
            await pc.setLocalDescription();
          }
          if (this.pc !== pc || pc.localDescription.type !== 'offer')
            return;
          const frame = { id: randomId('o'), sdp: pc.localDescription.sdp, gen };
          if (this.outgoing && this.offersSent === 0)
            frame.media = this.video ? 'video' : 'audio';
          this.offerRefs.add(frame.id);
          this.offersSent++;
          this.sendFrame('call-offer', frame);
          if (this.offersSent === 1)
            this.mark('offer-sent', { gen });
          else
            emit('renegotiation-offer-sent', { callId: this.id, gen, n: this.offersSent, ms: this.ms() });
        } catch (e) {
          emit('call-error', { callId: this.id, what: 'offer', message: String(e) });
        } finally {
          this.makingOffer = false;
        }
      };

      pc.onicecandidate = ({ candidate }) => {
        if (this.pc !== pc || this.ended)
          return;
        if (candidate && candidate.candidate) {
          this.sendFrame('call-ice-candidate', {
            gen,
            candidate: {
              candidate: candidate.candidate,
              sdpMid: candidate.sdpMid,
              sdpMLineIndex: candidate.sdpMLineIndex,
            },
          });
        } else if (!candidate && !endSent) {
          // An empty candidate ends gathering (docs/protocol.md).
          endSent = true;
          const first = pc.getTransceivers().find(t => t.mid !== null);
          this.sendFrame('call-ice-candidate', {
            gen,
            candidate: { candidate: '', sdpMid: first ? first.mid : '0', sdpMLineIndex: 0 },
          });
        }
      };

      pc.onconnectionstatechange = () => {
        if (this.pc !== pc)
          return;
        const state = pc.connectionState;
        emit('pc-state', { callId: this.id, gen, state, ms: this.ms() });
        if (state === 'connected') {
          this.mark('connected');
          this.setState('active');
          this.clearDisconnectTimer();
        } else if (state === 'failed') {
          this.restart('failed');
        } else if (state === 'disconnected') {
          this.clearDisconnectTimer();
          this.disconnectTimer = setTimeout(() => {
            if (this.pc === pc && pc.connectionState === 'disconnected')
              this.restart('disconnected');
          }, RESTART_AFTER_DISCONNECTED_MS);
        }
      };

      pc.ontrack = ({ track }) => {
        if (this.pc !== pc)
          return;
        emit('remote-track', { callId: this.id, kind: track.kind, ms: this.ms() });
        if (track.kind === 'video')
          this.watchVideo(track);
        else if (track.kind === 'audio')
          this.watchAudio(track);
      };

      pc.ondatachannel = ({ channel }) => {
        if (this.pc === pc)
          this.setupDataChannel(channel);
      };
      this.watchFirstPackets(pc);
      return pc;
    }

    // Renames the payload types of Opus and VP8 (and the RTX streams that
    // point at them) to numbers this SDP does not use otherwise, chosen at
    // the first offer and kept for the whole call.
    remapOffer (sdp) {
      const used = new Set([...sdp.matchAll(/^a=rtpmap:(\d+) /gm)].map(m => Number(m[1])));
      if (!this.payloadTypes) {
        const free = [];
        for (let pt = 127; pt >= 96 && free.length < 2; pt--)
          if (!used.has(pt))
            free.push(pt);
        this.payloadTypes = { opus: free[0], VP8: free[1] };
      }
      const sections = sdp.split(/(?=^m=)/m);
      return sections.map(section => {
        for (const [codec, to] of Object.entries(this.payloadTypes)) {
          const m = section.match(new RegExp(`^a=rtpmap:(\\d+) ${codec}/`, 'mi'));
          if (!m || Number(m[1]) === to)
            continue;
          const from = m[1];
          section = section
            .replace(/^(m=\S+ \S+ \S+)((?: \d+)*)/m, (all, head, pts) =>
              head + pts.split(' ').map(pt => pt === from ? String(to) : pt).join(' '))
            .replace(new RegExp(`^a=(rtpmap|fmtp|rtcp-fb):${from} `, 'gm'), `a=$1:${to} `)
            .replace(new RegExp(`apt=${from}(?=\\D|$)`, 'gm'), `apt=${to}`)
            // RED's redundant encodings: a=fmtp:63 111/111.
            .replace(new RegExp(`^(a=fmtp:\\d+ )${from}/${from}(?=\r|$)`, 'gm'), `$1${to}/${to}`);
        }
        return section;
      }).join('');
    }

    // The first RTP packet of each kind, from the stats every 20 ms until
    // all kinds arrived (sound is only heard at the next beep).
    watchFirstPackets (pc) {
      const started = performance.now();
      const timer = setInterval(async () => {
        if (this.pc !== pc || this.ended || performance.now() - started > 20000) {
          clearInterval(timer);
          return;
        }
        // Every kind this connection is meant to receive, known from the
        // start (direction), not only once negotiated (currentDirection).
        const kinds = pc.getTransceivers().filter(t => t.mid !== null && !t.stopped &&
          t.direction.includes('recv')).map(t => t.receiver.track.kind);
        let missing = kinds.length === 0;
        const report = await pc.getStats();
        for (const kind of kinds) {
          let got = false;
          report.forEach(s => {
            if (s.type === 'inbound-rtp' && s.kind === kind && s.packetsReceived > 0)
              got = true;
          });
          if (got)
            this.mark(`first-remote-${kind}-rtp`);
          else
            missing = true;
        }
        if (!missing)
          clearInterval(timer);
      }, 20);
      this.timers.push(timer);
    }

    addLocalMedia () {
      for (const track of this.stream.getTracks())
        this.pc.addTrack(track, this.stream);
      if (this.outgoing && this.wantDataChannel)
        this.setupDataChannel(this.pc.createDataChannel('ping', { ordered: false, maxRetransmits: 0 }));
    }

    clearDisconnectTimer () {
      if (this.disconnectTimer)
        clearTimeout(this.disconnectTimer);
      this.disconnectTimer = null;
    }

    // A new connection under the next generation (docs/protocol.md,
    // Restart): we offer, the other side rebuilds and answers.
    restart (why) {
      if (this.ended)
        return;
      this.gen++;
      emit('restart', { callId: this.id, gen: this.gen, why, ms: this.ms() });
      this.setState('reconnecting');
      this.closePeerConnection();
      this.buildPeerConnection();
      this.answered = true;
      this.addLocalMedia();
      // negotiationneeded follows on both sides of the glare rules.
    }

    closePeerConnection () {
      this.clearDisconnectTimer();
      if (this.dc)
        this.dc.close();
      this.dc = null;
      if (this.pc)
        this.pc.close();
      this.pc = null;
      this.pendingCandidates = this.pendingCandidates.filter(c => c.gen > this.gen);
    }

    // MDN's Perfect Negotiation, with Parley's generations.
    async handleDescription (description, gen) {
      if (gen < this.gen) {
        emit('stale-description', { callId: this.id, type: description.type, gen });
        return;
      }
      if (gen > this.gen) {
        if (description.type !== 'offer') {
          emit('stale-description', { callId: this.id, type: description.type, gen });
          return;
        }
        // A newer generation: rebuild and adopt it.
        this.gen = gen;
        emit('restart', { callId: this.id, gen, why: 'remote', ms: this.ms() });
        this.setState('reconnecting');
        this.closePeerConnection();
        this.buildPeerConnection();
      }
      const pc = this.pc;
      const readyForOffer = !this.makingOffer &&
        (pc.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
      const offerCollision = description.type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) {
        this.offersIgnored = (this.offersIgnored || 0) + 1;
        emit('offer-ignored', { callId: this.id, gen, ms: this.ms() });
        return;
      }
      if (offerCollision) {
        this.rollbacks = (this.rollbacks || 0) + 1;
        emit('rollback', { callId: this.id, gen, ms: this.ms() });
      }
      this.isSettingRemoteAnswerPending = description.type === 'answer';
      await pc.setRemoteDescription(description); // rolls back our offer on a collision
      this.isSettingRemoteAnswerPending = false;
      if (description.type === 'offer') {
        // Tracks added after the remote offer reuse its transceivers.
        if (pc.getSenders().every(s => !s.track))
          this.addLocalMedia();
        await pc.setLocalDescription();
        this.sendFrame('call-answer', { sdp: pc.localDescription.sdp, gen: this.gen });
        this.mark('answer-sent');
      } else {
        this.mark('answer-received');
      }
      await this.flushCandidates();
    }

    async addCandidate (init, gen) {
      if (gen < this.gen)
        return;
      if (gen > this.gen || !this.pc || !this.pc.remoteDescription) {
        this.pendingCandidates.push({ init, gen });
        return;
      }
      try {
        await this.pc.addIceCandidate(init);
      } catch (e) {
        if (!this.ignoreOffer)
          emit('candidate-error', { callId: this.id, message: String(e) });
      }
    }

    async flushCandidates () {
      const ready = this.pendingCandidates.filter(c => c.gen === this.gen);
      this.pendingCandidates = this.pendingCandidates.filter(c => c.gen > this.gen);
      for (const c of ready)
        await this.addCandidate(c.init, c.gen);
    }

    // The callee answers the ringing first offer.
    async answer () {
      if (this.outgoing || this.answered || this.ended)
        return;
      this.answered = true;
      this.setState('connecting');
      await this.openMedia();
      if (this.ended)
        return;
      this.sendFrame('call-accept', {});
      this.mark('accept-sent');
      this.buildPeerConnection();
      const offer = this.firstOffer;
      this.gen = offer.gen;
      await this.handleDescription({ type: 'offer', sdp: offer.sdp }, offer.gen);
    }

    setupDataChannel (dc) {
      this.dc = dc;
      dc.onopen = () => this.mark('datachannel-open', { label: dc.label });
      dc.onmessage = ({ data }) => {
        if (typeof data !== 'string')
          return;
        if (data.startsWith('ping')) {
          if (dc.readyState === 'open')
            dc.send('pong' + data.slice(4));
        } else if (data.startsWith('pong')) {
          const seq = Number(data.split(' ')[1]);
          const sentAt = this.pings.get(seq);
          if (sentAt !== undefined) {
            this.pings.delete(seq);
            this.pingRtts.push(performance.now() - sentAt);
            if (this.pingWaiter && this.pings.size === 0 && this.pingsDone)
              this.pingWaiter();
          }
        }
      };
    }

    watchVideo (track) {
      const video = document.getElementById('remote');
      video.srcObject = new MediaStream([track]);
      video.play().catch(e => emit('play-error', { kind: 'video', message: String(e) }));
      const probe = this.videoProbe;
      const onFrame = (now, meta) => {
        if (this.ended || video.srcObject.getVideoTracks()[0] !== track)
          return;
        probe.frames++;
        probe.width = meta.width;
        probe.height = meta.height;
        this.mark('first-remote-video', { width: meta.width, height: meta.height });
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);

      const canvas = document.getElementById('probe');
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      const colorCanvas = document.getElementById('colors');
      const colorCtx = colorCanvas.getContext('2d', { willReadFrequently: true });
      let probes = 0;
      const timer = setInterval(() => {
        if (this.ended || video.videoWidth === 0)
          return;
        // Every second, the colours of the picture's patches.
        if (probes++ % 5 === 0) {
          probe.colors = patchColors(colorCtx, video, colorCanvas.width, colorCanvas.height);
          emit('remote-video-colors', { callId: this.id, ms: this.ms(), colors: probe.colors });
        }
        ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        const luma = new Float32Array(canvas.width * canvas.height);
        let sum = 0;
        for (let i = 0; i < luma.length; i++) {
          luma[i] = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2];
          sum += luma[i];
        }
        probe.meanLuma = sum / luma.length;
        probe.maxLuma = Math.max(probe.maxLuma, probe.meanLuma);
        if (probe.prev) {
          let change = 0;
          for (let i = 0; i < luma.length; i++)
            change += Math.abs(luma[i] - probe.prev[i]);
          probe.maxChange = Math.max(probe.maxChange, change / luma.length);
        }
        probe.prev = luma;
        const wasOk = probe.nonBlack && probe.moving;
        probe.nonBlack = probe.maxLuma > LUMA_NON_BLACK;
        probe.moving = probe.maxChange > LUMA_MOVING;
        if (probe.nonBlack)
          this.mark('remote-video-non-black', { meanLuma: Math.round(probe.meanLuma) });
        if (!wasOk && probe.nonBlack && probe.moving)
          this.mark('remote-video-ok', { meanLuma: Math.round(probe.meanLuma), change: Math.round(probe.maxChange * 10) / 10 });
      }, 200);
      this.timers.push(timer);
    }

    watchAudio (track) {
      // Chromium feeds a remote WebRTC track to WebAudio only while a media
      // element plays it too.
      const el = document.getElementById('remote-audio');
      el.srcObject = new MediaStream([track]);
      el.play().catch(e => emit('play-error', { kind: 'audio', message: String(e) }));
      const ctx = getAudioContext();
      const source = ctx.createMediaStreamSource(new MediaStream([track]));
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 1024;
      analyser.smoothingTimeConstant = 0;
      source.connect(analyser);
      const time = new Float32Array(analyser.fftSize);
      const spectrum = new Float32Array(analyser.frequencyBinCount);
      const binHz = ctx.sampleRate / analyser.fftSize;
      const audio = this.audio;
      const timer = setInterval(() => {
        if (this.ended)
          return;
        analyser.getFloatTimeDomainData(time);
        let energy = 0;
        for (const s of time)
          energy += s * s;
        const rms = Math.sqrt(energy / time.length);
        audio.peakRms = Math.max(audio.peakRms, rms);
        if (rms < AUDIO_RMS_THRESHOLD)
          return;
        this.mark('first-remote-audio', { rms: Math.round(rms * 1000) / 1000 });
        // Chromium's fake microphone beeps: only windows near the loudest
        // seen so far count, and their power spectra are summed, so that
        // the beep's edges do not decide the dominant frequency.
        if (rms < 0.3 * audio.peakRms)
          return;
        analyser.getFloatFrequencyData(spectrum);
        if (!audio.power)
          audio.power = new Float64Array(spectrum.length);
        for (let i = 0; i < spectrum.length; i++)
          audio.power[i] += Math.pow(10, spectrum[i] / 10);
        audio.binHz = binHz;
        audio.voiced++;
        if (audio.voiced >= 5 && audio.frequency === null) {
          audio.frequency = this.dominantFrequency();
          this.mark('remote-audio-frequency', { hz: audio.frequency });
        }
        // The first estimate can still carry the start of the stream; the
        // sum over every voiced window so far, twice a second.
        if (audio.voiced % 50 === 0)
          emit('remote-audio-tone', { callId: this.id, ms: this.ms(), hz: this.dominantFrequency(), windows: audio.voiced });
      }, 10);
      this.timers.push(timer);
    }

    // The peak of the summed spectrum above 50 Hz, refined by a parabola
    // through the peak bin and its neighbours (in dB).
    dominantFrequency () {
      const power = this.audio.power;
      if (!power)
        return null;
      const binHz = this.audio.binHz;
      let best = Math.ceil(50 / binHz);
      for (let i = best; i < power.length - 1; i++)
        if (power[i] > power[best])
          best = i;
      const db = i => 10 * Math.log10(power[i] + 1e-30);
      const a = db(best - 1), b = db(best), c = db(best + 1);
      const denom = a - 2 * b + c;
      const offset = denom < 0 ? 0.5 * (a - c) / denom : 0;
      return Math.round((best + offset) * binHz);
    }

    end (reason, by) {
      if (this.ended)
        return;
      this.endReason = reason;
      this.closePeerConnection();
      for (const t of this.timers)
        clearInterval(t);
      this.timers = [];
      if (this.stream)
        for (const track of this.stream.getTracks())
          track.stop();
      this.setState('ended');
      this.mark('ended', { reason, by });
      if (parley.current === this)
        parley.current = null;
      if (this.pingWaiter)
        this.pingWaiter();
    }

    async stats () {
      const out = { inbound: {}, outbound: {}, remoteInbound: {}, pair: null };
      if (!this.pc)
        return out;
      const report = await this.pc.getStats();
      const codecs = {};
      report.forEach(s => {
        if (s.type === 'codec')
          codecs[s.id] = s.mimeType;
      });
      report.forEach(s => {
        if (s.type === 'inbound-rtp') {
          out.inbound[s.kind] = {
            packets: s.packetsReceived, bytes: s.bytesReceived, lost: s.packetsLost,
            codec: codecs[s.codecId] || null, framesDecoded: s.framesDecoded,
            framesPerSecond: s.framesPerSecond, width: s.frameWidth, height: s.frameHeight,
            jitterBufferDelayMs: s.jitterBufferEmittedCount ? Math.round(1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount) : null,
          };
        } else if (s.type === 'outbound-rtp') {
          out.outbound[s.kind] = {
            packets: s.packetsSent, bytes: s.bytesSent, codec: codecs[s.codecId] || null,
            framesEncoded: s.framesEncoded, framesPerSecond: s.framesPerSecond,
            width: s.frameWidth, height: s.frameHeight, qualityLimitationReason: s.qualityLimitationReason,
          };
        } else if (s.type === 'remote-inbound-rtp') {
          out.remoteInbound[s.kind] = { packetsLost: s.packetsLost, roundTripTime: s.roundTripTime };
        } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const local = report.get(s.localCandidateId), remote = report.get(s.remoteCandidateId);
          out.pair = {
            rttMs: s.currentRoundTripTime != null ? s.currentRoundTripTime * 1000 : null,
            local: local && local.candidateType, remote: remote && remote.candidateType,
          };
        }
      });
      return out;
    }

    async summary () {
      return {
        callId: this.id, peerId: this.peerId, outgoing: this.outgoing, video: this.video,
        state: this.state, endReason: this.endReason, gen: this.gen, marks: { ...this.marks },
        remoteAudio: { frequency: this.dominantFrequency(), voicedWindows: this.audio.voiced, peakRms: this.audio.peakRms },
        remoteVideo: (({ frames, meanLuma, maxLuma, maxChange, nonBlack, moving, width, height, colors }) =>
          ({ frames, meanLuma, maxLuma, maxChange, nonBlack, moving, width, height, colors }))(this.videoProbe),
        dataChannel: this.dc ? this.dc.readyState : null,
        stats: await this.stats(),
      };
    }
  }

  // The mean colours of 8 patches of the picture, as "RRGGBB" words: 4
  // columns by 2 rows of cells, each patch centred in its cell and a quarter
  // of its width and height, on a @width x @height copy of the frame (the
  // analysis of parley-cli's media-report, so that a test pattern's colours
  // can be compared the same way at both ends).
  function patchColors (ctx, video, width, height) {
    ctx.drawImage(video, 0, 0, width, height);
    const px = ctx.getImageData(0, 0, width, height).data;
    const cw = Math.floor(width / 4), ch = Math.floor(height / 2);
    const pw = Math.max(1, Math.floor(cw / 4)), ph = Math.max(1, Math.floor(ch / 4));
    const words = [];
    for (let row = 0; row < 2; row++) {
      for (let col = 0; col < 4; col++) {
        const x0 = col * cw + Math.floor((cw - pw) / 2), y0 = row * ch + Math.floor((ch - ph) / 2);
        const sum = [0, 0, 0];
        for (let y = y0; y < y0 + ph; y++)
          for (let x = x0; x < x0 + pw; x++)
            for (let c = 0; c < 3; c++)
              sum[c] += px[4 * (y * width + x) + c];
        words.push(sum.map(v => Math.round(v / (pw * ph)).toString(16).padStart(2, '0')).join('').toUpperCase());
      }
    }
    return words.join(' ');
  }

  function findCall (callId) {
    return parley.calls.find(c => c.id === callId);
  }

  function onOffer (msg) {
    const gen = Number.isInteger(msg.gen) ? msg.gen : 0;
    let call = findCall(msg.callId);
    if (call) {
      if (call.peerId !== msg.senderId)
        return;
      call.enqueue('offer', () => call.handleDescription({ type: 'offer', sdp: msg.sdp }, gen));
      return;
    }
    const current = parley.current;
    if (current && !current.ended) {
      // Both users called each other: the smaller call id survives on both
      // sides, the other is dropped without frames.
      if (current.outgoing && !current.answered && current.peerId === msg.senderId &&
          current.state === 'outgoing-ringing' && !current.marks['accept-received']) {
        if (msg.callId < current.id) {
          emit('glare-dropped', { callId: current.id, survivor: msg.callId });
          current.end('glare', 'local');
        } else {
          return;
        }
      } else {
        send({ type: 'call-reject', recipientId: msg.senderId, callId: msg.callId, reason: 'busy' });
        emit('rejected-busy', { callId: msg.callId, from: msg.senderId });
        return;
      }
    }
    call = new Call({
      callId: msg.callId, peerId: msg.senderId, outgoing: false,
      video: msg.media === 'video' || /\nm=video /.test('\n' + msg.sdp), dataChannel: false,
    });
    call.firstOffer = { sdp: msg.sdp, gen };
    call.gen = gen;
    parley.calls.push(call);
    parley.current = call;
    call.mark('offer-received', { from: msg.senderId, media: msg.media || null });
    emit('incoming', { callId: call.id, from: msg.senderId, media: msg.media || null });
    if (autoAnswer)
      call.enqueue('answer', () => call.answer());
  }

  function onFrame (msg) {
    switch (msg.type) {
    case 'call-offer':
      onOffer(msg);
      return;
    case 'error': {
      const call = parley.calls.find(c => c.offerRefs.has(msg.ref));
      if (call && msg.code === 'recipient-offline') {
        call.end('offline', 'server');
        return;
      }
      emit('server-error', { ref: msg.ref, code: msg.code, message: msg.message });
      return;
    }
    case 'hello':
    case 'ack':
    case 'pong':
    case 'presence':
    case 'message':
    case 'receipt':
    case 'typing':
    case 'read':
      return;
    }
    const call = findCall(msg.callId);
    if (!call || call.peerId !== msg.senderId) {
      if (msg.type && msg.type.startsWith('call-'))
        emit('unknown-call-frame', { type: msg.type, callId: msg.callId });
      return;
    }
    const gen = Number.isInteger(msg.gen) ? msg.gen : 0;
    switch (msg.type) {
    case 'call-answer':
      call.enqueue('answer', () => call.handleDescription({ type: 'answer', sdp: msg.sdp }, gen));
      break;
    case 'call-ice-candidate':
      if (msg.candidate && typeof msg.candidate === 'object')
        call.enqueue('candidate', () => call.addCandidate(msg.candidate, gen));
      break;
    case 'call-accept':
      call.mark('accept-received');
      if (call.state === 'outgoing-ringing')
        call.setState('connecting');
      break;
    case 'call-reject':
      call.end(msg.reason === 'busy' ? 'busy' : 'rejected', 'remote');
      break;
    case 'call-hangup':
      call.end(typeof msg.reason === 'string' ? msg.reason : 'hangup', 'remote');
      break;
    default:
      emit('unknown-frame', { type: msg.type });
    }
  }

  parley.connect = (wsUrl, token) => new Promise((resolve, reject) => {
    ws = new WebSocket(wsUrl);
    const timer = setTimeout(() => reject(new Error('no hello within 10 s')), 10000);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = ({ data }) => {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch (e) {
        emit('invalid-frame', {});
        return;
      }
      parley.framesReceived++;
      if (msg.type === 'hello' && !parley.userId) {
        clearTimeout(timer);
        parley.userId = msg.userId;
        emit('hello', { userId: msg.userId });
        resolve(msg.userId);
        return;
      }
      onFrame(msg);
    };
    ws.onclose = ({ code, reason }) => {
      clearTimeout(timer);
      emit('ws-closed', { code, reason });
      for (const call of parley.calls)
        call.end('failed', 'local');
      reject(new Error('WebSocket closed: ' + code));
    };
  });

  parley.setAutoAnswer = (on) => {
    autoAnswer = !!on;
    const current = parley.current;
    if (autoAnswer && current && current.state === 'incoming-ringing')
      current.enqueue('answer', () => current.answer());
  };

  parley.call = async (peerId, options = {}) => {
    const current = parley.current;
    // Calling someone whose call to us rings (or is being answered)
    // answers that call.
    if (current && !current.ended && !current.outgoing && current.peerId === peerId) {
      if (current.state === 'incoming-ringing')
        current.enqueue('answer', () => current.answer());
      return current.id;
    }
    if (current && !current.ended)
      throw new Error('already in a call');
    const call = new Call({
      callId: randomId('c'), peerId, outgoing: true,
      video: options.video !== false, dataChannel: options.dataChannel !== false,
      remapPayloadTypes: !!options.remapPayloadTypes,
    });
    parley.calls.push(call);
    parley.current = call;
    emit('calling', { callId: call.id, to: peerId, video: call.video });
    await call.openMedia();
    if (call.ended)
      return call.id;
    call.buildPeerConnection();
    call.addLocalMedia(); // negotiationneeded sends the first offer
    return call.id;
  };

  parley.answer = () => {
    const call = parley.current;
    if (!call || call.state !== 'incoming-ringing')
      throw new Error('no ringing call');
    return call.enqueue('answer', () => call.answer());
  };

  parley.reject = () => {
    const call = parley.current;
    if (!call || call.state !== 'incoming-ringing')
      throw new Error('no ringing call');
    call.sendFrame('call-reject', { reason: 'rejected' });
    call.end('rejected', 'local');
  };

  parley.hangup = (reason) => {
    const call = parley.current;
    if (!call)
      return false;
    if (!reason)
      reason = call.outgoing && !call.marks['accept-received'] && !call.marks.connected ? 'cancelled' : 'hangup';
    call.sendFrame('call-hangup', { reason });
    call.end(reason, 'local');
    return true;
  };

  // A fresh offer on the running connection (an ICE restart): both sides
  // doing it at once makes a mid-call glare.
  parley.renegotiate = () => {
    const call = parley.current;
    if (!call || !call.pc)
      throw new Error('no connection');
    call.pc.restartIce();
  };

  // The negotiation state of the current call, for waiting on a glare to
  // settle.
  parley.negotiation = async () => {
    const call = parley.current;
    if (!call || !call.pc)
      return null;
    let rtpFrames = null;
    (await call.pc.getStats()).forEach(st => {
      if (st.type === 'inbound-rtp' && st.kind === 'video')
        rtpFrames = st.framesDecoded;
    });
    const video = document.getElementById('remote');
    return {
      rtpFrames, videoTime: video.currentTime, videoPaused: video.paused, videoReady: video.readyState,
      transceivers: call.pc.getTransceivers().map(t => `${t.mid}:${t.currentDirection}:${t.receiver.track.readyState}:${t.receiver.track.muted}`),
      signalingState: call.pc.signalingState, connectionState: call.pc.connectionState,
      makingOffer: call.makingOffer, offersSent: call.offersSent,
      offersIgnored: call.offersIgnored || 0, rollbacks: call.rollbacks || 0,
      framesDecoded: call.videoProbe.frames,
    };
  };

  // Sends @count pings over the unreliable "ping" channel, @intervalMs
  // apart, and waits up to 2 s for the last pongs.
  parley.ping = async (count = 100, intervalMs = 20) => {
    const call = parley.current;
    if (!call || !call.dc || call.dc.readyState !== 'open')
      throw new Error('no open data channel');
    call.pings.clear();
    call.pingRtts = [];
    call.pingsDone = false;
    for (let i = 0; i < count; i++) {
      const seq = ++call.pingSeq;
      call.pings.set(seq, performance.now());
      call.dc.send('ping ' + seq + ' ' + Date.now());
      await new Promise(r => setTimeout(r, intervalMs));
    }
    call.pingsDone = true;
    if (call.pings.size > 0)
      await new Promise(r => {
        call.pingWaiter = r;
        setTimeout(r, 2000);
      });
    call.pingWaiter = null;
    const rtts = [...call.pingRtts].sort((a, b) => a - b);
    return {
      sent: count, received: rtts.length,
      p50: percentile(rtts, 50), p90: percentile(rtts, 90), p99: percentile(rtts, 99),
      max: rtts.length ? rtts[rtts.length - 1] : null,
    };
  };

  parley.report = async (callId) => {
    const call = callId ? findCall(callId) : (parley.current || parley.calls[parley.calls.length - 1]);
    return call ? call.summary() : null;
  };
})();
