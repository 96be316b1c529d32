// mlpcli playground: the page draws; the server trains with mlpcli's own nn/ and training loop.
// Training runs in a worker on the server; frames arrive over a WebSocket as binary arrays (the layout is in
// mlpcli/serve/playground/frames.py) and are painted with putImageData, the newest one per display frame.
"use strict";

const $ = (id) => document.getElementById(id);
// Okabe & Ito's colour-blind-safe palette: blue, orange, reddish purple, bluish green, vermillion, sky blue, ...
const COLORS = [[0, 114, 178], [230, 159, 0], [204, 121, 167], [0, 158, 115], [213, 94, 0], [86, 180, 233],
  [240, 228, 66], [60, 60, 60], [150, 150, 150], [140, 86, 75]];
const NEG = [230, 159, 0], POS = [0, 114, 178];  // a neuron's output and a weight: orange < 0 < blue
const CHOICES = {
  lr: [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
  batch: [1, 5, 10, 20, 50, 100],
  regrate: [0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1],
  dropout: [0, 0.1, 0.2, 0.3, 0.5],
  points: [60, 100, 200, 500, 1000, 2000],
  ratio: [0.1, 0.2, 0.3, 0.5, 0.7],
};
const DEFAULT = {
  data: { dataset: "spiral", noise: 0, points: 500, test_ratio: 0.5, features: ["x1", "x2"] },
  model: { hidden: [8, 8], activation: "tanh", output: "softmax", dropout: 0 },
  loss: "cross_entropy",
  optimizer: { name: "adam", lr: 0.01, weight_decay: 0 },
  schedule: { name: "constant" },
  train: { batch_size: 10 },
};
const SECTIONS = ["data", "model", "optimizer", "schedule", "train"];

let meta = null;           // /api/datasets
let config = null;         // the session's config document (also in the URL)
let session = null;        // its id
let socket = null;         // its live WebSocket
let generation = 0;        // bumped by every restart: late answers of an older session are dropped
let playing = false;       // what the server last said (or what was asked of it)
let points = null;         // plane points of the session
let ownPoints = null;      // points uploaded or clicked: {xy, label} (not in the URL: they can be many)
let pending = null;        // the newest frame not yet painted
let received = 0;          // frames received and not yet acknowledged
let last = null;           // the last frame painted: {header, params}
let curve = [];            // [[step, train_loss, test_loss]]
let net = null;            // the network drawing: node canvases and images, edges
let focus = null;          // [layer, unit] whose map the output shows, or null
let textAt = 0;            // when the numbers and the chart were last redrawn
const LUT = diverging();

function clone(x) { return JSON.parse(JSON.stringify(x)); }

function isRegression(name) { return !!meta && meta.regression.includes(name); }

function pointColour(label, regression) {  // a class's colour, or a target's on the diverging scale (-1 .. 1)
  if (!regression) return COLORS[label % 10];
  const t = Math.max(-1, Math.min(1, label)), c = t < 0 ? NEG : POS, a = Math.abs(t);
  return c.map((v) => Math.round(255 - (255 - v) * a));
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = await res.json();
  if (!res.ok) throw new Error(doc.error || res.statusText);
  return doc;
}

function fill(select, values, current, label = (v) => String(v)) {
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = String(v);
    o.textContent = label(v);
    if (String(v) === String(current)) o.selected = true;
    select.appendChild(o);
  }
}

function complete(doc) {  // a config document with every section the page edits
  const out = Object.assign(clone(DEFAULT), clone(doc || {}));
  for (const k of SECTIONS) out[k] = Object.assign(clone(DEFAULT[k]), (doc && doc[k]) || {});
  out.loss = out.loss || DEFAULT.loss;
  if (isRegression(out.data.dataset)) {  // unless the document says otherwise: one linear output, squared error
    if (!(doc && doc.model && doc.model.output)) out.model.output = "linear";
    if (!(doc && doc.loss)) out.loss = "mse";
  }
  return out;
}

function presetById(id) { return meta.presets.find((p) => p.id === id); }

function readUrl() {  // the hash (a config document) wins over ?preset=ID
  try {
    if (location.hash.length > 1) return { config: complete(JSON.parse(decodeURIComponent(location.hash.slice(1)))) };
  } catch (e) { showError("the link's configuration is not valid JSON: the defaults are shown"); }
  const id = new URLSearchParams(location.search).get("preset");
  const p = id && presetById(id);
  if (p) return { config: complete(p.config), preset: p };
  if (id) showError(`no preset ${id}: the defaults are shown`);
  return { config: complete(DEFAULT) };
}

function writeUrl() {
  const q = new URLSearchParams(location.search);
  q.delete("preset");  // the hash now says it all
  const search = q.toString() ? "?" + q.toString() : "";
  window.history.replaceState(null, "", location.pathname + search + "#" + encodeURIComponent(JSON.stringify(config)));
}

function showError(text) { $("error").textContent = text; $("error").hidden = !text; }

function bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function diverging() {  // 256 colours: orange (-1) - white (0) - blue (+1), as RGBA words
  const lut = new Uint32Array(256);
  const little = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  for (let v = 0; v < 256; v++) {
    const t = v / 127.5 - 1, c = t < 0 ? NEG : POS, a = Math.abs(t);
    const r = Math.round(255 - (255 - c[0]) * a), g = Math.round(255 - (255 - c[1]) * a), b = Math.round(255 - (255 - c[2]) * a);
    lut[v] = little ? (255 << 24) | (b << 16) | (g << 8) | r : (r << 24) | (g << 16) | (b << 8) | 255;
  }
  return lut;
}

// ---- the controls --------------------------------------------------------------------------

function layerActivations() {
  const a = config.model.activation, n = config.model.hidden.length;
  return Array.isArray(a) ? a.slice(0, n).concat(Array(Math.max(0, n - a.length)).fill(a[a.length - 1])) : Array(n).fill(a);
}

function showControls() {
  const d = config.data, m = config.model, o = config.optimizer;
  fill($("lr"), CHOICES.lr, o.lr);
  fill($("batch"), CHOICES.batch, config.train.batch_size);
  fill($("optimizer"), meta.optimizers, o.name);
  fill($("schedule"), meta.schedules, config.schedule.name);
  $("reg").value = o.l1 ? "l1" : o.weight_decay ? "l2" : "none";
  fill($("regrate"), CHOICES.regrate, o.l1 || o.weight_decay || 0);
  fill($("dropout"), CHOICES.dropout, m.dropout || 0);
  fill($("activation"), meta.activations, Array.isArray(m.activation) ? m.activation[0] : m.activation);
  fill($("points"), CHOICES.points, d.points);
  fill($("ratio"), CHOICES.ratio, d.test_ratio, (v) => `${Math.round(v * 100)}%`);
  const regression = isRegression(d.dataset);
  $("head").value = regression ? "linear" : m.output === "sigmoid" ? "sigmoid" : "softmax";
  for (const o of $("head").options) o.disabled = regression !== (o.value === "linear");
  $("clickadd-label").hidden = regression;
  $("noise").value = Math.round((d.noise || 0) * 100);
  $("noise-v").textContent = $("noise").value;
  for (const b of $("datasets").children) b.classList.toggle("on", b.dataset.name === d.dataset);
  const feats = $("features");
  feats.innerHTML = "";
  for (const f of meta.features) {
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox";
    c.checked = (d.features || ["x1", "x2"]).includes(f);
    c.onchange = () => {
      const chosen = meta.features.filter((g, i) => feats.querySelectorAll("input")[i].checked);
      if (!chosen.length) { c.checked = true; return; }
      config.data.features = chosen;
      restart();
    };
    l.append(c, " " + f);
    feats.appendChild(l);
  }
  const lb = $("layer-buttons");
  lb.innerHTML = "";
  m.hidden.forEach((n, i) => {
    const s = document.createElement("span");
    const minus = document.createElement("button"), plus = document.createElement("button");
    minus.textContent = "−"; plus.textContent = "+";
    minus.title = `one neuron less in layer ${i + 1}`; plus.title = `one neuron more in layer ${i + 1}`;
    minus.onclick = () => { if (m.hidden[i] > 1) { m.hidden[i]--; restart(); } };
    plus.onclick = () => { if (m.hidden[i] < meta.limits.neurons) { m.hidden[i]++; restart(); } };
    const act = document.createElement("select");
    fill(act, meta.activations, layerActivations()[i]);
    act.title = "this layer's activation";
    act.onchange = () => {
      const names = layerActivations();
      names[i] = act.value;
      config.model.activation = names.every((a) => a === names[0]) ? names[0] : names;
      restart();
    };
    s.append(`layer ${i + 1}: ${n} `, minus, plus, " ", act);
    lb.appendChild(s);
  });
  const digits = d.dataset === "mnist-sample";
  $("features-title").hidden = digits;
  $("features").hidden = digits;
  $("digits-view").hidden = !digits;
  $("plot").hidden = digits;
  document.querySelector(".toggles").hidden = digits;
  $("clickclass").innerHTML = "";
  for (let c = 0; c < Math.max(2, d.classes || 3); c++) $("clickclass").append(new Option(String(c)));
}

function setPlaying(on) {
  playing = on;
  $("play").textContent = on ? "❚❚ pause" : "▶ play";
  $("play").setAttribute("aria-pressed", String(on));
}

function send(doc) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(doc)); }

function togglePlay() {
  if (!session) return;
  setPlaying(!playing);
  if (playing) showError("");
  send({ play: playing });
}

function choosePreset(p) {
  config = complete(p.config);
  $("preset").value = p.id;
  $("watch").textContent = p.watch;
}

function clearPreset() { $("preset").value = ""; $("watch").textContent = ""; }

function bind() {
  const set = (id, fn) => { $(id).onchange = () => { fn($(id).value); restart(); }; };
  set("batch", (v) => { config.train.batch_size = Number(v); });
  set("optimizer", (v) => { config.optimizer.name = v; });
  set("schedule", (v) => { config.schedule.name = v; });
  const reg = () => {
    const kind = $("reg").value, rate = Number($("regrate").value);
    config.optimizer.weight_decay = kind === "l2" ? rate : 0;
    config.optimizer.l1 = kind === "l1" ? rate : 0;
  };
  set("reg", reg);
  set("regrate", reg);
  set("dropout", (v) => { config.model.dropout = Number(v); });
  set("activation", (v) => { config.model.activation = v; });
  set("points", (v) => { config.data.points = Number(v); });
  set("ratio", (v) => { config.data.test_ratio = Number(v); });
  set("head", (v) => {
    config.model.output = v;
    config.loss = v === "sigmoid" ? "mse" : "cross_entropy";
  });
  $("lr").onchange = () => {  // the rate changes while it trains
    config.optimizer.lr = Number($("lr").value);
    writeUrl();
    send({ lr: config.optimizer.lr });
  };
  $("noise").oninput = () => { $("noise-v").textContent = $("noise").value; };
  $("noise").onchange = () => { config.data.noise = Number($("noise").value) / 100; restart(); };
  $("speed").oninput = () => { $("speed-v").textContent = $("speed").value; send({ speed: Number($("speed").value) }); };
  $("play").onclick = togglePlay;
  $("stepbtn").onclick = () => send({ step: 1 });
  $("reset").onclick = () => {  // the points keep the seed that drew them; the weights get a new one
    if (config.data.seed === undefined || config.data.seed === null) config.data.seed = config.seed || 0;
    config.seed = Math.floor(Math.random() * 2 ** 31);
    restart();
  };
  $("regen").onclick = () => {
    if (ownPoints) return showError("your own points are kept as they are: regenerate draws a dataset's points");
    config.data.seed = Math.floor(Math.random() * 2 ** 31);
    restart();
  };
  $("addlayer").onclick = () => {
    if (config.model.hidden.length >= meta.limits.hidden_layers) return;
    const names = layerActivations();
    config.model.hidden.push(4);
    if (Array.isArray(config.model.activation)) config.model.activation = names.concat([names[names.length - 1] || "tanh"]);
    restart();
  };
  $("droplayer").onclick = () => {
    if (!config.model.hidden.length) return;
    config.model.hidden.pop();
    if (Array.isArray(config.model.activation)) config.model.activation = layerActivations();
    restart();
  };
  $("upload").onchange = async () => {
    const file = $("upload").files[0];
    if (!file) return;
    const parsed = parseCsv(await file.text());
    if (parsed.error) return showError(parsed.error);
    ownPoints = parsed;
    clearPreset();
    restart();
  };
  $("open").onchange = async () => {
    const file = $("open").files[0];
    if (!file) return;
    try {
      const res = await fetch("/api/import", { method: "POST", body: await file.arrayBuffer() });
      const doc = await res.json();
      if (!res.ok) throw new Error(doc.error || res.statusText);
      ownPoints = null;
      clearPreset();
      config = complete(doc.config);
      restart(doc.id);
    } catch (e) { showError(`${file.name}: ${e.message}`); }
    $("open").value = "";
  };
  $("boundary").onclick = (e) => {
    if (!$("clickadd").checked || !points) return;
    const c = $("boundary"), rect = c.getBoundingClientRect(), [x0, x1, y0, y1] = points.bounds;
    const x = x0 + ((e.clientX - rect.left) / rect.width) * (x1 - x0), y = y1 - ((e.clientY - rect.top) / rect.height) * (y1 - y0);
    if (!ownPoints) ownPoints = { xy: points.train.xy.concat(points.test.xy), label: points.train.label.concat(points.test.label) };
    ownPoints.xy.push([x, y]);
    ownPoints.label.push(Number($("clickclass").value));
    restart();
  };
  $("preset").onchange = () => {
    const p = presetById($("preset").value);
    if (!p) return;
    ownPoints = null;
    choosePreset(p);
    restart();
  };
  $("showtest").onchange = drawPoints;
  $("discrete").onchange = () => { if (last) paintBoundary(last); };
  $("weight-edit").onsubmit = (e) => { e.preventDefault(); setWeight(); };
  $("weight-cancel").onclick = closeWeightEdit;
  $("weight-edit").onkeydown = (e) => { if (e.key === "Escape") closeWeightEdit(); };
  $("weight-from").onchange = () => showWeightValue();
  document.addEventListener("keydown", (e) => {
    const t = e.target, typing = t && (["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(t.tagName) || t.isContentEditable);
    if ((e.key === " " || e.code === "Space") && !typing) { e.preventDefault(); togglePlay(); }
  });
  window.addEventListener("resize", () => { if (last) { buildNetwork(last.header.layer_sizes); paintNetwork(last); } drawPoints(); });
}

function parseCsv(text) {  // x1,x2,label rows; a first line that is not three numbers is a header
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length);
  if (!lines.length) return { error: "the file is empty" };
  const row = (l) => l.split(/[,;\t]/).map((v) => v.trim());
  const numeric = (r) => r.length >= 3 && r.slice(0, 3).every((v) => v !== "" && isFinite(Number(v)));
  const start = numeric(row(lines[0])) ? 0 : 1;
  const xy = [], label = [];
  for (let i = start; i < lines.length; i++) {
    const r = row(lines[i]);
    if (!numeric(r) || !Number.isInteger(Number(r[2])) || Number(r[2]) < 0 || Number(r[2]) > 9) {
      return { error: `line ${i + 1}: expected x1,x2,label with a label from 0 to 9` };
    }
    xy.push([Number(r[0]), Number(r[1])]);
    label.push(Number(r[2]));
  }
  if (xy.length < 2) return { error: "at least two points" };
  return { xy, label };
}

async function datasetButtons() {
  const box = $("datasets");
  for (const name of meta.datasets) {
    const b = document.createElement("button");
    b.dataset.name = name;
    b.title = name === "mnist-sample" ? "digits: MNIST's sample" : name;
    const c = document.createElement("canvas");
    c.width = 56; c.height = 56;
    b.append(c, name === "mnist-sample" ? "digits" : name);
    b.onclick = () => {
      ownPoints = null;
      clearPreset();
      config.data.dataset = name;
      if (isRegression(name)) { config.model.output = "linear"; config.loss = "mse"; }
      else if (config.model.output === "linear") { config.model.output = "softmax"; config.loss = "cross_entropy"; }
      if (name === "mnist-sample") { config.model.hidden = [32]; config.model.activation = "relu"; config.train.batch_size = 50; }
      else if (config.model.hidden.length === 1 && config.model.hidden[0] === 32) config.model.hidden = [8, 8];
      restart();
    };
    box.appendChild(b);
    if (name === "mnist-sample") { drawDigitIcon(c); continue; }
    api("GET", `/api/preview?dataset=${name}`).then((p) => previewPoints(c, p)).catch(() => {});
  }
}

function drawDigitIcon(c) {
  const g = c.getContext("2d");
  g.fillStyle = "#000"; g.fillRect(0, 0, 56, 56);
  g.strokeStyle = "#fff"; g.lineWidth = 6; g.beginPath(); g.moveTo(18, 11); g.lineTo(40, 11); g.lineTo(24, 47); g.stroke();
}

function previewPoints(c, p) {
  const g = c.getContext("2d"), [x0, x1, y0, y1] = p.bounds;
  p.xy.forEach(([x, y], i) => {
    const [R, G, B] = pointColour(p.label[i], p.regression);
    g.fillStyle = `rgb(${R},${G},${B})`;
    g.fillRect(((x - x0) / (x1 - x0)) * c.width - 1, c.height - ((y - y0) / (y1 - y0)) * c.height - 1, 2, 2);
  });
}

// ---- drawing -------------------------------------------------------------------------------

function drawPoints() {  // the points, on their own canvas over the heat map: drawn when they change only
  const c = $("points-layer"), g = c.getContext("2d");
  const rect = c.getBoundingClientRect(), scale = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round((rect.width || 360) * scale)), h = Math.max(1, Math.round((rect.height || 360) * scale));
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  g.clearRect(0, 0, w, h);
  if (!points) return;
  const [x0, x1, y0, y1] = points.bounds, r = 3.2 * scale;
  const draw = (set, ring) => set.xy.forEach(([x, y], i) => {
    const [R, G, B] = pointColour(set.label[i], points.regression);
    g.beginPath();
    g.arc(((x - x0) / (x1 - x0)) * w, h - ((y - y0) / (y1 - y0)) * h, r, 0, 2 * Math.PI);
    g.fillStyle = `rgb(${R},${G},${B})`; g.fill();
    g.lineWidth = 1.2 * scale; g.strokeStyle = ring; g.stroke();
  });
  draw(points.train, points.regression ? "#555" : "#fff");  // a target near 0 is white: ring it dark
  if ($("showtest").checked) draw(points.test, "#000");
}

function classLegend(k, regression) {
  const box = $("class-legend");
  box.innerHTML = "";
  box.dataset.kind = regression ? "regression" : String(k);
  if (regression) { box.textContent = "the output’s value and the points’ targets, on the scale above (−1 to 1); accuracy counts outputs within 0.1 of their target"; return; }
  for (let c = 0; c < k; c++) {
    const s = document.createElement("span"), i = document.createElement("i");
    i.style.background = `rgb(${COLORS[c % 10].join(",")})`;
    s.append(i, `class ${c}`);
    box.appendChild(s);
  }
}

function drawScale() {
  const c = $("scale"), g = c.getContext("2d"), img = g.createImageData(c.width, c.height);
  const words = new Uint32Array(img.data.buffer);
  for (let x = 0; x < c.width; x++) for (let y = 0; y < c.height; y++) words[y * c.width + x] = LUT[Math.round((x / (c.width - 1)) * 255)];
  g.putImageData(img, 0, 0);
}

const images = new Map();  // canvas -> its ImageData (made once)
function imageOf(canvas, size) {
  let img = images.get(canvas);
  if (!img || img.width !== size) { canvas.width = size; canvas.height = size; img = canvas.getContext("2d").createImageData(size, size); images.set(canvas, img); }
  return img;
}

function paintMap(canvas, maps, offset, size) {  // a unit's uint8 map (row 0 at the bottom) on the diverging scale
  const img = imageOf(canvas, size), words = new Uint32Array(img.data.buffer);
  for (let r = 0; r < size; r++) {
    const src = offset + r * size, dst = (size - 1 - r) * size;
    for (let q = 0; q < size; q++) words[dst + q] = LUT[maps[src + q]];
  }
  canvas.getContext("2d").putImageData(img, 0, 0);
}

function paintBoundary(frame) {
  const { header, maps } = frame, c = $("boundary"), n = header.grid, area = n * n;
  if (focus && header.focus) {
    paintMap(c, maps, 2 * area + header.unitCount * header.map * header.map, n);
    return;
  }
  const img = imageOf(c, n), px = img.data, discrete = $("discrete").checked;
  if (header.regression) {  // the output's value on the diverging scale; discretized, its sign
    const words = new Uint32Array(px.buffer);
    for (let r = 0; r < n; r++) {
      for (let q = 0; q < n; q++) {
        const v = maps[area + r * n + q];
        words[(n - 1 - r) * n + q] = LUT[discrete ? (v >= 128 ? 255 : 0) : v];
      }
    }
    c.getContext("2d").putImageData(img, 0, 0);
    return;
  }
  for (let r = 0; r < n; r++) {
    for (let q = 0; q < n; q++) {
      const src = r * n + q, dst = ((n - 1 - r) * n + q) * 4;
      const col = COLORS[maps[src] % 10], a = discrete ? 0.75 : (maps[area + src] / 255) * 0.75;
      px[dst] = 255 - (255 - col[0]) * a; px[dst + 1] = 255 - (255 - col[1]) * a; px[dst + 2] = 255 - (255 - col[2]) * a;
      px[dst + 3] = 255;
    }
  }
  c.getContext("2d").putImageData(img, 0, 0);
}

function buildNetwork(sizes) {  // the drawing's nodes and edges, made once per architecture (and on resize)
  const box = $("network");
  box.innerHTML = "";
  const W = box.clientWidth || 600, H = box.clientHeight || 440;
  const names = config.data.dataset === "mnist-sample" ? ["pixels"] : config.data.features;
  const shown = sizes.map((n, l) => (l === 0 && config.data.dataset === "mnist-sample" ? 1 : n));
  const most = Math.max(...shown);
  const node = Math.max(8, Math.min(30, (H - 10) / most - 3));
  const left = 60, right = 30, cols = sizes.length;
  const pos = shown.map((n, l) => Array.from({ length: n }, (_, i) => [
    left + (l * (W - left - right - node)) / (cols - 1) + node / 2, 5 + ((i + 0.5) * (H - 10)) / n,
  ]));
  // the edges on one canvas under the nodes (thousands of SVG lines would repaint all at once every frame)
  const canvas = document.createElement("canvas"), scale = window.devicePixelRatio || 1;
  canvas.className = "edges";
  canvas.width = Math.round(W * scale); canvas.height = Math.round(H * scale);
  box.appendChild(canvas);
  const edges = [];
  let offset = 0;
  for (let l = 0; l < sizes.length - 1; l++) {
    const fanIn = sizes[l], fanOut = sizes[l + 1];
    if (shown[l] === fanIn) {
      for (let i = 0; i < fanIn; i++) for (let j = 0; j < fanOut; j++) {
        const [xa, ya] = pos[l][i], [xb, yb] = pos[l + 1][j];
        edges.push({ x1: xa + node / 2, y1: ya, x2: xb - node / 2, y2: yb, index: offset + i * fanOut + j, layer: l + 1, i, j });
      }
    }
    offset += fanIn * fanOut + fanOut;
  }
  const nearest = (e) => {  // the edge under the pointer (within 5 px), or null
    const r = canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    let best = null, bestD = 25;
    for (const g of edges) {
      const dx = g.x2 - g.x1, dy = g.y2 - g.y1, t = Math.max(0, Math.min(1, ((x - g.x1) * dx + (y - g.y1) * dy) / (dx * dx + dy * dy)));
      const d = (g.x1 + t * dx - x) ** 2 + (g.y1 + t * dy - y) ** 2;
      if (d < bestD) { bestD = d; best = g; }
    }
    return best;
  };
  canvas.onclick = (e) => { const g = nearest(e); if (g) openWeightEdit(g.layer, g.j, g.i); };
  canvas.onmousemove = (e) => {
    const g = nearest(e);
    canvas.style.cursor = g ? "pointer" : "default";
    if (g && last) $("explain").textContent = `W${g.layer}[${g.j}][${g.i}] = ${last.params[g.index].toFixed(4)} (click to change)`;
  };
  const nodes = [];
  pos.forEach((col, l) => col.forEach(([x, y], i) => {
    const hidden = l > 0 && l < sizes.length - 1;
    const el = document.createElement("div");  // a hidden unit's map is drawn under it, on the maps canvas
    el.className = hidden ? "node unit" : "node";
    Object.assign(el.style, { left: `${x - node / 2}px`, top: `${y - node / 2}px`, width: `${node}px`, height: `${node}px` });
    if (l === sizes.length - 1) el.style.background = `rgb(${COLORS[i % 10].join(",")})`;
    if (l > 0) {
      el.tabIndex = 0;
      el.setAttribute("role", "button");
      el.setAttribute("aria-label", l === sizes.length - 1 ? `output ${i}` : `neuron ${i} of layer ${l}`);
      el.onkeydown = (e) => { if (e.key === "Enter") { e.preventDefault(); openWeightEdit(l, i, 0); } };
    }
    el.onmouseenter = el.onfocus = () => hover(l, i);
    el.onmouseleave = el.onblur = () => hover(null);
    box.appendChild(el);
    nodes.push({ el, l, i, hidden, x: x - node / 2, y: y - node / 2, size: node });
    if (l === 0 || l === sizes.length - 1) {
      const t = document.createElement("span");
      t.className = "label";
      t.textContent = l === 0 ? (names[i] || "") : (isRegression(config.data.dataset) ? "value" : `class ${i}`);
      Object.assign(t.style, l === 0 ? { right: `${W - x + node / 2 + 3}px`, top: `${y - 7}px` } : { left: `${x + node / 2 + 3}px`, top: `${y - 7}px` });
      box.appendChild(t);
    }
  }));
  const mapsCanvas = document.createElement("canvas");  // every unit's map on one canvas: one layer to composite
  mapsCanvas.className = "maps";
  mapsCanvas.width = canvas.width; mapsCanvas.height = canvas.height;
  box.insertBefore(mapsCanvas, canvas.nextSibling);
  net = { sizes: sizes.join(","), nodes, edges, canvas, mapsCanvas, atlas: document.createElement("canvas"), scale, width: W, edgesAt: 0 };
}

const EDGES_EVERY_FRAME = 1000;  // a network with more edges redraws them ten times a second

function paintNetwork(frame) {
  const { header, params, maps } = frame, sizes = header.layer_sizes;
  if (!net || net.sizes !== sizes.join(",")) buildNetwork(sizes);
  const area = header.grid * header.grid, m = header.map, small = m * m;
  const hidden = net.nodes.filter((n) => n.hidden);
  if (hidden.length && m) {  // the units' maps side by side in one image, then each drawn scaled into its node
    const atlas = net.atlas;
    if (atlas.width !== m * hidden.length || atlas.height !== m) { atlas.width = m * hidden.length; atlas.height = m; net.atlasImage = null; }
    const img = net.atlasImage || (net.atlasImage = atlas.getContext("2d").createImageData(atlas.width, m));
    const words = new Uint32Array(img.data.buffer), stride = atlas.width;
    for (let u = 0; u < hidden.length; u++) {
      const base = 2 * area + u * small;
      for (let r = 0; r < m; r++) {
        const src = base + r * m, dst = (m - 1 - r) * stride + u * m;  // row 0 is the bottom of the plane
        for (let q = 0; q < m; q++) words[dst + q] = LUT[maps[src + q]];
      }
    }
    atlas.getContext("2d").putImageData(img, 0, 0);
    const g = net.mapsCanvas.getContext("2d");
    g.setTransform(net.scale, 0, 0, net.scale, 0, 0);
    g.imageSmoothingEnabled = true;
    hidden.forEach((n, u) => g.drawImage(atlas, u * m, 0, m, m, n.x, n.y, n.size, n.size));
  }
  const now = performance.now();  // a large network's edges ten times a second, a small one's every frame
  if (net.edges.length > EDGES_EVERY_FRAME && now - net.edgesAt < 100) return;
  net.edgesAt = now;
  let max = 1e-9;
  for (const e of net.edges) max = Math.max(max, Math.abs(params[e.index]));
  const g = net.canvas.getContext("2d");
  g.setTransform(net.scale, 0, 0, net.scale, 0, 0);
  g.clearRect(0, 0, net.canvas.width, net.canvas.height);
  g.globalAlpha = 0.8;
  for (const e of net.edges) {
    const w = params[e.index];
    g.strokeStyle = w >= 0 ? "rgb(0,114,178)" : "rgb(230,159,0)";
    g.lineWidth = 0.4 + (4 * Math.abs(w)) / max;
    g.beginPath(); g.moveTo(e.x1, e.y1); g.lineTo(e.x2, e.y2); g.stroke();
  }
}

function hover(l, i) {
  const next = l !== null && l > 0 && l < (last ? last.header.layer_sizes.length - 1 : 0) ? [l, i] : null;
  if (l !== null && last) explain(last, l, i);
  if (JSON.stringify(next) === JSON.stringify(focus)) return;
  focus = next;
  $("focus-label").hidden = !focus;
  if (focus) $("focus-label").textContent = `neuron ${focus[1]} of layer ${focus[0]} (move away for the output)`;
  send({ focus });
}

function weightAt(frame, layer, i, j) {  // W^layer[i][j] (input i to neuron j) from the flat float32 parameters
  const sizes = frame.header.layer_sizes;
  let offset = 0;
  for (let l = 0; l < layer - 1; l++) offset += sizes[l] * sizes[l + 1] + sizes[l + 1];
  return frame.params[offset + i * sizes[layer] + j];
}

function explain(frame, l, i) {
  if (l === 0) { $("explain").textContent = `input ${i}: ${config.data.features[i] || "pixel " + i}, standardized`; return; }
  const sizes = frame.header.layer_sizes, fanIn = sizes[l - 1];
  const ws = Array.from({ length: fanIn }, (_, k) => weightAt(frame, l, k, i));
  let offset = 0;
  for (let q = 0; q < l - 1; q++) offset += sizes[q] * sizes[q + 1] + sizes[q + 1];
  const b = frame.params[offset + fanIn * sizes[l] + i];
  const last = l === sizes.length - 1;
  const f = last ? config.model.output : layerActivations()[l - 1];
  const terms = ws.slice(0, 8).map((w, k) => `${w.toFixed(3)}·a${k}`).join(" + ") + (ws.length > 8 ? " + …" : "");
  let text = `neuron ${i} of layer ${l}\nz = W a + b = ${terms} + ${b.toFixed(3)}\na = ${f}(z)`;
  if (last && config.loss === "mse") text += "\ndelta = o(1 − o)(o − t)   (squared error through the sigmoid: the lecture's delta rule)";
  else if (last) text += "\ndelta = o − t   (softmax with cross-entropy)";
  else text += `\ndelta = (Wᵀ delta_next) · ${f}'(z)`;
  $("explain").textContent = text;
}

function openWeightEdit(layer, j, i) {  // W^layer[j][i]: into neuron j from input i (the lecture's order)
  if (!last) return;
  const sizes = last.header.layer_sizes;
  const from = $("weight-from");
  from.innerHTML = "";
  for (let k = 0; k < sizes[layer - 1]; k++) from.append(new Option(layer === 1 ? (config.data.features[k] || `input ${k}`) : `neuron ${k} of layer ${layer - 1}`, String(k)));
  from.value = String(i);
  $("weight-edit").dataset.layer = layer;
  $("weight-edit").dataset.j = j;
  $("weight-name").textContent = `W${layer} into ${layer === sizes.length - 1 ? "output" : "neuron"} ${j}`;
  $("weight-edit").hidden = false;
  showWeightValue();
  $("weight-value").focus();
  $("weight-value").select();
}

function showWeightValue() {
  const f = $("weight-edit").dataset;
  $("weight-value").value = weightAt(last, Number(f.layer), Number($("weight-from").value), Number(f.j)).toFixed(4);
}

function closeWeightEdit() { $("weight-edit").hidden = true; }

function setWeight() {
  const f = $("weight-edit").dataset, value = Number($("weight-value").value);
  if (!isFinite(value)) return showError("a weight is a finite number");
  send({ weight: { layer: Number(f.layer), i: Number($("weight-from").value), j: Number(f.j), value } });
  closeWeightEdit();
}

function niceTicks(max, count) {
  const step = 10 ** Math.floor(Math.log10(max / count)), m = max / count / step;
  const nice = (m >= 5 ? 10 : m >= 2 ? 5 : m >= 1 ? 2 : 1) * step;
  return Array.from({ length: Math.floor(max / nice) + 1 }, (_, k) => k * nice);
}

function drawCurves() {  // the losses by step, with axes
  const c = $("curves"), g = c.getContext("2d"), W = c.width, H = c.height, L = 38, B = 20, T = 14;
  g.clearRect(0, 0, W, H);
  g.font = "10px system-ui, sans-serif";
  g.fillStyle = "#183059"; g.fillText("training loss", L + 4, 10);
  g.fillStyle = "#d55e00"; g.fillText("test loss", L + 80, 10);
  if (curve.length < 2) return;
  const steps = curve[curve.length - 1][0] || 1;
  let max = 1e-6;
  for (const [, a, b] of curve) { if (isFinite(a)) max = Math.max(max, a); if (b !== null && isFinite(b)) max = Math.max(max, b); }
  const x = (s) => L + (s / steps) * (W - L - 6), y = (v) => H - B - (Math.min(v, max) / max) * (H - B - T);
  g.strokeStyle = "#999"; g.fillStyle = "#555"; g.lineWidth = 1;
  g.beginPath(); g.moveTo(L, T); g.lineTo(L, H - B); g.lineTo(W - 4, H - B); g.stroke();
  g.textAlign = "right";
  for (const v of niceTicks(max, 3)) { g.fillText(v.toPrecision(2).replace(/\.?0+$/, ""), L - 4, y(v) + 3); }
  g.textAlign = "center";
  for (const s of niceTicks(steps, 4)) g.fillText(String(s), x(s), H - 6);
  g.textAlign = "left";
  g.fillText("step", W - 26, H - B - 3);
  for (const [k, color] of [[1, "#183059"], [2, "#d55e00"]]) {
    g.strokeStyle = color; g.beginPath();
    let started = false;
    for (const p of curve) {
      if (p[k] === null || !isFinite(p[k])) continue;
      started ? g.lineTo(x(p[0]), y(p[k])) : g.moveTo(x(p[0]), y(p[k]));
      started = true;
    }
    g.stroke();
  }
}

function drawConfusion(cm) {
  const box = $("confusion");
  if (!cm || cm.length <= 2) { box.innerHTML = ""; return; }
  let html = "<table><tr><td>true \\ said</td>" + cm.map((_, j) => `<td>${j}</td>`).join("") + "</tr>";
  cm.forEach((row, i) => { html += `<tr><td>${i}</td>` + row.map((v) => `<td>${v}</td>`).join("") + "</tr>"; });
  box.innerHTML = "confusion matrix (test)" + html + "</table>";
}

function grayCanvas(values, side) {
  const c = document.createElement("canvas");
  c.width = side; c.height = side;
  const g = c.getContext("2d"), img = g.createImageData(side, side);
  for (let i = 0; i < side * side; i++) { const v = values[i]; img.data.set([v, v, v, 255], i * 4); }
  g.putImageData(img, 0, 0);
  return c;
}

function showMetrics(h) {
  const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);
  const num = (v) => (v === null || v === undefined ? "–" : v.toFixed(4));
  $("test-acc").textContent = pct(h.test_accuracy);
  $("train-acc").textContent = pct(h.train_accuracy);
  $("test-loss").textContent = num(h.test_loss);
  $("train-loss").textContent = num(h.train_loss);
  $("step").textContent = String(h.step);
  $("epoch").textContent = String(h.epoch);
  const acts = layerActivations(), parts = [];
  (h.dead || []).forEach((v, l) => { if (meta.can_die.includes(acts[l])) parts.push(`layer ${l + 1}: ${(v * 100).toFixed(0)}% dead`); });
  (h.saturated || []).forEach((v, l) => { if (meta.saturates.includes(acts[l])) parts.push(`layer ${l + 1}: ${(v * 100).toFixed(0)}% saturated`); });
  $("health").textContent = parts.join(" · ");
  $("deltas").textContent = h.deltas
    ? `mean |output delta|: o(1 − o)(o − t) = ${h.deltas.sigmoid_mse.toExponential(2)} · o − t = ${h.deltas.cross_entropy.toExponential(2)}`
    : "";
  const point = [h.step, h.train_loss, h.test_loss];
  if (!curve.length || curve[curve.length - 1][0] !== h.step) curve.push(point);
  if (curve.length > 600) curve = curve.filter((_, i) => i % 2 === 0 || i === curve.length - 1);
}

function showDigits(doc) {
  showMetrics({ ...doc.metrics, dead: [], saturated: [] });
  const flat = [];  // the network drawing: its weights as the plane's frames carry them (no maps: no plane)
  doc.weights.forEach((W, l) => { for (const row of W) flat.push(...row); flat.push(...doc.biases[l]); });
  const frame = { header: { ...doc.metrics, layer_sizes: doc.layer_sizes, grid: 0, map: 0 }, params: Float32Array.from(flat), maps: new Uint8Array(0) };
  last = frame;
  paintNetwork(frame);
  if ($("class-legend").childElementCount !== doc.layer_sizes[doc.layer_sizes.length - 1]) classLegend(doc.layer_sizes[doc.layer_sizes.length - 1]);
  drawConfusion(doc.confusion);
  const t = $("templates");
  t.innerHTML = "";
  for (const tpl of doc.templates || []) t.appendChild(grayCanvas(bytes(tpl), 28));
  const d = $("testdigits");
  d.innerHTML = "";
  for (const item of doc.digits || []) {
    const box = document.createElement("div");
    box.appendChild(grayCanvas(bytes(item.image), 28));
    const bars = item.top.map(([c, p]) => `${c}: ${(p * 100).toFixed(0)}%`).join("<br>");
    box.insertAdjacentHTML("beforeend", `<br>true ${item.label}<br>${bars}`);
    d.appendChild(box);
  }
  drawCurves();
}

function decode(buffer) {  // frames.py's layout
  const view = new DataView(buffer), size = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, size)));
  const sizes = header.layer_sizes;
  let count = 0;
  for (let l = 0; l < sizes.length - 1; l++) count += sizes[l] * sizes[l + 1] + sizes[l + 1];
  const params = new Float32Array(buffer, 8 + size, count);
  header.unitCount = sizes.slice(1, -1).reduce((a, b) => a + b, 0);
  return { header, params, maps: new Uint8Array(buffer, 8 + size + 4 * count) };
}

function paint() {  // once per display frame: the newest frame only, then tell the server how many arrived
  requestAnimationFrame(paint);
  if (!pending) {
    if (last && textAt < last.at && performance.now() - textAt > 100) {  // the numbers of the last frame shown
      textAt = performance.now();
      showMetrics(last.header);
      drawCurves();
    }
    return;
  }
  const frame = pending;
  pending = null;
  if (frame.kind === "digits") showDigits(frame);
  else {
    last = frame;
    frame.at = performance.now();
    paintBoundary(frame);
    paintNetwork(frame);
    $("step").textContent = String(frame.header.step);
    const now = performance.now();
    if (now - textAt > 100 || frame.header.done) {  // numbers and the chart ten times a second: enough to read
      textAt = now;
      showMetrics(frame.header);
      drawCurves();
    }
    const kind = frame.header.regression ? "regression" : String(frame.header.classes);
    if ($("class-legend").dataset.kind !== kind) classLegend(frame.header.classes, frame.header.regression);
  }
  if (received) { send({ ack: received }); received = 0; }
}

// ---- the session ---------------------------------------------------------------------------

function connect(id, mine, andPlay) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/api/sessions/${id}/live`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    if (mine !== generation) return ws.close();
    ws.send(JSON.stringify({ speed: Number($("speed").value) }));
    if (andPlay) ws.send(JSON.stringify({ play: true }));
  };
  ws.onmessage = (e) => {
    if (mine !== generation) return;
    if (typeof e.data === "string") {
      const doc = JSON.parse(e.data);
      if (doc.kind === "digits") { pending = doc; received++; return; }
      if ("playing" in doc) setPlaying(doc.playing);
      if (doc.error) showError(`error: ${doc.error}`);
      return;
    }
    pending = decode(e.data);
    received++;
  };
  ws.onclose = () => { if (mine === generation && socket === ws) { socket = null; setPlaying(false); } };
  socket = ws;
}

async function restart(existing) {
  const mine = ++generation;
  const was = playing;
  writeUrl();
  showControls();
  showError("");
  closeWeightEdit();
  if (socket) { socket.close(); socket = null; }
  if (session) api("DELETE", `/api/sessions/${session}`).catch(() => {});
  session = null; curve = []; points = null; pending = null; received = 0; focus = null; last = null; textAt = 0;
  $("focus-label").hidden = true;
  drawPoints();
  let id = existing;
  try {
    if (!id) {
      const doc = ownPoints ? Object.assign(clone(config), { points: ownPoints }) : config;
      id = (await api("POST", "/api/sessions", doc)).id;
    }
    if (mine !== generation) { api("DELETE", `/api/sessions/${id}`).catch(() => {}); return; }
    if (config.data.dataset !== "mnist-sample") points = await api("GET", `/api/sessions/${id}/points`);
  } catch (e) {
    if (mine === generation) { showError(`error: ${e.message}`); setPlaying(false); }
    return;
  }
  if (mine !== generation) return;
  session = id;
  drawPoints();
  $("export").href = `/api/sessions/${id}/export`;
  $("save").href = `/api/sessions/${id}/checkpoint`;
  $("pointscsv").href = `/api/sessions/${id}/points.csv`;
  $("pointscsv").hidden = !ownPoints;
  setPlaying(was);  // a setting changed while it trained: it goes on training, and the button says so
  connect(id, mine, was);
}

async function main() {
  meta = await api("GET", "/api/datasets");
  for (const p of meta.presets) $("preset").append(new Option(p.name, p.id));
  const hide = (new URLSearchParams(location.search).get("hide") || "").split(",");
  for (const part of hide) if (["controls", "data", "header"].includes(part)) document.body.classList.add(`hide-${part}`);
  const start = readUrl();
  config = start.config;
  if (start.preset) choosePreset(start.preset);
  drawScale();
  $("explain").textContent = $("explain").textContent.replace(/\s+/g, " ").trim();
  await datasetButtons();
  bind();
  requestAnimationFrame(paint);
  window.addEventListener("pagehide", () => { if (socket) socket.close(); });  // the server stops training for it
  await restart();
}

main();
