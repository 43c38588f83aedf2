// Candidate interview page: link check, camera/microphone check, WebRTC call with the AI
// interviewer over a WebSocket signaling channel, and reconnection after short network blips.
//
// Plain ES2020, no build step and no third-party code. Automated tests observe the page through
// `document.body.dataset.state` (loading | error | ready | connecting | in-call | reconnecting |
// ended) and `document.body.dataset.speaking` (interviewer | candidate | none).
'use strict';

(() => {
  // The server keeps a detached call alive for `webrtc.rejoin_grace_secs` (20 s by default), so
  // retrying for about as long gives a blip the best chance without outliving the call.
  const RECONNECT_BUDGET_MS = 20000;
  const FIRST_RETRY_DELAY_MS = 1000;
  // One attempt = socket + offer + answer + ICE. The server gathers its candidates before it
  // answers, which can take a few seconds when STUN/TURN servers are configured.
  const ATTEMPT_TIMEOUT_MS = 12000;
  // ICE often recovers by itself from a brief "disconnected"; only act if it lasts.
  const DISCONNECT_GRACE_MS = 3000;
  // After "End", give the hangup message time to leave before the socket is closed.
  const HANGUP_FLUSH_MS = 2000;
  const DETAILS_TIMEOUT_MS = 8000;
  const LEVEL_TICK_MS = 50;
  // RMS thresholds (full scale = 1). The interviewer's decoded voice is clean, so a low
  // threshold is safe; the microphone carries room noise, so it needs a higher one.
  const INTERVIEWER_SPEECH_RMS = 0.006;
  const CANDIDATE_SPEECH_RMS = 0.02;
  // Keep the speaking indicator on through the short gaps between words.
  const SPEAKING_HOLD_MS = 600;

  const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  const VIDEO_CONSTRAINTS = {
    facingMode: 'user',
    width: { ideal: 640 },
    height: { ideal: 480 },
    frameRate: { ideal: 24, max: 30 },
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'),
    screens: {
      loading: $('screen-loading'),
      problem: $('screen-problem'),
      precall: $('screen-precall'),
      call: $('screen-call'),
      ended: $('screen-ended'),
    },
    focusTargets: {
      loading: $('loading-title'),
      problem: $('problem-title'),
      precall: $('role-title'),
      call: $('call-title'),
      ended: $('ended-title'),
    },
    problemTitle: $('problem-title'),
    problemMessage: $('problem-message'),
    problemRetry: $('problem-retry'),
    greeting: $('greeting'),
    roleTitle: $('role-title'),
    company: $('company'),
    duration: $('duration'),
    rejoinNote: $('rejoin-note'),
    notice: $('notice'),
    preview: $('preview'),
    cameraOff: $('camera-off'),
    micLabel: $('mic-label'),
    micMeter: $('mic-meter'),
    audioHint: $('audio-hint'),
    deviceMessage: $('device-message'),
    deviceRetry: $('device-retry'),
    start: $('start'),
    reconnectBanner: $('reconnect-banner'),
    reconnectText: $('reconnect-text'),
    speakingText: $('speaking-text'),
    elapsed: $('elapsed'),
    selfView: $('self-view'),
    selfCameraOff: $('self-camera-off'),
    callMicMeter: $('call-mic-meter'),
    callMessage: $('call-message'),
    end: $('end'),
    playHint: $('play-hint'),
    playAudio: $('play-audio'),
    interviewerAudio: $('interviewer-audio'),
    endedTitle: $('ended-title'),
    endedMessage: $('ended-message'),
  };

  const app = {
    token: '',
    details: null,
    phase: 'loading',
    media: null, // the local MediaStream, reused across reconnects
    audioContext: null,
    micProbe: null,
    remoteProbe: null,
    session: null, // the live signaling + peer connection attempt
    everConnected: false,
    callStartedAt: 0,
    reconnect: null, // { deadline, delay, timer, sawInUse } while retrying
    levelTimer: 0,
    micPeak: 0,
    heardMic: false,
    lastInterviewerSpeechAt: -Infinity,
    lastCandidateSpeechAt: -Infinity,
    retryAction: null,
  };

  // ---------------------------------------------------------------------------------------
  // Page state, screens and announcements

  function setState(state, errorCode) {
    app.phase = state;
    document.body.dataset.state = state;
    if (state === 'error' && errorCode) {
      document.body.dataset.error = errorCode;
    } else {
      delete document.body.dataset.error;
    }
    if (state !== 'in-call') setSpeaking('none');
  }

  function setSpeaking(who) {
    if (document.body.dataset.speaking !== who) document.body.dataset.speaking = who;
    const labels = { interviewer: 'Interviewer speaking', candidate: "You're speaking", none: 'Listening' };
    let text = labels[who];
    if (app.phase === 'connecting') text = 'Connecting…';
    if (app.phase === 'reconnecting') text = 'Reconnecting…';
    if (ui.speakingText.textContent !== text) ui.speakingText.textContent = text;
  }

  function showScreen(name) {
    for (const [key, section] of Object.entries(ui.screens)) section.hidden = key !== name;
    // Move focus to the new screen's heading so keyboard and screen reader users follow along.
    const target = ui.focusTargets[name];
    if (target) target.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  function announce(text) {
    // Clearing first makes screen readers repeat an identical message.
    ui.status.textContent = '';
    window.setTimeout(() => {
      ui.status.textContent = text;
    }, 50);
  }

  function showProblem({ title, message, code, retry }) {
    setState('error', code);
    ui.problemTitle.textContent = title;
    ui.problemMessage.textContent = message;
    app.retryAction = retry || null;
    ui.problemRetry.hidden = !retry;
    showScreen('problem');
    announce(`${title}. ${message}`);
  }

  // ---------------------------------------------------------------------------------------
  // Interview details (the join link check)

  function tokenFromPath() {
    const segments = window.location.pathname.split('/').filter(Boolean);
    return segments.length ? segments[segments.length - 1] : '';
  }

  /** Fetches the interview details; never throws. */
  async function fetchDetails() {
    // A black-holed network can leave a request pending for minutes; reconnection cannot wait.
    const abort = new AbortController();
    const timer = window.setTimeout(() => abort.abort(), DETAILS_TIMEOUT_MS);
    let response;
    try {
      response = await fetch('/join/' + app.token + '/details', {
        cache: 'no-store',
        headers: { Accept: 'application/json' },
        signal: abort.signal,
      });
    } catch (err) {
      return { ok: false, network: true };
    } finally {
      window.clearTimeout(timer);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      // A proxy error page is not JSON; the status code still tells us enough.
    }
    if (response.ok && body) return { ok: true, details: body };
    const error = (body && body.error) || {};
    return { ok: false, status: response.status, code: error.code || '', message: error.message || '' };
  }

  /** Turns a failed details check into what the candidate should read and can do. */
  function describeLinkProblem(result, retry) {
    if (result.network) {
      return {
        title: "We can't reach the interview",
        message: "We couldn't reach the interview server. Check your internet connection and try again.",
        code: 'network',
        retry,
      };
    }
    if (result.status === 410 && result.code === 'interview_ended') {
      return {
        title: 'This interview has ended',
        message: 'This interview has already ended. Thank you for your time. If you think this is a mistake, please contact the recruiter.',
        code: 'interview_ended',
      };
    }
    if (result.status === 410) {
      return {
        title: 'This link has expired',
        message: 'This interview link has expired. Please contact the recruiter for a new one.',
        code: 'link_expired',
      };
    }
    if (result.status === 409) {
      return {
        title: 'Interview already open',
        message: 'This interview is already open in another tab or device. Close it there, or if you just closed it, wait a few seconds and try again.',
        code: 'in_use',
        retry,
      };
    }
    if (result.status === 503 && result.code === 'at_capacity') {
      return {
        title: 'All our interviewers are busy',
        message: 'Every interviewer is in an interview right now, so yours cannot start yet. Please try again in a few minutes.',
        code: 'at_capacity',
        retry,
      };
    }
    if (result.status === 404) {
      return {
        title: 'Interview not found',
        message: "We couldn't find an interview for this link. Check that you opened the complete link from your invitation, or contact the recruiter.",
        code: 'not_found',
      };
    }
    return {
      title: 'Something went wrong',
      message: (result.message || 'The interview server had a problem.') + ' Please try again in a moment.',
      code: result.code || 'server_error',
      retry,
    };
  }

  function renderDetails(details) {
    const title = details.title || 'Interview';
    ui.roleTitle.textContent = title;
    ui.company.textContent = details.company || '—';
    const minutes = Number(details.duration_minutes);
    ui.duration.textContent = minutes > 0 ? `About ${minutes} minute${minutes === 1 ? '' : 's'}` : '—';
    ui.greeting.hidden = !details.candidate_name;
    if (details.candidate_name) ui.greeting.textContent = `Welcome, ${details.candidate_name}`;
    // textContent, never innerHTML: the notice is configured text, not markup.
    ui.notice.textContent = details.notice || '';
    const inProgress = details.status === 'in_progress';
    ui.rejoinNote.hidden = !inProgress;
    ui.start.textContent = inProgress ? 'Rejoin interview' : 'Start interview';
    document.title = details.company ? `${title} interview · ${details.company}` : `${title} interview`;
  }

  async function loadPage() {
    setState('loading');
    showScreen('loading');
    app.token = tokenFromPath();
    const result = app.token ? await fetchDetails() : { ok: false, status: 404 };
    if (!result.ok) {
      showProblem(describeLinkProblem(result, loadPage));
      return;
    }
    app.details = result.details;
    renderDetails(result.details);
    showScreen('precall');
    await checkDevices();
  }

  // ---------------------------------------------------------------------------------------
  // Camera and microphone

  /** Asks for microphone and camera; falls back to the microphone alone. Never throws. */
  async function acquireMedia() {
    const devices = navigator.mediaDevices;
    if (!devices || typeof devices.getUserMedia !== 'function') {
      // Browsers only expose getUserMedia on secure (https or localhost) pages.
      return { micError: { name: 'InsecureContext' } };
    }
    try {
      return { stream: await devices.getUserMedia({ audio: AUDIO_CONSTRAINTS, video: VIDEO_CONSTRAINTS }) };
    } catch (bothError) {
      try {
        const stream = await devices.getUserMedia({ audio: AUDIO_CONSTRAINTS });
        return { stream, cameraError: bothError };
      } catch (micError) {
        return { micError };
      }
    }
  }

  function describeMicError(err) {
    switch (err && err.name) {
      case 'InsecureContext':
        return {
          code: 'insecure_context',
          retry: false,
          message: 'Your browser only allows microphone and camera access on a secure (https) page. Please contact the recruiter.',
        };
      case 'NotAllowedError':
      case 'SecurityError':
        return {
          code: 'mic_denied',
          retry: true,
          message: "Microphone access is blocked. Allow this site to use your microphone and camera (look for the camera icon in the address bar or your browser's site settings), then choose Check again.",
        };
      case 'NotFoundError':
      case 'OverconstrainedError':
        return {
          code: 'mic_not_found',
          retry: true,
          message: 'No microphone was found. Connect a microphone or headset, then choose Check again.',
        };
      case 'NotReadableError':
      case 'AbortError':
        return {
          code: 'mic_in_use',
          retry: true,
          message: "Your microphone can't be started; another application may be using it. Close other apps that use the microphone (such as video-call software), then choose Check again.",
        };
      default:
        return {
          code: 'mic_failed',
          retry: true,
          message: `We couldn't start your microphone (${(err && err.name) || 'unknown error'}). Check your microphone, then choose Check again.`,
        };
    }
  }

  function describeCameraError(err) {
    const reasons = {
      NotAllowedError: 'camera access is blocked',
      SecurityError: 'camera access is blocked',
      NotFoundError: 'no camera was found',
      OverconstrainedError: 'no suitable camera was found',
      NotReadableError: 'your camera is in use by another application',
      AbortError: 'your camera could not be started',
    };
    const reason = reasons[err && err.name] || "your camera couldn't be started";
    return `We can't use your camera (${reason}), so the interview will be audio only. You can still start, or fix the camera and choose Check again.`;
  }

  /** Text over the (black) camera frames; null shows the camera picture itself. */
  function setCameraPlaceholder(text) {
    for (const placeholder of [ui.cameraOff, ui.selfCameraOff]) {
      placeholder.hidden = text === null;
      if (text !== null) placeholder.textContent = text;
    }
  }

  function showDeviceMessage(text, canRetry) {
    ui.deviceMessage.textContent = text;
    ui.deviceMessage.hidden = !text;
    ui.deviceRetry.hidden = !canRetry;
  }

  /** Runs the device check on the pre-call screen; resolves true when the start button is enabled. */
  async function checkDevices() {
    setState('loading');
    ui.start.disabled = true;
    releaseMedia();
    setCameraPlaceholder('Waiting for your camera…');
    showDeviceMessage('Please allow access to your microphone and camera when your browser asks.', false);
    const result = await acquireMedia();
    if (!result.stream) {
      setCameraPlaceholder('No camera or microphone access');
      const problem = describeMicError(result.micError);
      showDeviceMessage(problem.message, problem.retry);
      setState('error', problem.code);
      return false;
    }
    useLocalMedia(result.stream);
    if (result.cameraError) {
      showDeviceMessage(describeCameraError(result.cameraError), true);
    } else {
      showDeviceMessage('', false);
    }
    ui.start.disabled = false;
    setState('ready');
    announce(`Your microphone is ready. You can ${ui.start.textContent.toLowerCase()} when you are ready.`);
    return true;
  }

  function useLocalMedia(stream) {
    app.media = stream;
    const hasCamera = stream.getVideoTracks().length > 0;
    for (const video of [ui.preview, ui.selfView]) {
      video.muted = true; // our own voice must never play back
      video.srcObject = hasCamera ? stream : null;
      if (hasCamera) playQuietly(video);
    }
    setCameraPlaceholder(hasCamera ? null : 'Camera off: audio only');
    for (const track of stream.getTracks()) {
      track.addEventListener('ended', () => onLocalTrackEnded(track));
    }
    ensureAudioContext();
    app.heardMic = false;
    ui.micLabel.textContent = 'Microphone level';
    app.micProbe = createLevelProbe(stream);
    startLevelLoop();
  }

  function releaseMedia() {
    if (app.micProbe) app.micProbe.close();
    app.micProbe = null;
    if (app.media) {
      for (const track of app.media.getTracks()) track.stop();
    }
    app.media = null;
    ui.preview.srcObject = null;
    ui.selfView.srcObject = null;
  }

  function mediaIsLive() {
    return Boolean(app.media) && app.media.getAudioTracks().some((t) => t.readyState === 'live');
  }

  /** A device was unplugged or revoked (or the OS took it away). */
  function onLocalTrackEnded(track) {
    if (!app.media || !app.media.getTracks().includes(track)) return; // we stopped it ourselves
    const inCall = ['connecting', 'in-call', 'reconnecting'].includes(app.phase);
    if (track.kind === 'video') {
      setCameraPlaceholder('Camera off: audio only');
      if (!inCall) showDeviceMessage(describeCameraError({ name: 'AbortError' }), true);
      return;
    }
    if (inCall) {
      ui.callMessage.textContent = "Your microphone stopped working, so the interviewer can't hear you. Check that it is connected, then reload this page to rejoin the interview.";
      ui.callMessage.hidden = false;
      return;
    }
    ui.start.disabled = true;
    showDeviceMessage('Your microphone was disconnected. Reconnect it, then choose Check again.', true);
    setState('error', 'mic_ended');
  }

  function playQuietly(mediaElement) {
    const played = mediaElement.play();
    if (played) played.catch(() => {});
  }

  // ---------------------------------------------------------------------------------------
  // Audio levels (mic meter and who is speaking)

  function ensureAudioContext() {
    if (app.audioContext) return;
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return;
    try {
      app.audioContext = new AudioContextClass();
    } catch (err) {
      console.warn('Web Audio unavailable; level meters disabled', err);
      return;
    }
    // Browsers start an AudioContext suspended until the user interacts with the page
    // (always in Safari); the meter stays still until then, so say so.
    app.audioContext.addEventListener('statechange', updateAudioHint);
    resumeAudio();
    window.setTimeout(updateAudioHint, 500);
  }

  function resumeAudio() {
    const ctx = app.audioContext;
    if (ctx && ctx.state !== 'running') ctx.resume().catch(() => {});
  }

  function updateAudioHint() {
    const ctx = app.audioContext;
    ui.audioHint.hidden = !ctx || ctx.state === 'running';
  }

  /** Measures a stream's loudness. Returns null when Web Audio is unavailable. */
  function createLevelProbe(stream) {
    const ctx = app.audioContext;
    if (!ctx || stream.getAudioTracks().length === 0) return null;
    let source;
    try {
      source = ctx.createMediaStreamSource(stream);
    } catch (err) {
      console.warn('Cannot measure this audio stream; its level stays at zero', err);
      return null;
    }
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    // A silent path to the destination makes every engine keep pulling audio through the
    // analyser; the audible playback is the <audio> element, which gets echo cancellation.
    const sink = ctx.createGain();
    sink.gain.value = 0;
    source.connect(analyser);
    analyser.connect(sink);
    sink.connect(ctx.destination);
    const samples = new Float32Array(analyser.fftSize);
    return {
      rms() {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (let i = 0; i < samples.length; i += 1) sum += samples[i] * samples[i];
        return Math.sqrt(sum / samples.length);
      },
      close() {
        source.disconnect();
        analyser.disconnect();
        sink.disconnect();
      },
    };
  }

  /** Maps RMS to a 0..1 bar length on a -60..0 dBFS scale, which matches how loud things feel. */
  function meterFraction(rms) {
    if (rms <= 0) return 0;
    const db = 20 * Math.log10(rms);
    return Math.min(1, Math.max(0, (db + 60) / 60));
  }

  function startLevelLoop() {
    if (app.levelTimer) return;
    app.levelTimer = window.setInterval(onLevelTick, LEVEL_TICK_MS);
  }

  function stopLevelLoop() {
    window.clearInterval(app.levelTimer);
    app.levelTimer = 0;
  }

  function onLevelTick() {
    const micRms = app.micProbe ? app.micProbe.rms() : 0;
    // Fast attack, slow release, so the bar is readable.
    app.micPeak = Math.max(meterFraction(micRms), app.micPeak * 0.85);
    const scale = `scaleX(${app.micPeak.toFixed(3)})`;
    ui.micMeter.style.transform = scale;
    ui.callMicMeter.style.transform = scale;
    if (!app.heardMic && micRms > CANDIDATE_SPEECH_RMS) {
      app.heardMic = true;
      ui.micLabel.textContent = 'Microphone level: we can hear you';
    }
    if (app.phase === 'in-call') {
      updateSpeaking(micRms, app.remoteProbe ? app.remoteProbe.rms() : 0);
    }
    if (app.callStartedAt) updateElapsed();
  }

  function updateSpeaking(micRms, remoteRms) {
    const now = performance.now();
    if (remoteRms > INTERVIEWER_SPEECH_RMS) app.lastInterviewerSpeechAt = now;
    if (micRms > CANDIDATE_SPEECH_RMS) app.lastCandidateSpeechAt = now;
    // The interviewer wins ties: without headphones the mic also hears the interviewer's voice.
    if (now - app.lastInterviewerSpeechAt < SPEAKING_HOLD_MS) setSpeaking('interviewer');
    else if (now - app.lastCandidateSpeechAt < SPEAKING_HOLD_MS) setSpeaking('candidate');
    else setSpeaking('none');
  }

  function updateElapsed() {
    const seconds = Math.max(0, Math.floor((Date.now() - app.callStartedAt) / 1000));
    const text = `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
    if (ui.elapsed.textContent !== text) ui.elapsed.textContent = text;
  }

  // ---------------------------------------------------------------------------------------
  // Interviewer audio playback

  function attachRemoteAudio(stream) {
    ui.interviewerAudio.srcObject = stream;
    playInterviewer();
    if (app.remoteProbe) app.remoteProbe.close();
    app.remoteProbe = createLevelProbe(stream);
  }

  function playInterviewer() {
    const played = ui.interviewerAudio.play();
    if (!played) return;
    played.then(
      () => {
        ui.playHint.hidden = true;
      },
      (err) => {
        // Autoplay policies can still refuse; a click on the button is a gesture that allows it.
        if (err && err.name === 'NotAllowedError') ui.playHint.hidden = false;
      },
    );
  }

  /** Called inside a click: lets Safari and others play audio later without another gesture. */
  function unlockAudioInGesture() {
    resumeAudio();
    playQuietly(ui.interviewerAudio);
  }

  // ---------------------------------------------------------------------------------------
  // Signaling and the peer connection

  function signalUrl() {
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${window.location.host}/join/${app.token}/signal`;
  }

  function iceServersFromDetails() {
    const servers = (app.details && app.details.ice_servers) || [];
    return servers
      .filter((s) => s && s.urls && (Array.isArray(s.urls) ? s.urls.length : true))
      .map((s) => {
        const server = { urls: s.urls };
        if (s.username) server.username = s.username;
        if (s.credential) server.credential = s.credential;
        return server;
      });
  }

  function createPeerConnection() {
    try {
      return new RTCPeerConnection({ iceServers: iceServersFromDetails() });
    } catch (err) {
      // A malformed STUN/TURN entry must not stop the call: host candidates may be enough.
      console.warn('ICE server configuration rejected; continuing without it', err);
      return new RTCPeerConnection();
    }
  }

  /** Orders VP8 first and H.264 second (what the server records); others stay as a fallback. */
  function preferVp8(transceiver) {
    if (!transceiver || typeof transceiver.setCodecPreferences !== 'function') return;
    const capabilities = window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities
      ? RTCRtpReceiver.getCapabilities('video')
      : null;
    if (!capabilities || !capabilities.codecs) return;
    const rank = (codec) => {
      const mime = codec.mimeType.toLowerCase();
      if (mime === 'video/vp8') return 0;
      if (mime === 'video/h264') return 1;
      return 2;
    };
    const ordered = capabilities.codecs.slice().sort((a, b) => rank(a) - rank(b)); // stable sort
    try {
      transceiver.setCodecPreferences(ordered);
    } catch (err) {
      console.warn('Could not set codec preferences; using browser defaults', err);
    }
  }

  function addLocalTracks(pc) {
    const stream = app.media;
    // The microphone's transceiver is sendrecv, so it also carries the interviewer's voice:
    // no separate receive-only audio transceiver is needed.
    for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
    for (const track of stream.getVideoTracks()) {
      const sender = pc.addTrack(track, stream);
      preferVp8(pc.getTransceivers().find((t) => t.sender === sender));
    }
  }

  function linkState(pc) {
    // Older Firefox has no connectionState; ICE state is a close enough stand-in.
    if (pc.connectionState) return pc.connectionState;
    const ice = pc.iceConnectionState;
    return ice === 'completed' ? 'connected' : ice;
  }

  function sendSignal(session, message) {
    if (session.ws.readyState === WebSocket.OPEN) session.ws.send(JSON.stringify(message));
  }

  function onLocalCandidate(session, candidate) {
    let message;
    if (candidate) {
      message = {
        type: 'candidate',
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex,
      };
    } else {
      // End of candidates. The first m-line identifies the bundled transport.
      const first = session.pc.getTransceivers()[0];
      message = { type: 'candidate', candidate: '', sdpMid: (first && first.mid) || '0', sdpMLineIndex: 0 };
    }
    // The offer must be the first message, so hold candidates until it has gone.
    if (session.offerSent) sendSignal(session, message);
    else session.pendingCandidates.push(message);
  }

  /** Starts one connection attempt: a new socket, a new peer connection and a new offer. */
  function openSession() {
    const session = {
      ws: null,
      pc: createPeerConnection(),
      offer: null,
      offerSent: false,
      pendingCandidates: [],
      connected: false,
      closed: false,
      disconnectTimer: 0,
      attemptTimer: 0,
    };
    app.session = session;
    const { pc } = session;
    addLocalTracks(pc);
    pc.addEventListener('icecandidate', (ev) => onLocalCandidate(session, ev.candidate));
    pc.addEventListener('track', (ev) => {
      if (session !== app.session || ev.track.kind !== 'audio') return;
      attachRemoteAudio(ev.streams[0] || new MediaStream([ev.track]));
    });
    const onLinkChange = () => onLinkStateChange(session);
    pc.addEventListener('connectionstatechange', onLinkChange);
    if (!('connectionState' in pc)) pc.addEventListener('iceconnectionstatechange', onLinkChange);

    // Gathering starts as soon as the local description is set, while the socket still opens.
    // The SDP sent is the bare offer: every candidate then arrives exactly once, trickled.
    session.offer = pc.createOffer().then(async (offer) => {
      await pc.setLocalDescription(offer);
      return offer.sdp;
    });
    session.offer.catch((err) => loseSession(session, `offer failed: ${err}`));

    try {
      session.ws = new WebSocket(signalUrl());
    } catch (err) {
      session.ws = { readyState: WebSocket.CLOSED, close() {} };
      window.setTimeout(() => loseSession(session, `socket failed: ${err}`), 0);
      return;
    }
    session.ws.addEventListener('open', () => sendOffer(session));
    session.ws.addEventListener('message', (ev) => onSignalMessage(session, ev.data));
    session.ws.addEventListener('close', (ev) => loseSession(session, `signaling closed (${ev.code})`));
    session.attemptTimer = window.setTimeout(() => {
      if (!session.connected) loseSession(session, 'connection attempt timed out');
    }, ATTEMPT_TIMEOUT_MS);
  }

  async function sendOffer(session) {
    let sdp;
    try {
      sdp = await session.offer;
    } catch (err) {
      return; // already handled by the offer's own catch
    }
    if (session.closed) return;
    sendSignal(session, { type: 'offer', sdp });
    session.offerSent = true;
    for (const message of session.pendingCandidates) sendSignal(session, message);
    session.pendingCandidates = [];
  }

  function onSignalMessage(session, data) {
    if (session !== app.session) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch (err) {
      console.warn('Ignoring a signaling message that is not JSON', data);
      return;
    }
    switch (message.type) {
      case 'answer':
        session.pc
          .setRemoteDescription({ type: 'answer', sdp: message.sdp })
          .catch((err) => loseSession(session, `answer rejected: ${err}`));
        break;
      case 'ended':
        finishInterview(message.reason);
        break;
      case 'error':
        onServerError(message);
        break;
      default:
        console.warn('Ignoring an unknown signaling message', message);
    }
  }

  function onServerError(message) {
    if (message.code === 'bad_message') {
      // The server ignored one of our messages and carries on; nothing for the candidate to do.
      console.warn('Server ignored a signaling message:', message.message);
      return;
    }
    const friendly = {
      in_use: describeLinkProblem({ status: 409 }, tryAgain),
      link_expired: describeLinkProblem({ status: 410, code: 'link_expired' }),
      interview_ended: describeLinkProblem({ status: 410, code: 'interview_ended' }),
      at_capacity: describeLinkProblem({ status: 503, code: 'at_capacity' }, tryAgain),
      media_failed: {
        title: "We couldn't set up the call",
        message: "Something went wrong setting up audio and video for your interview. Please try again; if it keeps happening, contact the recruiter.",
        code: 'media_failed',
        retry: tryAgain,
      },
    }[message.code] || {
      title: 'Something went wrong',
      message: message.message || 'The interview server reported a problem.',
      code: message.code || 'server_error',
      retry: tryAgain,
    };
    stopCall();
    showProblem(friendly);
  }

  function onLinkStateChange(session) {
    if (session !== app.session) return;
    const state = linkState(session.pc);
    if (state === 'connected') {
      window.clearTimeout(session.disconnectTimer);
      session.disconnectTimer = 0;
      if (!session.connected) onSessionConnected(session);
    } else if (state === 'failed' || state === 'disconnected') {
      if (!session.disconnectTimer) {
        session.disconnectTimer = window.setTimeout(
          () => loseSession(session, `media connection ${linkState(session.pc)}`),
          DISCONNECT_GRACE_MS,
        );
      }
    }
  }

  function onSessionConnected(session) {
    session.connected = true;
    window.clearTimeout(session.attemptTimer);
    cancelReconnect();
    const rejoined = app.everConnected;
    app.everConnected = true;
    if (!app.callStartedAt) app.callStartedAt = Date.now();
    ui.reconnectBanner.hidden = true;
    setState('in-call');
    announce(rejoined ? 'Reconnected. The interview continues.' : 'Connected. The interview has started.');
  }

  function closeSession(session) {
    if (!session || session.closed) return;
    session.closed = true;
    window.clearTimeout(session.attemptTimer);
    window.clearTimeout(session.disconnectTimer);
    try {
      session.ws.close();
    } catch (err) {
      // Closing a socket that never opened can throw in old engines; it is gone either way.
    }
    session.pc.close();
  }

  // ---------------------------------------------------------------------------------------
  // Call lifecycle: start, drop and reconnect, end

  function joinCall() {
    app.reconnect = null;
    ui.callMessage.hidden = true;
    ui.reconnectBanner.hidden = true;
    setState('connecting');
    setSpeaking('none');
    showScreen('call');
    announce('Connecting to the interview…');
    startLevelLoop();
    openSession();
  }

  function onStartClick() {
    if (!mediaIsLive()) return;
    unlockAudioInGesture();
    joinCall();
  }

  /** "Try again" after the call could not be (re)established. */
  async function tryAgain() {
    unlockAudioInGesture();
    setState('loading');
    showScreen('loading');
    const result = await fetchDetails();
    if (!result.ok) {
      showProblem(describeLinkProblem(result, tryAgain));
      return;
    }
    app.details = result.details;
    renderDetails(result.details);
    if (!mediaIsLive()) {
      showScreen('precall');
      if (!(await checkDevices())) return;
    }
    joinCall();
  }

  /** The socket or the media path went away without the interview ending. */
  function loseSession(session, why) {
    if (session !== app.session || session.closed) return;
    console.warn('Interview connection lost:', why);
    closeSession(session);
    app.session = null;
    if (['ended', 'error'].includes(app.phase)) return;
    scheduleReconnect();
  }

  function scheduleReconnect() {
    const now = Date.now();
    if (!app.reconnect) {
      app.reconnect = { deadline: now + RECONNECT_BUDGET_MS, delay: FIRST_RETRY_DELAY_MS, timer: 0, sawInUse: false };
      ui.reconnectText.textContent = app.everConnected
        ? 'Connection lost, reconnecting…'
        : 'Having trouble connecting, retrying…';
      announce(ui.reconnectText.textContent);
    }
    ui.reconnectBanner.hidden = false;
    setState('reconnecting');
    const retry = app.reconnect;
    if (now >= retry.deadline) {
      giveUp();
      return;
    }
    const wait = Math.min(retry.delay, retry.deadline - now);
    retry.delay *= 2;
    retry.timer = window.setTimeout(attemptReconnect, wait);
  }

  function cancelReconnect() {
    if (app.reconnect) window.clearTimeout(app.reconnect.timer);
    app.reconnect = null;
  }

  async function attemptReconnect() {
    if (!app.reconnect) return;
    app.reconnect.timer = 0;
    // Ask first why the socket may have gone: the interview may have ended or the link expired.
    const result = await fetchDetails();
    if (app.phase !== 'reconnecting' || !app.reconnect) return; // ended or hung up meanwhile
    if (!result.ok && (result.status === 404 || result.status === 410)) {
      stopCall();
      showProblem(describeLinkProblem(result));
      return;
    }
    if (!result.ok && result.code === 'at_capacity') {
      // The interview never started (a running one keeps its place): retrying now is futile.
      stopCall();
      showProblem(describeLinkProblem(result, tryAgain));
      return;
    }
    if (!result.ok) {
      // 409 right after a drop is usually our own old connection the server has not noticed
      // yet, so keep trying; a network error means we are still offline.
      if (result.status === 409) app.reconnect.sawInUse = true;
      scheduleReconnect();
      return;
    }
    openSession();
  }

  function giveUp() {
    const sawInUse = app.reconnect && app.reconnect.sawInUse;
    stopCall();
    if (sawInUse) {
      showProblem(describeLinkProblem({ status: 409 }, tryAgain));
      return;
    }
    showProblem({
      title: app.everConnected ? 'Connection lost' : "We couldn't connect",
      message: app.everConnected
        ? "The connection to the interview was lost and we couldn't reconnect. Check your internet connection, then choose Try again."
        : "We couldn't connect you to the interview. Check your internet connection (a VPN or company firewall can also block calls), then choose Try again.",
      code: 'connection_failed',
      retry: tryAgain,
    });
  }

  /** Tears the call down and releases camera and microphone (their indicator lights go off). */
  function stopCall() {
    cancelReconnect();
    closeSession(app.session);
    app.session = null;
    if (app.remoteProbe) app.remoteProbe.close();
    app.remoteProbe = null;
    ui.interviewerAudio.srcObject = null;
    ui.reconnectBanner.hidden = true;
    releaseMedia();
  }

  function onEndClick() {
    const session = app.session;
    app.session = null; // from here on nothing from this session can reconnect or change screens
    if (session && session.offerSent) {
      sendSignal(session, { type: 'hangup' });
      // Let the hangup reach the server before the socket and the media path close.
      session.ws.addEventListener('close', () => closeSession(session));
      window.setTimeout(() => closeSession(session), HANGUP_FLUSH_MS);
    } else {
      // Not connected right now: nothing to tell. The server ends the call after its grace period.
      closeSession(session);
    }
    finishInterview('hung_up');
  }

  const ENDED_TEXT = {
    completed: ['Thank you!', 'The interview is complete. Thank you for your time; the recruiter will be in touch about the next steps.'],
    hung_up: ['Thank you', 'You ended the interview. Thank you for your time; the recruiter will be in touch.'],
    abandoned: ['The interview has ended', 'The interview ended because the connection was lost for too long. What you said up to that point has been saved. Please contact the recruiter if you would like to continue.'],
    failed: ['The interview has ended', "The interview ended because of a technical problem on our side. We're sorry. Please contact the recruiter to arrange the next steps."],
  };

  function finishInterview(reason) {
    stopCall();
    stopLevelLoop();
    const [title, message] = ENDED_TEXT[reason] || ['The interview has ended', 'Thank you for your time.'];
    ui.endedTitle.textContent = title;
    ui.endedMessage.textContent = message;
    document.body.dataset.endedReason = reason || 'unknown';
    setState('ended');
    showScreen('ended');
    announce(title);
  }

  // ---------------------------------------------------------------------------------------
  // Wiring

  function onAnyGesture() {
    resumeAudio();
  }

  function onBackOnline() {
    // Do not wait out the backoff when the browser knows the network is back.
    if (app.reconnect && app.reconnect.timer) {
      window.clearTimeout(app.reconnect.timer);
      attemptReconnect();
    }
  }

  function init() {
    ui.start.addEventListener('click', onStartClick);
    ui.end.addEventListener('click', onEndClick);
    ui.deviceRetry.addEventListener('click', () => {
      resumeAudio();
      checkDevices();
    });
    ui.problemRetry.addEventListener('click', () => {
      if (app.retryAction) app.retryAction();
    });
    ui.playAudio.addEventListener('click', playInterviewer);
    for (const type of ['pointerdown', 'keydown', 'touchend']) {
      document.addEventListener(type, onAnyGesture, { passive: true });
    }
    window.addEventListener('online', onBackOnline);
    loadPage();
  }

  init();
})();
