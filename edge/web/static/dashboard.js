// The OR dashboard: log in, follow the edge's state (server-sent events), watch the chosen
// stream's overlay video over WebRTC. Everything the page shows comes from /api/events.
"use strict";

const $ = (id) => document.getElementById(id);
let chosen = decodeURIComponent(location.hash.slice(1));
let iceServers = [];
let peer = null;
let events = null;
let lastState = null;

async function begin() {
  const response = await fetch("/api/state", { credentials: "same-origin" });
  if (response.status === 401) {
    showLogin("");
    return;
  }
  const state = await response.json();
  iceServers = state.ice_servers || [];
  $("logout").hidden = !state.login;
  $("login").hidden = true;
  $("dashboard").hidden = false;
  render(state);
  follow();
}

function showLogin(message) {
  $("dashboard").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").focus();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("token").value }),
    credentials: "same-origin",
  });
  $("token").value = "";
  if (response.ok) {
    begin();
  } else {
    showLogin(response.status === 401 ? "Wrong token" : "Login failed");
  }
});

$("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  stopAll();
  showLogin("");
});

function follow() {
  events = new EventSource("/api/events");
  events.onmessage = (message) => render(JSON.parse(message.data));
  events.onerror = () => {
    $("video-state").textContent = "connection to the edge lost; retrying";
  };
}

function stopAll() {
  if (events) events.close();
  events = null;
  if (peer) peer.close();
  peer = null;
}

function render(state) {
  lastState = state;
  const streams = state.streams;
  if (!streams.length) return;
  if (!streams.some((s) => s.id === chosen)) chosen = streams[0].id;
  if (!peer) watch(chosen);
  renderPicker(streams);
  const stream = streams.find((s) => s.id === chosen);
  renderStream(stream);
  const latency = [];
  if (stream.result_latency_ms !== null) latency.push(`AI ${Math.round(stream.result_latency_ms)} ms`);
  latency.push(`${stream.fps.toFixed(0)} fps`);
  $("latency").textContent = latency.join(" · ");
}

function renderPicker(streams) {
  const nav = $("streams");
  nav.hidden = streams.length < 2;
  const ids = streams.map((s) => s.id).join("\n");
  if (nav.dataset.ids !== ids) {
    nav.dataset.ids = ids;
    nav.replaceChildren(...streams.map((s) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = s.id;
      button.dataset.stream = s.id;
      button.addEventListener("click", () => choose(s.id));
      return button;
    }));
  }
  for (const button of nav.children) {
    button.setAttribute("aria-pressed", String(button.dataset.stream === chosen));
  }
}

function renderStream(stream) {
  const root = document.body;
  root.dataset.stream = stream.id;
  root.dataset.state = stream.state;
  $("no-signal").hidden = stream.signal;
  $("video-state").textContent = stream.signal ? "" : `${stream.state}${stream.error ? ": " + stream.error : ""}`;
  $("out-of-patient").hidden = !stream.out_of_patient || !stream.signal;
  $("stage").classList.toggle("is-stale", stream.stale);
  $("stale").hidden = !stream.stale;
  const step = stream.step;
  const name = $("step-name");
  name.textContent = step ? step.name : "—";
  name.dataset.code = step ? String(step.code) : "";
  name.style.borderLeftColor = step ? step.colour : "";
  $("step-confidence").textContent = step ? `${Math.round(step.confidence * 100)}%` : "";
  $("instruments").replaceChildren(...stream.instruments.map((i) => {
    const chip = document.createElement("li");
    chip.textContent = `${i.name} ${Math.round(i.probability * 100)}%`;
    chip.dataset.code = String(i.code);
    chip.style.borderColor = i.colour;
    return chip;
  }));
  renderTimeline(stream.timeline);
}

function renderTimeline(segments) {
  const list = $("timeline");
  if (!segments.length) {
    list.replaceChildren();
    return;
  }
  const start = segments[0].start_s;
  const total = Math.max(segments[segments.length - 1].end_s - start, 1e-3);
  list.replaceChildren(...segments.map((s, index) => {
    const item = document.createElement("li");
    const next = segments[index + 1];
    const end = next ? next.start_s : s.end_s;
    item.style.flexGrow = String(Math.max(end - s.start_s, 0) / total || 0.001);
    item.style.background = s.colour;
    item.title = `${s.name}: ${s.start_s.toFixed(0)}–${end.toFixed(0)} s`;
    item.setAttribute("aria-label", item.title);
    item.dataset.code = String(s.code);
    return item;
  }));
}

function choose(id) {
  if (id === chosen) return;
  chosen = id;
  clearMask();
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  watch(id);
  if (lastState) render(lastState);
}

async function watch(id) {
  if (peer) peer.close();
  const connection = new RTCPeerConnection({ iceServers });
  peer = connection;
  connection.addTransceiver("video", { direction: "recvonly" });
  connection.ontrack = (event) => {
    $("video").srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  await connection.setLocalDescription(await connection.createOffer());
  await gathered(connection);
  const response = await fetch("/api/offer", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ stream: id, sdp: connection.localDescription.sdp, type: "offer" }),
    credentials: "same-origin",
  });
  if (peer !== connection) return;
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $("video-state").textContent = `video refused: ${body.error || response.status}`;
    if (response.status === 401) showLogin("Log in again");
    return;
  }
  await connection.setRemoteDescription(await response.json());
}

function gathered(connection) {
  // The whole offer at once (no trickle ICE): on a LAN gathering takes milliseconds.
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (connection.iceGatheringState === "complete") resolve();
    };
    connection.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 2000);
  });
}

// Click-to-segment: a click on the picture asks for the mask of what it points at (an
// operator's token); the mask is laid over the video until Escape or the next click.
$("video").addEventListener("click", async (event) => {
  const point = framePoint(event);
  if (!point) return;
  $("prompt-state").textContent = "segmenting…";
  const response = await fetch("/api/prompt", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ stream: chosen, x: point.x, y: point.y }),
    credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("prompt-state").textContent = body.error || `segmenting refused (${response.status})`;
    return;
  }
  $("mask").src = body.png;
  $("mask").hidden = false;
  $("prompt-state").textContent = `mask on frame ${body.index}, score ${Math.round(body.score * 100)}%`;
});

function framePoint(event) {
  // The picture is letterboxed in the element (object-fit: contain): undo that.
  const video = $("video");
  if (!video.videoWidth) return null;
  const box = video.getBoundingClientRect();
  const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
  const left = box.left + (box.width - video.videoWidth * scale) / 2;
  const top = box.top + (box.height - video.videoHeight * scale) / 2;
  const x = (event.clientX - left) / scale;
  const y = (event.clientY - top) / scale;
  if (x < 0 || y < 0 || x >= video.videoWidth || y >= video.videoHeight) return null;
  return { x, y };
}

function clearMask() {
  $("mask").hidden = true;
  $("mask").removeAttribute("src");
  $("prompt-state").textContent = "";
}

function toggleFullscreen() {
  if (document.fullscreenElement) document.exitFullscreen();
  else $("dashboard").requestFullscreen();
}

$("fullscreen").addEventListener("click", toggleFullscreen);
document.addEventListener("fullscreenchange", () => {
  $("fullscreen").setAttribute("aria-pressed", String(Boolean(document.fullscreenElement)));
});
document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement) return;
  if (event.key === "f" || event.key === "F") toggleFullscreen();
  if (event.key === "Escape") clearMask();
});

begin();
