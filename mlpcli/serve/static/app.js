// The drawing page: draw on #pad, then the server's answer fills the bars, the 28x28 it saw and the activations.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const statusLine = document.getElementById("status");
let classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
let drawing = false;
let last = null;
let timer = null;
let inFlight = 0;

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function point(event) {
  const r = pad.getBoundingClientRect();
  return { x: (event.clientX - r.left) * (pad.width / r.width), y: (event.clientY - r.top) * (pad.height / r.height) };
}

function stroke(from, to) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 22;  // about MNIST's stroke width once scaled to 28x28
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  last = point(e);
  stroke(last, last);
  clearTimeout(timer);
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
});
function endStroke() {
  if (!drawing) return;
  drawing = false;
  clearTimeout(timer);
  timer = setTimeout(() => pad.toBlob((blob) => send(blob, "drawing.png"), "image/png"), 150);  // debounced
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);
pad.addEventListener("pointerleave", endStroke);

document.getElementById("clear").addEventListener("click", () => {
  clearPad();
  reset();
  statusLine.textContent = "Draw a digit from 0 to 9.";
  statusLine.classList.remove("error");
});

document.getElementById("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) send(file, file.name);
  e.target.value = "";
});

async function send(blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  inFlight += 1;
  statusLine.textContent = "Thinking...";
  statusLine.classList.remove("error");
  try {
    const response = await fetch("/api/predict", { method: "POST", body: form });
    const doc = await response.json();
    if (!response.ok) throw new Error(doc.error || response.statusText);
    show(doc);
    statusLine.textContent = `${name}: ${doc.label} with ${(doc.confidence * 100).toFixed(1)} % confidence.`;
  } catch (err) {
    reset();
    statusLine.textContent = String(err.message || err);
    statusLine.classList.add("error");
  } finally {
    inFlight -= 1;
    document.body.dataset.busy = inFlight > 0 ? "yes" : "no";
  }
}

function buildBars() {
  const list = document.getElementById("bars");
  list.innerHTML = "";
  classes.forEach((label, k) => {
    const li = document.createElement("li");
    li.dataset.class = String(k);
    li.innerHTML = `<span class="label"></span><span class="track"><span class="bar"></span></span><span class="p">-</span>`;
    li.querySelector(".label").textContent = label;
    list.appendChild(li);
  });
}

function reset() {
  document.getElementById("prediction").textContent = "?";
  document.getElementById("confidence").textContent = "";
  document.querySelectorAll("#bars li").forEach((li) => {
    li.classList.remove("top");
    li.querySelector(".bar").style.width = "0";
    li.querySelector(".p").textContent = "-";
    li.dataset.p = "";
  });
}

function gray(canvas, rows, colorOf) {
  const n = rows.length;
  const c = canvas.getContext("2d");
  const img = c.createImageData(n, rows[0].length);
  rows.forEach((row, y) => row.forEach((v, x) => {
    const [r, g, b] = colorOf(v);
    const i = (y * row.length + x) * 4;
    img.data[i] = r; img.data[i + 1] = g; img.data[i + 2] = b; img.data[i + 3] = 255;
  }));
  const small = document.createElement("canvas");
  small.width = rows[0].length; small.height = n;
  small.getContext("2d").putImageData(img, 0, 0);
  c.imageSmoothingEnabled = false;
  c.clearRect(0, 0, canvas.width, canvas.height);
  c.drawImage(small, 0, 0, canvas.width, canvas.height);
}

const ink = (v) => { const g = Math.round(255 * Math.max(0, Math.min(1, v))); return [g, g, g]; };
const diverging = (v) => v >= 0 ? [Math.round(255 - 170 * v), Math.round(255 - 110 * v), 255]
                                : [255, Math.round(255 + 170 * v), Math.round(255 + 190 * v)];

function show(doc) {
  document.getElementById("prediction").textContent = doc.label;
  document.getElementById("confidence").textContent = `${(doc.confidence * 100).toFixed(1)} %`;
  document.querySelectorAll("#bars li").forEach((li, k) => {
    const p = doc.probabilities[k];
    li.dataset.p = p.toFixed(6);
    li.classList.toggle("top", k === doc.prediction);
    li.querySelector(".bar").style.width = `${(100 * p).toFixed(1)}%`;
    li.querySelector(".p").textContent = `${(100 * p).toFixed(1)} %`;
  });
  gray(document.getElementById("seen"), doc.image, ink);
  const layers = document.getElementById("layers");
  layers.innerHTML = "";
  doc.activations.forEach((values, l) => {
    const peak = Math.max(1e-9, ...values.map(Math.abs));
    const box = document.createElement("div");
    box.className = "layer";
    box.innerHTML = `<div class="name">hidden layer ${l + 1}: ${values.length} units</div><div class="cells"></div>`;
    const cells = box.querySelector(".cells");
    values.forEach((v) => {
      const cell = document.createElement("span");
      cell.className = "cell";
      const t = Math.abs(v) / peak;
      cell.style.background = v >= 0 ? `rgba(94, 177, 255, ${0.08 + 0.92 * t})` : `rgba(255, 138, 128, ${0.08 + 0.92 * t})`;
      cell.title = v.toFixed(3);
      cells.appendChild(cell);
    });
    layers.appendChild(box);
  });
  const units = document.getElementById("units");
  units.innerHTML = "";
  (doc.top_units || []).forEach((u) => {
    const box = document.createElement("div");
    box.className = "unit";
    const canvas = document.createElement("canvas");
    canvas.width = 70; canvas.height = 70;
    box.appendChild(canvas);
    box.appendChild(document.createTextNode(`unit ${u.unit}: ${u.activation.toFixed(2)}`));
    units.appendChild(box);
    gray(canvas, u.template, diverging);
  });
}

async function loadModel() {
  try {
    const m = await (await fetch("/api/model")).json();
    classes = m.classes;
    const acc = m.test_accuracy == null ? "no test accuracy recorded" : `test accuracy ${(m.test_accuracy * 100).toFixed(2)} %`;
    const line = document.getElementById("model");
    const name = document.createElement("b");
    name.textContent = m.name;  // text, never HTML: a checkpoint's metadata is not trusted
    line.replaceChildren(name, document.createTextNode(
      ` on ${m.dataset}: ${m.layer_sizes.join("-")} ${m.activation}, ${m.parameters.toLocaleString()} parameters, ${acc}`));
  } catch (err) {
    document.getElementById("model").textContent = "could not read the model";
  }
  buildBars();
  reset();
}

clearPad();
loadModel();
