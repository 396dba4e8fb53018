/** One training run: learning curves and per-class error as Chart.js charts. While the run is
 * queued or running, its API is polled every 2 s and the curves, the status and the epoch
 * table follow it without a reload; when it ends, the page reloads once to show the results
 * (confusion matrix, most-wrong images) that only a finished run has. The confusion matrix is
 * built here from the run's JSON rather than on the server: 100 classes make 10,000 cells. */
import { ACTIVE, STATUS_LABELS } from "../statuses.js";
import { COLOURS, formatPercent, lineLegend, pageData } from "./charts.js";

const POLL_MS = 2000;
const MAX_CLASSES = 25;

const section = document.getElementById("run");
let run = pageData("run-data");

function percent(value) {
  return value === null ? null : value * 100;
}

function bestEpoch(epochs) {
  let best = null;
  for (const epoch of epochs) {
    if (best === null || epoch.top1_error < best.top1_error) best = epoch;
  }
  return best ? best.epoch : null;
}

function series(label, colour, dash, key, scale) {
  return {
    label,
    borderColor: colour,
    backgroundColor: colour,
    borderDash: dash,
    spanGaps: false,
    data: [],
    key,
    scale,
  };
}

function lineChart(canvasId, datasets, yTitle) {
  const canvas = document.getElementById(canvasId);
  // eslint-disable-next-line no-undef
  return new Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      parsing: false,
      scales: {
        x: { type: "linear", ticks: { precision: 0 }, title: { display: true, text: "epoch" } },
        y: { beginAtZero: true, title: { display: true, text: yTitle } },
      },
      plugins: { legend: lineLegend() },
    },
  });
}

const errors = lineChart(
  "chart-errors",
  [
    series("top-1 error", COLOURS.blue, [], "top1_error", percent),
    series("top-5 error", COLOURS.vermilion, [6, 4], "top5_error", percent),
  ],
  "validation error (%)",
);
const losses = lineChart(
  "chart-losses",
  [
    series("training loss", COLOURS.blue, [], "train_loss", (v) => v),
    series("validation loss", COLOURS.vermilion, [6, 4], "val_loss", (v) => v),
  ],
  "cross-entropy loss per image",
);

function drawCurves() {
  const best = run.best_epoch ?? bestEpoch(run.epochs);
  for (const chart of [errors, losses]) {
    for (const dataset of chart.data.datasets) {
      dataset.data = run.epochs.map((e) => ({ x: e.epoch, y: dataset.scale(e[dataset.key]) }));
      dataset.pointRadius = run.epochs.map((e) => (e.epoch === best ? 7 : 3));
      dataset.pointStyle = run.epochs.map((e) => (e.epoch === best ? "rectRot" : "circle"));
    }
    chart.update();
  }
}

function cell(text, numeric) {
  const td = document.createElement("td");
  if (numeric) td.className = "num";
  td.textContent = text;
  return td;
}

function fixed(value, digits) {
  return value === null ? "—" : value.toFixed(digits);
}

function drawTable() {
  const rows = run.epochs.map((e) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = String(e.epoch);
    tr.append(
      th,
      cell(fixed(e.train_loss, 4), true),
      cell(fixed(e.val_loss, 4), true),
      cell(formatPercent(e.top1_error * 100), true),
      cell(formatPercent(e.top5_error * 100), true),
      cell(e.images_per_second.toFixed(0), true),
      cell(e.seconds.toFixed(1), true),
    );
    return tr;
  });
  document.querySelector("[data-role=epoch-rows]").replaceChildren(...rows);
}

function drawStatus() {
  const badge = section.querySelector("[data-role=status]");
  badge.textContent = STATUS_LABELS[run.status] || run.status;
  badge.className = `badge badge-${run.status}`;
  const planned = run.params.epochs ?? "?";
  section.querySelector("[data-role=epochs-done]").textContent =
    `${run.epochs.length} of ${planned}`;
  section.querySelector("[data-role=device]").textContent = run.device || "—";
  const some = run.epochs.length > 0;
  for (const role of ["curves", "epoch-details"]) {
    document.querySelector(`[data-role=${role}]`).hidden = !some;
  }
  document.querySelector("[data-role=no-epochs]").hidden = some;
}

function drawClasses() {
  const canvas = document.getElementById("chart-classes");
  if (!canvas || !run.per_class_error) return;
  const rows = run.per_class_error
    .filter((c) => c.error !== null)
    .sort((a, b) => b.error - a.error || a.name.localeCompare(b.name))
    .slice(0, MAX_CLASSES);
  document.querySelector("[data-role=class-box]").style.height = `${rows.length * 26 + 70}px`;
  // eslint-disable-next-line no-undef
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map((c) => c.name),
      datasets: [{ label: "error", backgroundColor: COLOURS.blue, data: rows.map((c) => c.error * 100) }],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { display: false } },
      scales: {
        x: { min: 0, max: 100, title: { display: true, text: "validation error (%)" } },
      },
    },
  });
}

const HEAT_LEVELS = 8; // as training/services/dashboards.py; the CSS has heat-0 .. heat-8

/** The confusion matrix as a table whose cells are shaded by their share of the row. */
function drawConfusion() {
  const table = document.getElementById("confusion");
  if (!table || !run.confusion) return;
  const names = run.classes;
  const head = document.createElement("thead");
  const headRow = head.insertRow();
  const corner = document.createElement("th");
  corner.scope = "col";
  corner.textContent = "True \\ predicted";
  headRow.append(corner);
  for (const name of names) {
    const th = document.createElement("th");
    th.scope = "col";
    th.className = "num";
    th.textContent = name;
    headRow.append(th);
  }
  const body = document.createElement("tbody");
  run.confusion.forEach((counts, i) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = names[i];
    row.append(th);
    const total = counts.reduce((sum, n) => sum + n, 0);
    counts.forEach((count, j) => {
      const share = total ? count / total : 0;
      const td = row.insertCell();
      td.className = `num heat-${Math.round(share * HEAT_LEVELS)}${i === j ? " confusion-hit" : ""}`;
      td.dataset.count = String(count);
      td.title = `${names[i]} as ${names[j]}: ${count} of ${total} (${Math.round(share * 100)}%)`;
      td.textContent = String(count);
    });
  });
  table.append(head, body);
}

/** What the page shows of a run: a retry rewrites epochs under the same numbers. */
function shown(r) {
  return JSON.stringify([r.status, r.attempts, r.device, r.epochs]);
}

function stopPolling(message) {
  const hint = document.querySelector("[data-role=live-hint]");
  if (hint) hint.textContent = message;
}

async function poll() {
  let response;
  try {
    response = await fetch(section.dataset.apiUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
  } catch {
    setTimeout(poll, POLL_MS * 4); // offline for a moment: try again, less often
    return;
  }
  if ([401, 403, 404].includes(response.status)) {
    stopPolling(
      response.status === 404
        ? "This run is gone; the page no longer follows it."
        : "You are signed out; sign in again and reload to follow the run.",
    );
    return;
  }
  if (!response.ok) {
    setTimeout(poll, POLL_MS * 4);
    return;
  }
  const next = await response.json();
  const changed = shown(next) !== shown(run);
  run = next;
  if (changed) {
    drawCurves();
    drawTable();
    drawStatus();
  }
  if (!ACTIVE.has(run.status)) {
    window.location.reload();
    return;
  }
  setTimeout(poll, POLL_MS);
}

drawCurves();
drawClasses();
drawConfusion();
if (section.dataset.live === "true") setTimeout(poll, POLL_MS);
