/** Exports page: polls each queued or running export every 1.5 s and updates its row. */
import { ACTIVE, STATUS_LABELS } from "./statuses.js";

const POLL_MS = 1500;

function sizeText(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function update(row, exp) {
  const status = row.querySelector("[data-role=status]");
  status.textContent = STATUS_LABELS[exp.status] || exp.status;
  status.className = `badge badge-${exp.status}`;
  row.querySelector("[data-role=progress]").value = exp.progress;
  row.querySelector("[data-role=written]").textContent = String(exp.images_written);
  row.querySelector("[data-role=size]").textContent = sizeText(exp.byte_size);
  row.dataset.status = exp.status;
  if (!ACTIVE.has(exp.status)) {
    const actions = row.querySelector("[data-role=actions]");
    actions.replaceChildren();
    if (exp.download_url) {
      const link = document.createElement("a");
      link.href = exp.download_url;
      link.textContent = "Download";
      link.setAttribute("download", "");
      actions.append(link);
    }
    if (exp.error) {
      const error = document.createElement("span");
      error.className = "form-errors";
      error.textContent = exp.error;
      status.after(document.createElement("br"), error);
    }
  }
}

async function poll(row) {
  try {
    const response = await fetch(row.dataset.apiUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(String(response.status));
    update(row, await response.json());
  } catch {
    setTimeout(() => poll(row), POLL_MS * 4);
    return;
  }
  if (ACTIVE.has(row.dataset.status)) setTimeout(() => poll(row), POLL_MS);
}

for (const row of document.querySelectorAll("#exports tr[data-export]")) {
  if (ACTIVE.has(row.dataset.status)) setTimeout(() => poll(row), POLL_MS);
}
