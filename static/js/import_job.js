/** Import job page: polls the job's API every 1.5 s while it is queued or running. */
import { showReport } from "./report.js";

const POLL_MS = 1500;
const MAX_BACKOFF_MS = 30000;
const ACTIVE = new Set(["queued", "running"]);
const LABELS = { queued: "Queued", running: "Running", done: "Done", failed: "Failed" };

const root = document.getElementById("import-job");
const status = document.getElementById("job-status");
const running = document.getElementById("job-running");
const errorBox = document.getElementById("job-error");
const reportSection = document.getElementById("report");
const rowsLimit = Number(root.dataset.rowsLimit) || 1000;
let failures = 0;

function update(job) {
  status.textContent = LABELS[job.status] || job.status;
  status.className = `badge badge-${job.status}`;
  running.hidden = !ACTIVE.has(job.status);
  errorBox.textContent = job.error || "";
  errorBox.hidden = !job.error;
  if (!ACTIVE.has(job.status)) {
    const report = {
      added: job.added,
      duplicates: job.duplicates,
      rejected: job.rejected,
      items: job.report,
    };
    showReport(reportSection, report, rowsLimit);
    reportSection.hidden = false;
  }
}

async function poll() {
  let job;
  try {
    const response = await fetch(root.dataset.apiUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(`The server answered ${response.status}.`);
    job = await response.json();
  } catch (error) {
    failures += 1;
    running.textContent = `Lost contact with the server (${error.message}); retrying…`;
    setTimeout(poll, Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS));
    return;
  }
  if (failures > 0) {
    failures = 0;
    running.textContent = "This page updates by itself while the job runs.";
  }
  update(job);
  if (ACTIVE.has(job.status)) setTimeout(poll, POLL_MS);
}

if (ACTIVE.has(root.dataset.status)) setTimeout(poll, POLL_MS);
