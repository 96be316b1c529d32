// mlpcli playground: the page draws; the server trains with mlpcli's own nn/ and training loop.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
const CHOICES = {
  lr: [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10],
  batch: [1, 5, 10, 20, 50, 100],
  l2: [0, 0.0001, 0.001, 0.01, 0.1],
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

let meta = null;           // /api/datasets
let config = null;         // the session's config document (also in the URL)
let session = null;        // its id
let playing = false;
let busy = false;
let curve = [];            // [{step, train_loss, test_loss}]
let points = null;         // plane points of the session
let lastFrame = null;
let ownPoints = null;      // points uploaded or clicked: {xy, label} (not in the URL: they can be many)

function clone(x) { return JSON.parse(JSON.stringify(x)); }

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

function readUrl() {
  try {
    if (location.hash.length > 1) return JSON.parse(decodeURIComponent(location.hash.slice(1)));
  } catch (e) { /* a bad link: the defaults */ }
  return clone(DEFAULT);
}

function writeUrl() {
  window.history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(config)));
}

function bytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
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
  fill($("l2"), CHOICES.l2, o.weight_decay || 0);
  fill($("dropout"), CHOICES.dropout, m.dropout || 0);
  fill($("activation"), meta.activations, Array.isArray(m.activation) ? m.activation[0] : m.activation);
  fill($("points"), CHOICES.points, d.points);
  fill($("ratio"), CHOICES.ratio, d.test_ratio, (v) => `${Math.round(v * 100)}%`);
  $("head").value = m.output === "sigmoid" ? "sigmoid" : "softmax";
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
  $("features").parentElement.querySelectorAll("h3")[0].hidden = digits;
  $("features").hidden = digits;
  $("digits-view").hidden = !digits;
  $("boundary").hidden = digits;
}

function bind() {
  const set = (id, fn) => { $(id).onchange = () => { fn($(id).value); restart(); }; };
  set("batch", (v) => { config.train.batch_size = Number(v); });
  set("optimizer", (v) => { config.optimizer.name = v; });
  set("schedule", (v) => { config.schedule.name = v; });
  set("l2", (v) => { config.optimizer.weight_decay = Number(v); });
  set("dropout", (v) => { config.model.dropout = Number(v); });
  set("activation", (v) => { config.model.activation = v; });
  set("points", (v) => { config.data.points = Number(v); });
  set("ratio", (v) => { config.data.test_ratio = Number(v); });
  set("head", (v) => {
    config.model.output = v;
    config.loss = v === "sigmoid" ? "mse" : "cross_entropy";
  });
  $("lr").onchange = async () => {  // the rate changes while it trains
    config.optimizer.lr = Number($("lr").value);
    writeUrl();
    if (session) await api("POST", `/api/sessions/${session}/rate`, { lr: config.optimizer.lr });
  };
  $("noise").oninput = () => { $("noise-v").textContent = $("noise").value; };
  $("noise").onchange = () => { config.data.noise = Number($("noise").value) / 100; restart(); };
  $("speed").oninput = () => { $("speed-v").textContent = $("speed").value; };
  $("play").onclick = () => { playing = !playing; $("play").textContent = playing ? "❚❚ pause" : "▶ play"; if (playing) loop(); };
  $("stepbtn").onclick = () => advance(1);
  $("reset").onclick = () => restart();
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
    const rows = (await file.text()).split(/\r?\n/).slice(1).map((r) => r.split(",").map(Number)).filter((r) => r.length >= 3 && r.every(isFinite));
    ownPoints = { xy: rows.map((r) => [r[0], r[1]]), label: rows.map((r) => r[2]) };
    restart();
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
    const p = meta.presets[Number($("preset").value)];
    if (!p) return;
    config = Object.assign(clone(DEFAULT), clone(p.config));
    for (const k of ["data", "model", "optimizer", "schedule", "train"]) config[k] = Object.assign(clone(DEFAULT[k]), p.config[k] || {});
    $("watch").textContent = p.watch;
    restart();
  };
}

async function datasetButtons() {
  const box = $("datasets");
  for (const name of meta.datasets) {
    const b = document.createElement("button");
    b.dataset.name = name;
    const c = document.createElement("canvas");
    c.width = 60; c.height = 60;
    b.append(c, name === "mnist-sample" ? "digits" : name);
    b.onclick = () => {
      ownPoints = null;
      config.data.dataset = name;
      if (name === "mnist-sample") { config.model.hidden = [32]; config.model.activation = "relu"; config.train.batch_size = 50; }
      else if (config.model.hidden.length === 1 && config.model.hidden[0] === 32) config.model.hidden = [8, 8];
      restart();
    };
    box.appendChild(b);
    if (name === "mnist-sample") { drawDigitIcon(c); continue; }
    api("GET", `/api/preview?dataset=${name}`).then((p) => drawPoints(c, p, 2)).catch(() => {});
  }
}

function drawDigitIcon(c) {
  const g = c.getContext("2d");
  g.fillStyle = "#000"; g.fillRect(0, 0, 60, 60);
  g.strokeStyle = "#fff"; g.lineWidth = 6; g.beginPath(); g.moveTo(20, 12); g.lineTo(42, 12); g.lineTo(26, 50); g.stroke();
}

// ---- drawing -------------------------------------------------------------------------------

function toCanvas(c, bounds, x, y) {
  const [x0, x1, y0, y1] = bounds;
  return [((x - x0) / (x1 - x0)) * c.width, c.height - ((y - y0) / (y1 - y0)) * c.height];
}

function drawPoints(c, p, r, outlined = false) {
  const g = c.getContext("2d");
  p.xy.forEach(([x, y], i) => {
    const [px, py] = toCanvas(c, p.bounds, x, y);
    const [R, G, B] = COLORS[p.label[i] % 10];
    g.beginPath(); g.arc(px, py, r, 0, 2 * Math.PI);
    if (outlined) { g.strokeStyle = `rgb(${R},${G},${B})`; g.lineWidth = 1.5; g.stroke(); }
    else { g.fillStyle = `rgb(${R},${G},${B})`; g.fill(); g.strokeStyle = "#fff"; g.lineWidth = 0.5; g.stroke(); }
  });
}

function heat(canvas, winner, confidence, size) {
  const g = canvas.getContext("2d");
  const img = g.createImageData(size, size);
  for (let r = 0; r < size; r++) {
    for (let col = 0; col < size; col++) {
      const src = r * size + col, dst = ((size - 1 - r) * size + col) * 4;  // row 0 is the bottom of the plane
      const [R, G, B] = COLORS[winner[src] % 10];
      const a = confidence[src] / 255;
      img.data[dst] = 255 - (255 - R) * a; img.data[dst + 1] = 255 - (255 - G) * a; img.data[dst + 2] = 255 - (255 - B) * a;
      img.data[dst + 3] = 255;
    }
  }
  const tmp = document.createElement("canvas");
  tmp.width = size; tmp.height = size;
  tmp.getContext("2d").putImageData(img, 0, 0);
  g.imageSmoothingEnabled = true;
  g.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

function grayCanvas(values, side, w = 42) {
  const c = document.createElement("canvas");
  c.width = side; c.height = side;
  const g = c.getContext("2d"), img = g.createImageData(side, side);
  for (let i = 0; i < side * side; i++) { const v = values[i]; img.data.set([v, v, v, 255], i * 4); }
  g.putImageData(img, 0, 0);
  c.style.width = `${w}px`; c.style.height = `${w}px`;
  return c;
}

function drawDiagram(frame) {
  const svg = $("diagram");
  const W = svg.clientWidth || 600, H = 430, sizes = frame.layer_sizes;
  const names = config.data.dataset === "mnist-sample" ? ["pixels"] : config.data.features;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.innerHTML = "";
  const cols = sizes.length, node = 26;
  const pos = sizes.map((n, l) => {
    const shown = Math.min(n, 16);
    return Array.from({ length: shown }, (_, i) => [30 + (l * (W - 60)) / (cols - 1), 20 + ((i + 0.5) * (H - 40)) / shown]);
  });
  const ns = "http://www.w3.org/2000/svg";
  frame.weights.forEach((Wl, l) => {
    const max = Math.max(1e-9, ...Wl.flat().map(Math.abs));
    pos[l].forEach(([x0, y0], i) => pos[l + 1].forEach(([x1, y1], j) => {
      const w = Wl[i] ? Wl[i][j] : 0;
      const e = document.createElementNS(ns, "line");
      e.setAttribute("x1", x0 + node / 2); e.setAttribute("y1", y0); e.setAttribute("x2", x1 - node / 2); e.setAttribute("y2", y1);
      e.setAttribute("stroke", w >= 0 ? "#1f77b4" : "#ff7f0e");
      e.setAttribute("stroke-width", 0.3 + 4 * Math.abs(w) / max);
      e.setAttribute("opacity", 0.75);
      const t = document.createElementNS(ns, "title");
      t.textContent = `W${l + 1}[${j}][${i}] = ${w.toFixed(4)} (click to change)`;
      e.appendChild(t);
      e.style.cursor = "pointer";
      e.onclick = async () => {
        const v = prompt(`new value of W${l + 1}[${j}][${i}]`, w.toFixed(4));
        if (v === null || !isFinite(Number(v))) return;
        await api("POST", `/api/sessions/${session}/weight`, { layer: l + 1, i, j, value: Number(v) });
        await refresh();
      };
      svg.appendChild(e);
    }));
  });
  pos.forEach((col, l) => col.forEach(([x, y], i) => {
    const g = document.createElementNS(ns, "g");
    const hidden = l > 0 && l < sizes.length - 1;
    if (hidden && frame.neurons && frame.neurons[l - 1] && frame.neurons[l - 1][i]) {
      const n = frame.neurons[l - 1][i];
      const v = bytes(n.map), size = frame.grid;
      const c = document.createElement("canvas");
      c.width = size; c.height = size;
      const ctx = c.getContext("2d"), img = ctx.createImageData(size, size);
      for (let r = 0; r < size; r++) for (let q = 0; q < size; q++) {
        const s = v[r * size + q], d = ((size - 1 - r) * size + q) * 4;
        img.data.set([255 - (255 - 31) * s / 255, 255 - (255 - 119) * s / 255, 255 - (255 - 180) * s / 255, 255], d);
      }
      ctx.putImageData(img, 0, 0);
      const im = document.createElementNS(ns, "image");
      im.setAttribute("href", c.toDataURL());
      im.setAttribute("x", x - node / 2); im.setAttribute("y", y - node / 2);
      im.setAttribute("width", node); im.setAttribute("height", node);
      g.appendChild(im);
    }
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", x - node / 2); r.setAttribute("y", y - node / 2); r.setAttribute("width", node); r.setAttribute("height", node);
    r.setAttribute("fill", hidden ? "none" : "#eef1f6"); r.setAttribute("stroke", "#183059");
    g.appendChild(r);
    if (l === 0 || l === sizes.length - 1) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", l === 0 ? x - node / 2 - 2 : x + node / 2 + 2); t.setAttribute("y", y + 4);
      t.setAttribute("text-anchor", l === 0 ? "end" : "start"); t.setAttribute("font-size", "10");
      t.textContent = l === 0 ? (names[i] || "") : String(i);
      g.appendChild(t);
    }
    g.onmouseenter = () => explain(frame, l, i);
    svg.appendChild(g);
  }));
}

function explain(frame, l, i) {
  if (l === 0) { $("explain").textContent = `input ${i}: ${config.data.features[i] || "pixel " + i}, standardized`; return; }
  const W = frame.weights[l - 1], b = frame.biases[l - 1][i];
  const ws = W.map((row) => row[i]);
  const last = l === frame.layer_sizes.length - 1;
  const f = last ? config.model.output : layerActivations()[l - 1];
  const terms = ws.slice(0, 8).map((w, k) => `${w.toFixed(3)}·a${k}`).join(" + ") + (ws.length > 8 ? " + …" : "");
  let text = `neuron ${i} of layer ${l}\nz = W a + b = ${terms} + ${b.toFixed(3)}\na = ${f}(z)`;
  if (last && config.loss === "mse") text += "\ndelta = o(1 − o)(o − t)   (squared error through the sigmoid: the lecture's delta rule)";
  else if (last) text += "\ndelta = o − t   (softmax with cross-entropy)";
  else text += `\ndelta = (Wᵀ delta_next) · ${f}'(z)`;
  if (!last && frame.neurons) {
    const n = frame.neurons[l - 1][i];
    text += `\noutput over the plane: from ${n.min.toFixed(3)} to ${n.max.toFixed(3)}`;
  }
  $("explain").textContent = text;
}

function drawCurves() {
  const c = $("curves"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (curve.length < 2) return;
  const vals = curve.flatMap((h) => [h.train_loss, h.test_loss]).filter((v) => v !== null && isFinite(v));
  const max = Math.max(...vals, 1e-6);
  for (const [key, color] of [["train_loss", "#183059"], ["test_loss", "#ff7f0e"]]) {
    g.strokeStyle = color; g.beginPath();
    curve.forEach((h, i) => {
      const x = (i / (curve.length - 1)) * c.width, y = c.height - (h[key] / max) * (c.height - 4);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
  g.fillStyle = "#183059"; g.fillText("training loss", 6, 12); g.fillStyle = "#ff7f0e"; g.fillText("test loss", 90, 12);
}

function drawConfusion(cm) {
  const box = $("confusion");
  if (!cm || cm.length <= 2) { box.innerHTML = ""; return; }
  let html = "<table><tr><td>true \\ said</td>" + cm.map((_, j) => `<td>${j}</td>`).join("") + "</tr>";
  cm.forEach((row, i) => { html += `<tr><td>${i}</td>` + row.map((v) => `<td>${v}</td>`).join("") + "</tr>"; });
  box.innerHTML = "confusion matrix (test)" + html + "</table>";
}

function drawDigits(frame) {
  const t = $("templates");
  t.innerHTML = "";
  for (const tpl of frame.templates || []) t.appendChild(grayCanvas(bytes(tpl), 28));
  const d = $("testdigits");
  d.innerHTML = "";
  for (const item of frame.digits || []) {
    const box = document.createElement("div");
    box.appendChild(grayCanvas(bytes(item.image), 28));
    const bars = item.top.map(([c, p]) => `${c}: ${(p * 100).toFixed(0)}%`).join("<br>");
    box.insertAdjacentHTML("beforeend", `<br>true ${item.label}<br>${bars}`);
    d.appendChild(box);
  }
}

function show(frame) {
  lastFrame = frame;
  const m = frame.metrics;
  const pct = (v) => (v === null ? "–" : `${(v * 100).toFixed(1)}%`);
  $("test-acc").textContent = pct(m.test_accuracy);
  $("train-acc").textContent = pct(m.train_accuracy);
  $("test-loss").textContent = m.test_loss === null ? "–" : m.test_loss.toFixed(4);
  $("train-loss").textContent = m.train_loss.toFixed(4);
  $("epoch").textContent = `· epoch ${m.epoch}, step ${m.step}`;
  const dead = Object.entries(frame.health).filter(([k]) => k.startsWith("dead_")).map(([k, v]) => `layer ${k.slice(5)}: ${(v * 100).toFixed(0)}% dead`);
  const sat = Object.entries(frame.health).filter(([k]) => k.startsWith("saturated_")).map(([k, v]) => `layer ${k.slice(10)}: ${(v * 100).toFixed(0)}% saturated`);
  $("health").textContent = [...dead, ...sat].join(" · ");
  drawDiagram(frame);
  drawCurves();
  drawConfusion(frame.confusion);
  if (frame.templates) { drawDigits(frame); return; }
  const c = $("boundary");
  heat(c, bytes(frame.boundary.winner), bytes(frame.boundary.confidence), frame.grid);
  if (points) {
    drawPoints(c, { xy: points.train.xy, label: points.train.label, bounds: points.bounds }, 3);
    drawPoints(c, { xy: points.test.xy, label: points.test.label, bounds: points.bounds }, 3, true);
  }
}

// ---- the session ---------------------------------------------------------------------------

async function restart() {
  const was = playing;
  playing = false;
  writeUrl();
  showControls();
  if (session) api("DELETE", `/api/sessions/${session}`).catch(() => {});
  session = null; curve = []; points = null;
  try {
    const doc = ownPoints ? Object.assign(clone(config), { points: ownPoints }) : config;
    session = (await api("POST", "/api/sessions", doc)).id;
  } catch (e) {
    $("watch").textContent = `error: ${e.message}`;
    return;
  }
  if (config.data.dataset !== "mnist-sample") points = await api("GET", `/api/sessions/${session}/points`);
  $("export").href = `/api/sessions/${session}/export`;
  $("save").href = `/api/sessions/${session}/checkpoint`;
  $("pointscsv").href = `/api/sessions/${session}/points.csv`;
  $("pointscsv").hidden = !ownPoints;
  await refresh();
  if (was) { playing = true; loop(); }
}

async function refresh() {
  const frame = await api("GET", `/api/sessions/${session}/frame?grid=64`);
  show(frame);
}

async function advance(steps) {
  if (!session || busy) return;
  busy = true;
  try {
    const m = await api("POST", `/api/sessions/${session}/step`, { steps });
    curve.push(m);
    if (curve.length > 400) curve = curve.filter((_, i) => i % 2 === 0);
    await refresh();
  } catch (e) {
    $("watch").textContent = `error: ${e.message}`;
    playing = false;
  } finally {
    busy = false;
  }
}

async function loop() {
  while (playing) {
    await advance(Number($("speed").value));
    await new Promise((r) => setTimeout(r, 0));
  }
  $("play").textContent = "▶ play";
}

async function main() {
  meta = await api("GET", "/api/datasets");
  meta.presets.forEach((p, i) => {
    const o = document.createElement("option");
    o.value = String(i); o.textContent = p.name;
    $("preset").appendChild(o);
  });
  config = readUrl();
  for (const k of ["data", "model", "optimizer", "schedule", "train"]) config[k] = Object.assign(clone(DEFAULT[k]), config[k] || {});
  config.loss = config.loss || DEFAULT.loss;
  await datasetButtons();
  bind();
  await restart();
}

main();
