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
  askBox.configure(state, () => chosen);
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
  askBox.stop();
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
  const failed = $("model-failed");
  failed.hidden = stream.model_failures.length === 0;
  failed.textContent = stream.model_failures.length ? `AI FAILED: ${stream.model_failures.join("; ")}` : "";
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

// The viewer id /api/offer answered: given back when the page closes or switches streams, so
// the edge frees the video's place at once instead of when ICE gives up on the browser.
let viewer = null;

function bye(id) {
  const body = JSON.stringify({ viewer: id });
  if (!navigator.sendBeacon("/api/bye", new Blob([body], { type: "application/json" }))) {
    fetch("/api/bye", { method: "POST", body, keepalive: true, credentials: "same-origin" });
  }
}

function leave() {
  if (viewer) bye(viewer);
  viewer = null;
}
window.addEventListener("pagehide", leave);

async function watch(id) {
  if (peer) peer.close();
  leave();
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
  if (peer !== connection) {
    // Another stream was chosen meanwhile: this answer's video is not wanted.
    if (response.ok) bye((await response.json()).viewer);
    return;
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $("video-state").textContent = `video refused: ${body.error || response.status}`;
    if (response.status === 401) showLogin("Log in again");
    return;
  }
  const answer = await response.json();
  viewer = answer.viewer;
  await connection.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
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

// Segmenting (an operator's token): a click on the picture is a click prompt, a drag a box
// prompt; from the keyboard, the arrow keys move a crosshair over the focused picture (Shift:
// bigger steps) and Enter prompts there. The mask stays over the video until Escape or the next.
const DRAG_PX = 6; // a press that moves less than this is a click
let drag = null;
let crosshair = null; // {x, y} in frame pixels while the picture has the keyboard's focus

$("video").addEventListener("pointerdown", (event) => {
  const start = event.button === 0 ? framePoint(event, false) : null;
  if (!start) return;
  drag = { start, end: start, clientX: event.clientX, clientY: event.clientY, moved: false };
  $("video").setPointerCapture(event.pointerId);
});

$("video").addEventListener("pointermove", (event) => {
  if (!drag) return;
  drag.end = framePoint(event, true);
  drag.moved ||= Math.hypot(event.clientX - drag.clientX, event.clientY - drag.clientY) >= DRAG_PX;
  if (drag.moved) place($("drag-box"), drag.start, drag.end);
});

$("video").addEventListener("pointerup", () => {
  if (!drag) return;
  const { start, end, moved } = drag;
  endDrag();
  if (!moved) {
    segment({ x: start.x, y: start.y });
  } else if (Math.min(Math.abs(end.x - start.x), Math.abs(end.y - start.y)) >= 1) {
    const x = [start.x, end.x].sort((a, b) => a - b);
    const y = [start.y, end.y].sort((a, b) => a - b);
    segment({ box: [x[0], y[0], x[1], y[1]] });
  }
});

$("video").addEventListener("pointercancel", endDrag);

function endDrag() {
  drag = null;
  $("drag-box").hidden = true;
}

$("video").addEventListener("focus", () => {
  const video = $("video");
  if (!video.videoWidth) return;
  crosshair = crosshair || { x: Math.floor(video.videoWidth / 2), y: Math.floor(video.videoHeight / 2) };
  pin($("crosshair"), crosshair);
});

$("video").addEventListener("blur", () => {
  $("crosshair").hidden = true;
});

const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

$("video").addEventListener("keydown", (event) => {
  const video = $("video");
  if (!crosshair || !video.videoWidth) return;
  if (event.key in ARROWS) {
    event.preventDefault();
    const step = Math.max(1, Math.round(video.videoWidth / (event.shiftKey ? 8 : 40)));
    const [dx, dy] = ARROWS[event.key];
    crosshair = {
      x: Math.min(Math.max(crosshair.x + dx * step, 0), video.videoWidth - 1),
      y: Math.min(Math.max(crosshair.y + dy * step, 0), video.videoHeight - 1),
    };
    pin($("crosshair"), crosshair);
  } else if (event.key === "Enter") {
    event.preventDefault();
    segment({ x: crosshair.x, y: crosshair.y });
  }
});

window.addEventListener("resize", () => {
  if (crosshair && !$("crosshair").hidden) pin($("crosshair"), crosshair);
});

async function segment(region) {
  $("prompt-state").textContent = "segmenting…";
  const response = await fetch("/api/prompt", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ stream: chosen, ...region }),
    credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("prompt-state").textContent = body.error || `segmenting refused (${response.status})`;
    return;
  }
  $("mask").src = body.png;
  $("mask").hidden = false;
  const what = region.box ? "box" : "click";
  $("prompt-state").textContent = `${what} mask on frame ${body.index}, score ${Math.round(body.score * 100)}%`;
}

// Where the frame's pixels are drawn in #picture: the picture is letterboxed in the element
// (object-fit: contain).
function letterbox() {
  const video = $("video");
  const box = video.getBoundingClientRect();
  const picture = $("picture").getBoundingClientRect();
  const scale = Math.min(box.width / video.videoWidth, box.height / video.videoHeight);
  return {
    scale,
    left: box.left - picture.left + (box.width - video.videoWidth * scale) / 2,
    top: box.top - picture.top + (box.height - video.videoHeight * scale) / 2,
    picture,
  };
}

// The frame pixel under a pointer event: null outside the frame, or clamped into it.
function framePoint(event, clamp) {
  const video = $("video");
  if (!video.videoWidth) return null;
  const { scale, left, top, picture } = letterbox();
  let x = (event.clientX - picture.left - left) / scale;
  let y = (event.clientY - picture.top - top) / scale;
  const inside = x >= 0 && y >= 0 && x < video.videoWidth && y < video.videoHeight;
  if (!inside && !clamp) return null;
  x = Math.min(Math.max(x, 0), video.videoWidth - 1);
  y = Math.min(Math.max(y, 0), video.videoHeight - 1);
  return { x, y };
}

// Show the drag box over the frame, spanning two frame points.
function place(element, from, to) {
  const { scale, left, top } = letterbox();
  element.style.left = `${left + Math.min(from.x, to.x) * scale}px`;
  element.style.top = `${top + Math.min(from.y, to.y) * scale}px`;
  element.style.width = `${Math.abs(to.x - from.x) * scale}px`;
  element.style.height = `${Math.abs(to.y - from.y) * scale}px`;
  element.hidden = false;
}

// Show the crosshair (centred on its position by its style) over a frame point.
function pin(element, point) {
  const { scale, left, top } = letterbox();
  element.style.left = `${left + point.x * scale}px`;
  element.style.top = `${top + point.y * scale}px`;
  element.hidden = false;
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
