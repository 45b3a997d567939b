// ibfp correct: the page. Plain JavaScript, no build step, no library.
// Coordinates on the overlay are video pixels (the SVG's viewBox is the frame), so a box
// drawn here is sent exactly as the frame's pixel grid gives it: whole pixels, inside the frame.
"use strict";

const MIN_BOX = 2; // px, the smallest box ibfp accepts (boxes.MIN_BOX_SIZE)
const STEP_BIG = 10; // frames Shift+arrow moves
const JOB_POLL_MS = 250; // how often a running track or retrack is asked how far it got
const CAPTION_PX = 12; // caption font size on screen, whatever the frame's scale
const HANDLE_PX = 9; // resize handle size on screen
const STAGE_MARGIN_PX = 12; // space around the frame in its pane
const PIXELATED_ABOVE = 2; // frames shown larger than this are drawn with square pixels
const CLICK_PX = 3; // a drag shorter than this on screen is a click
const LOST_COLOUR = "#6b6f76";
const NO_BOX_COLOUR = "#24272c";
const DOUBTFUL_COLOUR = "#ff5c5c";
const DOUBTFUL_LANE_PX = 4; // height of the doubtful runs' lane under each timeline
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
const SVG_NS = "http://www.w3.org/2000/svg";

const $ = (selector) => document.querySelector(selector);
const token = (() => {
  const given = new URLSearchParams(location.search).get("token");
  if (given) {
    sessionStorage.setItem("ibfp-token", given);
    history.replaceState(null, "", location.pathname); // the server set its cookie; keep the token off screen
  }
  return given || sessionStorage.getItem("ibfp-token") || "";
})();

const S = {
  state: null, // the server's view of the session
  objects: new Map(), // id -> object view, with keyframes as a Set
  frame: 0, // the frame asked for
  shown: -1, // the frame whose image is on screen
  selected: null, // selected object id
  newObject: false, // the next box drawn is a new object
  drag: null, // the box being drawn, moved or resized
  scale: 1, // screen px per video px
};

// --- talking to the server -------------------------------------------------------------------

async function api(method, path, body) {
  const options = { method, headers: { "X-IBFP-Token": token } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

async function act(method, path, body, done) {
  try {
    const data = await api(method, path, body);
    setState(data.state || data);
    if (done) done(data);
    return data;
  } catch (error) {
    say(error.message, "error");
    return null;
  }
}

function say(text, kind = "") {
  const status = $("#status");
  status.textContent = text;
  status.className = kind;
  status.title = text;
}

// --- state -------------------------------------------------------------------------------------

function setState(state) {
  S.state = state;
  S.objects = new Map(state.objects.map((o) => [o.id, { ...o, keyframes: new Set(o.keyframes) }]));
  if (S.selected !== null && !S.objects.has(S.selected)) S.selected = null;
  const last = state.video.frame_count - 1;
  $("#frame-last").textContent = `/ ${last}`;
  $("#frame-input").max = last;
  $("#scrub").max = last;
  $("#video-name").textContent = `${state.video.name} · ${state.video.width}×${state.video.height}`;
  $("#overlay").setAttribute("viewBox", `0 0 ${state.video.width} ${state.video.height}`);
  renderButtons();
  renderFiles();
  renderObjects();
  renderTracks();
  renderOverlay();
  renderJob(state.job);
}

function renderButtons() {
  const st = S.state;
  const running = jobRunning();
  const keyframes = [...S.objects.values()].some((o) => o.keyframes.size > 0);
  $("#undo").disabled = running || st.undo === 0;
  $("#track").hidden = !st.can_track;
  $("#track").disabled = running || S.objects.size === 0;
  $("#retrack").disabled = running || !keyframes;
  $("#retrack").classList.toggle("primary", st.stale && keyframes);
  $("#save").disabled = running;
  $("#save").classList.toggle("primary", st.unsaved && !st.stale);
  $("#new").classList.toggle("active", S.newObject);
  if (!running && !$("#status").textContent) hint();
}

function hint() {
  const st = S.state;
  if (st === null) return;
  if (S.objects.size === 0) say("Drag a box around each object on the frame, then Track.");
  else if (st.stale) say("Keyframes changed: Retrack to track between them.");
  else if (st.unsaved) say("Unsaved changes.");
  else say("All saved.");
}

function renderFiles() {
  const files = S.state.files;
  const parts = [`Save writes ${files.boxes} (${files.format})`];
  if (files.keyframes) parts.push(`and the keyframes to ${files.keyframes}`);
  const box = $("#files");
  box.textContent = parts.join(" ") + ".";
  if (!files.keeps_keyframes) {
    const warning = document.createElement("div");
    warning.className = "warning";
    warning.textContent = `${files.format} files do not mark keyframes: give --keyframes to keep them.`;
    box.append(warning);
  }
}

function renderObjects() {
  const list = $("#objects");
  list.replaceChildren();
  if (S.objects.size === 0) {
    const none = document.createElement("li");
    none.className = "none";
    none.textContent = "none yet: drag a box on the frame";
    list.append(none);
  }
  for (const o of S.objects.values()) {
    const item = document.createElement("li");
    item.dataset.id = o.id;
    item.classList.toggle("selected", o.id === S.selected);
    const swatch = document.createElement("i");
    swatch.className = "swatch";
    swatch.style.background = o.colour;
    const name = document.createElement("span");
    name.textContent = `${o.id} ${o.label}`;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = objectMeta(o);
    item.append(swatch, name, meta);
    item.addEventListener("click", () => select(o.id));
    list.append(item);
  }
}

function objectMeta(o) {
  const f = S.frame;
  if (isAbsent(o, f)) return "absent";
  if (o.keyframes.has(f)) return "keyframe";
  if (o.boxes[f] === null) return "no box";
  if (o.lost[f]) return "lost";
  return o.scores[f].toFixed(2);
}

function isAbsent(o, frame) {
  return o.absent.some(([first, last]) => first <= frame && frame <= last);
}

function jobRunning() {
  return S.state !== null && S.state.job !== null && S.state.job.state === "running";
}

// --- the frame ---------------------------------------------------------------------------------

const loader = { busy: false, want: null };

function go(frame) {
  if (S.state === null) return;
  const last = S.state.video.frame_count - 1;
  frame = Math.max(0, Math.min(last, Math.round(frame)));
  if (Number.isNaN(frame)) return;
  S.frame = frame;
  S.drag = null;
  $("#frame-input").value = frame;
  $("#scrub").value = frame;
  loader.want = frame;
  if (!loader.busy) loadImage();
  hint(); // a message about another frame no longer applies
  renderOverlay();
  renderObjects();
  placeCursor();
}

function loadImage() {
  const frame = loader.want;
  loader.want = null;
  loader.busy = true;
  const image = new Image();
  image.onload = () => {
    $("#frame").src = image.src;
    S.shown = frame;
    $("#stage").dataset.shownFrame = frame;
    finishLoad();
  };
  image.onerror = () => {
    say(`frame ${frame} could not be loaded`, "error");
    finishLoad();
  };
  image.src = `frames/${frame}.jpg`;
}

function finishLoad() {
  loader.busy = false;
  if (loader.want !== null) loadImage();
}

function layout() {
  if (S.state === null) return;
  const { width, height } = S.state.video;
  const pane = $("#view").getBoundingClientRect();
  const scale = Math.min((pane.width - 2 * STAGE_MARGIN_PX) / width, (pane.height - 2 * STAGE_MARGIN_PX) / height);
  S.scale = Math.max(scale, Number.EPSILON);
  const stage = $("#stage");
  stage.style.width = `${width * S.scale}px`;
  stage.style.height = `${height * S.scale}px`;
  stage.classList.toggle("pixelated", S.scale > PIXELATED_ABOVE);
  renderOverlay();
  renderTracks();
}

// --- boxes on the frame ------------------------------------------------------------------------

function shownBox(o) {
  if (S.drag !== null && S.drag.id === o.id) return S.drag.box;
  return o.boxes[S.frame];
}

function svg(name, attributes = {}, parent = null) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.append(element);
  return element;
}

function renderOverlay() {
  const overlay = $("#overlay");
  overlay.replaceChildren();
  if (S.state === null) return;
  const px = 1 / S.scale; // one screen pixel in video pixels
  const ordered = [...S.objects.values()].sort((a, b) => (a.id === S.selected) - (b.id === S.selected));
  for (const o of ordered) {
    const box = shownBox(o);
    if (!box) continue;
    const [x, y, w, h] = box;
    const key = o.keyframes.has(S.frame) || (S.drag !== null && S.drag.id === o.id);
    const score = o.scores[S.frame];
    const doubtful = !key && S.state.scored && score !== null && score < S.state.threshold;
    const group = svg("g", { class: "box", "data-id": o.id }, overlay);
    group.classList.toggle("selected", o.id === S.selected);
    group.classList.toggle("key", key);
    group.classList.toggle("lost", !key && o.lost[S.frame]);
    group.classList.toggle("doubtful", doubtful);
    svg("rect", { class: "hit", x, y, width: w, height: h }, group);
    svg("rect", { class: "outline", x, y, width: w, height: h, stroke: o.colour }, group);
    caption(group, o, key ? "key" : score === null ? "" : score.toFixed(2), x, y, px);
    if (o.id === S.selected) handles(group, box, px);
  }
  if (S.drag !== null && S.drag.id === null) {
    const [x, y, w, h] = S.drag.box;
    svg("rect", { class: "drawing", x, y, width: w, height: h }, overlay);
  }
}

function caption(group, o, detail, x, y, px) {
  const size = CAPTION_PX * px;
  const pad = 3 * px;
  const label = svg("g", { class: "caption" }, group);
  const background = svg("rect", { fill: o.colour, rx: 2 * px }, label);
  const text = svg("text", { "font-size": size }, label);
  text.textContent = `${o.id} ${o.label}${detail ? " " + detail : ""}`;
  const width = text.getComputedTextLength() + 2 * pad;
  const height = size + 2 * pad;
  const top = y - height >= 0 ? y - height : y; // above the box, inside it at the frame's top edge
  const left = Math.min(x, S.state.video.width - width);
  text.setAttribute("x", left + pad);
  text.setAttribute("y", top + pad + size * 0.85);
  background.setAttribute("x", left);
  background.setAttribute("y", top);
  background.setAttribute("width", width);
  background.setAttribute("height", height);
}

function handles(group, [x, y, w, h], px) {
  const size = HANDLE_PX * px;
  const spots = {
    nw: [x, y], n: [x + w / 2, y], ne: [x + w, y], e: [x + w, y + h / 2],
    se: [x + w, y + h], s: [x + w / 2, y + h], sw: [x, y + h], w: [x, y + h / 2],
  };
  for (const name of HANDLES) {
    const [cx, cy] = spots[name];
    svg("rect", { class: "handle", "data-handle": name, x: cx - size / 2, y: cy - size / 2, width: size, height: size }, group);
  }
}

// --- drawing, moving, resizing ----------------------------------------------------------------

function videoPoint(event) {
  const overlay = $("#overlay");
  const point = overlay.createSVGPoint();
  point.x = event.clientX;
  point.y = event.clientY;
  return point.matrixTransform(overlay.getScreenCTM().inverse());
}

function clampBox([x, y, w, h]) {
  const { width, height } = S.state.video;
  w = Math.min(Math.round(w), width);
  h = Math.min(Math.round(h), height);
  x = Math.max(0, Math.min(Math.round(x), width - w));
  y = Math.max(0, Math.min(Math.round(y), height - h));
  return [x, y, w, h];
}

function spanBox(a, b) {
  const { width, height } = S.state.video;
  const x1 = Math.max(0, Math.min(width, Math.round(Math.min(a.x, b.x))));
  const y1 = Math.max(0, Math.min(height, Math.round(Math.min(a.y, b.y))));
  const x2 = Math.max(0, Math.min(width, Math.round(Math.max(a.x, b.x))));
  const y2 = Math.max(0, Math.min(height, Math.round(Math.max(a.y, b.y))));
  return [x1, y1, x2 - x1, y2 - y1];
}

function resized(start, handle, dx, dy) {
  let [x1, y1, x2, y2] = [start[0], start[1], start[0] + start[2], start[1] + start[3]];
  if (handle.includes("w")) x1 += dx;
  if (handle.includes("e")) x2 += dx;
  if (handle.includes("n")) y1 += dy;
  if (handle.includes("s")) y2 += dy;
  return spanBox({ x: x1, y: y1 }, { x: x2, y: y2 });
}

function onPointerDown(event) {
  if (event.button !== 0 || S.state === null) return;
  if (jobRunning()) return say(`wait until the ${S.state.job.kind} ends`, "error");
  if (S.shown !== S.frame) return say("wait until the frame is shown", "error");
  const point = videoPoint(event);
  const handle = event.target.closest(".handle");
  const group = event.target.closest("g.box");
  if (handle !== null) {
    const id = Number(group.dataset.id);
    S.drag = { mode: "resize", handle: handle.dataset.handle, id, start: point, from: S.objects.get(id).boxes[S.frame] };
  } else if (group !== null && !S.newObject) {
    const id = Number(group.dataset.id);
    select(id);
    S.drag = { mode: "move", id, start: point, from: S.objects.get(id).boxes[S.frame] };
  } else {
    const id = S.newObject ? null : S.selected;
    S.drag = { mode: "draw", id, start: point, from: null };
  }
  S.drag.box = S.drag.from ? [...S.drag.from] : [point.x, point.y, 0, 0];
  S.drag.screen = { x: event.clientX, y: event.clientY };
  S.drag.moved = false;
  $("#overlay").setPointerCapture(event.pointerId);
  event.preventDefault();
}

function onPointerMove(event) {
  const drag = S.drag;
  if (drag === null) return;
  if (Math.hypot(event.clientX - drag.screen.x, event.clientY - drag.screen.y) >= CLICK_PX) drag.moved = true;
  if (!drag.moved) return;
  const point = videoPoint(event);
  const dx = point.x - drag.start.x;
  const dy = point.y - drag.start.y;
  if (drag.mode === "move") drag.box = clampBox([drag.from[0] + dx, drag.from[1] + dy, drag.from[2], drag.from[3]]);
  else if (drag.mode === "resize") drag.box = resized(drag.from, drag.handle, dx, dy);
  else drag.box = spanBox(drag.start, point);
  renderOverlay();
}

function onPointerUp() {
  const drag = S.drag;
  if (drag === null) return;
  S.drag = null;
  if (!drag.moved) {
    if (drag.mode === "draw" && !S.newObject) select(null);
    renderOverlay();
    return;
  }
  const [, , w, h] = drag.box;
  const same = drag.from !== null && drag.box.every((v, i) => v === drag.from[i]);
  if (w < MIN_BOX || h < MIN_BOX || same) {
    renderOverlay();
    return;
  }
  const before = new Set(S.objects.keys());
  const body = { frame: S.frame, box: drag.box, id: drag.id };
  if (drag.id === null) body.label = $("#new-label").value;
  act("POST", "api/keyframes", body, () => {
    S.newObject = false;
    if (drag.id === null) {
      // Not selected, so that the next box drawn is the next new object (the first boxes are drawn in a row).
      const created = [...S.objects.keys()].find((id) => !before.has(id));
      select(null);
      say(`object ${created} drawn on frame ${body.frame}: drag around the next one, or click a box to fix it`, "done");
    } else {
      select(drag.id);
      say(`keyframe: object ${drag.id} on frame ${body.frame} at ${body.box.join(",")}`, "done");
    }
  });
}

function select(id) {
  S.selected = id;
  if (id !== null) S.newObject = false;
  renderObjects();
  renderOverlay();
  renderTracks();
  renderButtons();
}

// --- timelines ---------------------------------------------------------------------------------

function scoreColour(score) {
  const clamped = Math.max(0, Math.min(1, score));
  return `hsl(${Math.round(120 * clamped)}, 60%, ${42 + 6 * (1 - clamped)}%)`;
}

function renderTracks() {
  const tracks = $("#tracks");
  if (S.state === null) return;
  const rows = [...S.objects.values()];
  if (tracks.dataset.ids !== rows.map((o) => o.id).join(",")) {
    tracks.replaceChildren();
    for (const o of rows) {
      const row = document.createElement("div");
      row.className = "track-row";
      row.dataset.id = o.id;
      const label = document.createElement("span");
      label.className = "track-label";
      label.addEventListener("click", () => select(o.id));
      const canvas = document.createElement("canvas");
      canvas.addEventListener("pointerdown", (event) => scrubFrom(event, canvas));
      row.append(label, canvas);
      tracks.append(row);
    }
    const cursor = document.createElement("div");
    cursor.id = "cursor";
    tracks.append(cursor);
    tracks.dataset.ids = rows.map((o) => o.id).join(",");
  }
  for (const o of rows) {
    const row = tracks.querySelector(`.track-row[data-id="${o.id}"]`);
    row.classList.toggle("selected", o.id === S.selected);
    const label = row.querySelector(".track-label");
    label.textContent = `${o.id} ${o.label}`;
    label.style.borderLeft = `3px solid ${o.colour}`;
    label.style.paddingLeft = "6px";
    drawTrack(row.querySelector("canvas"), o);
  }
  placeCursor();
}

function drawTrack(canvas, o) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const g = canvas.getContext("2d");
  const count = S.state.video.frame_count;
  const absent = new Uint8Array(count);
  for (const [first, last] of o.absent) absent.fill(1, first, last + 1);
  const doubtful = new Uint8Array(count);
  for (const [first, last] of o.doubtful) doubtful.fill(1, first, last + 1);
  const hatch = hatchPattern(g, ratio);
  const lane = Math.max(2, Math.round(DOUBTFUL_LANE_PX * ratio)); // the doubtful runs' lane, under the scores
  const strip = height - lane - Math.round(ratio); // a one-pixel gap between the two
  g.clearRect(0, 0, width, height);
  for (let column = 0; column < width; column++) {
    const first = Math.floor((column * count) / width);
    const last = Math.max(first, Math.floor(((column + 1) * count) / width) - 1);
    let lowest = null;
    let lost = false;
    let allAbsent = true;
    let anyDoubtful = false;
    for (let f = first; f <= last; f++) {
      allAbsent = allAbsent && absent[f] === 1;
      anyDoubtful = anyDoubtful || doubtful[f] === 1;
      if (o.boxes[f] === null) continue;
      if (o.lost[f]) lost = true;
      else if (lowest === null || o.scores[f] < lowest) lowest = o.scores[f];
    }
    if (allAbsent) g.fillStyle = hatch;
    else if (lowest !== null) g.fillStyle = S.state.scored ? scoreColour(lowest) : "hsl(210, 30%, 45%)";
    else g.fillStyle = lost ? LOST_COLOUR : NO_BOX_COLOUR;
    g.fillRect(column, 0, 1, strip);
    if (anyDoubtful) {
      g.fillStyle = DOUBTFUL_COLOUR;
      g.fillRect(column, height - lane, 1, lane);
    }
  }
  g.fillStyle = "#fff";
  const keyWidth = Math.max(2, Math.round(2 * ratio));
  for (const f of o.keyframes) {
    const x = Math.min(width - keyWidth, Math.floor(((f + 0.5) * width) / count - keyWidth / 2));
    g.fillRect(x, 0, keyWidth, strip);
  }
  if (o.id === S.selected) {
    g.strokeStyle = o.colour;
    g.lineWidth = ratio;
    g.strokeRect(ratio / 2, ratio / 2, width - ratio, height - ratio);
  }
}

function hatchPattern(g, ratio) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = Math.round(6 * ratio);
  const t = tile.getContext("2d");
  t.fillStyle = NO_BOX_COLOUR;
  t.fillRect(0, 0, tile.width, tile.height);
  t.strokeStyle = "#454a52";
  t.lineWidth = ratio * 1.5;
  t.beginPath();
  t.moveTo(0, tile.height);
  t.lineTo(tile.width, 0);
  t.stroke();
  return g.createPattern(tile, "repeat");
}

function placeCursor() {
  const cursor = $("#cursor");
  const canvas = $("#tracks canvas");
  if (cursor === null || canvas === null || S.state === null) return;
  const tracks = $("#tracks").getBoundingClientRect();
  const box = canvas.getBoundingClientRect();
  const count = S.state.video.frame_count;
  cursor.style.left = `${box.left - tracks.left + ((S.frame + 0.5) * box.width) / count}px`;
}

function scrubFrom(event, canvas) {
  const seek = (e) => {
    const box = canvas.getBoundingClientRect();
    go(Math.floor(((e.clientX - box.left) / box.width) * S.state.video.frame_count));
  };
  seek(event);
  canvas.setPointerCapture(event.pointerId);
  canvas.onpointermove = (e) => seek(e);
  canvas.onpointerup = () => {
    canvas.onpointermove = null;
    canvas.onpointerup = null;
  };
}

// --- jumps -------------------------------------------------------------------------------------

function chosenObjects() {
  const all = [...S.objects.values()];
  return S.selected !== null ? all.filter((o) => o.id === S.selected) : all;
}

function jump(starts, forward, what) {
  const frames = [...new Set(starts)].sort((a, b) => a - b);
  const next = forward ? frames.find((f) => f > S.frame) : frames.reverse().find((f) => f < S.frame);
  if (next === undefined) return say(`no ${what} ${forward ? "after" : "before"} frame ${S.frame}`);
  go(next);
  say(`${what} at frame ${next}`);
}

function jumpDoubtful(forward) {
  jump(chosenObjects().flatMap((o) => o.doubtful.map((run) => run[0])), forward, "doubtful run");
}

function jumpKeyframe(forward) {
  jump(chosenObjects().flatMap((o) => [...o.keyframes]), forward, "keyframe");
}

// --- commands ----------------------------------------------------------------------------------

function needSelection(what) {
  if (S.selected === null) {
    say(`select an object first (click its box) to ${what}`, "error");
    return false;
  }
  return true;
}

function toggleAbsent() {
  if (!needSelection("mark it absent")) return;
  const o = S.objects.get(S.selected);
  const absent = !isAbsent(o, S.frame);
  act("POST", "api/absent", { id: o.id, frame: S.frame, absent }, () =>
    say(absent ? `object ${o.id} absent from frame ${S.frame}` : `object ${o.id} back from frame ${S.frame}`, "done"),
  );
}

function deleteKeyframe() {
  if (!needSelection("delete its keyframe")) return;
  const o = S.objects.get(S.selected);
  if (!o.keyframes.has(S.frame)) return say(`object ${o.id} has no keyframe on frame ${S.frame}`, "error");
  act("DELETE", `api/keyframes/${o.id}/${S.frame}`, undefined, () =>
    say(`deleted the keyframe of object ${o.id} on frame ${S.frame}`, "done"),
  );
}

function deleteObject() {
  if (!needSelection("delete it")) return;
  const id = S.selected;
  act("DELETE", `api/objects/${id}`, undefined, () => say(`deleted object ${id} (Ctrl+Z brings it back)`, "done"));
}

function undo() {
  act("POST", "api/undo", undefined, () => say("undone", "done"));
}

async function runJob(kind) {
  const data = await act("POST", `api/${kind}`);
  if (data !== null) pollJob();
}

async function pollJob() {
  try {
    const job = await api("GET", "api/job");
    renderJob(job);
    if (job !== null && job.state === "running") {
      setTimeout(pollJob, JOB_POLL_MS);
      return;
    }
    setState(await api("GET", "api/state"));
    if (job !== null) say(job.message, job.state === "done" ? "done" : "error");
  } catch (error) {
    say(error.message, "error");
  }
}

function renderJob(job) {
  const box = $("#job");
  box.dataset.state = job === null ? "none" : job.state;
  box.hidden = job === null || job.state !== "running";
  if (job === null) return;
  const progress = $("#job-progress");
  progress.max = Math.max(job.total, 1);
  progress.value = job.done;
  $("#job-text").textContent = `${job.kind} ${job.done}/${job.total || "?"}`;
  if (job.state === "running") {
    $("#undo").disabled = $("#retrack").disabled = $("#save").disabled = $("#track").disabled = true;
  }
}

function save() {
  act("POST", "api/save", undefined, (data) => say(`saved ${data.written.join(" and ")}`, "done"));
}

// --- keys --------------------------------------------------------------------------------------

function onKey(event) {
  if (event.target instanceof HTMLInputElement && event.target.type !== "range") {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const control = event.ctrlKey || event.metaKey;
  const key = event.key;
  let handled = true;
  if (key === "ArrowRight") go(S.frame + (event.shiftKey ? STEP_BIG : 1));
  else if (key === "ArrowLeft") go(S.frame - (event.shiftKey ? STEP_BIG : 1));
  else if (key === "Home") go(0);
  else if (key === "End") go(S.state.video.frame_count - 1);
  else if (key === "]") jumpDoubtful(true);
  else if (key === "[") jumpDoubtful(false);
  else if (key === ".") jumpKeyframe(true);
  else if (key === ",") jumpKeyframe(false);
  else if (control && key.toLowerCase() === "z") undo();
  else if (control && key.toLowerCase() === "s") save();
  else if (control) handled = false;
  else if (key === "a" || key === "A") toggleAbsent();
  else if ((key === "Delete" || key === "Backspace") && event.shiftKey) deleteObject();
  else if (key === "Delete" || key === "Backspace") deleteKeyframe();
  else if (key === "n" || key === "N") newObject();
  else if (key === "r" || key === "R") runJob("retrack");
  else if ((key === "t" || key === "T") && S.state.can_track) runJob("track");
  else if (key === "Escape") escape();
  else if (/^[1-9]$/.test(key)) {
    const ids = [...S.objects.keys()];
    if (Number(key) <= ids.length) select(ids[Number(key) - 1]);
  } else handled = false;
  if (handled) event.preventDefault();
}

function newObject() {
  S.newObject = !S.newObject;
  if (S.newObject) {
    S.selected = null;
    say("drag a box around the new object");
  }
  select(S.selected);
}

function escape() {
  if (S.drag !== null) S.drag = null;
  else if (S.newObject) S.newObject = false;
  else S.selected = null;
  select(S.selected);
}

// --- start -------------------------------------------------------------------------------------

async function start() {
  $("#overlay").addEventListener("pointerdown", onPointerDown);
  $("#overlay").addEventListener("pointermove", onPointerMove);
  $("#overlay").addEventListener("pointerup", onPointerUp);
  $("#overlay").addEventListener("pointercancel", () => {
    S.drag = null;
    renderOverlay();
  });
  document.addEventListener("keydown", onKey);
  $("#scrub").addEventListener("input", (event) => go(Number(event.target.value)));
  $("#frame-input").addEventListener("change", (event) => go(Number(event.target.value)));
  $("#undo").addEventListener("click", undo);
  $("#track").addEventListener("click", () => runJob("track"));
  $("#retrack").addEventListener("click", () => runJob("retrack"));
  $("#save").addEventListener("click", save);
  $("#new").addEventListener("click", newObject);
  window.addEventListener("resize", layout);
  window.addEventListener("beforeunload", (event) => {
    if (S.state !== null && S.state.unsaved) event.preventDefault();
  });
  try {
    setState(await api("GET", "api/state"));
  } catch (error) {
    say(error.message, "error");
    return;
  }
  layout();
  go(0);
  if (jobRunning()) pollJob();
  document.body.dataset.ready = "1";
}

start();
