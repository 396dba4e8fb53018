/**
 * Upload page: files picked or dropped are listed, then sent to the upload API in batches
 * with a progress bar, and the combined report is shown. Without JavaScript the same form
 * posts to the page itself and the server renders the report.
 */
import { csrfToken } from "./csrf.js";
import { showReport } from "./report.js";

const BATCH_FILES = 50;
const BATCH_BYTES = 32 * 1024 * 1024;
const MAX_WAIT_S = 120;

const form = document.getElementById("upload-form");
const category = form.querySelector("select[name=category]");
const input = form.querySelector("input[type=file][name=files]");
const zone = document.getElementById("dropzone");
const chosen = document.getElementById("chosen");
const chosenCount = document.getElementById("chosen-count");
const list = document.getElementById("file-list");
const uploadButton = document.getElementById("upload-button");
const clearButton = document.getElementById("clear-button");
const progress = document.getElementById("progress");
const progressBar = document.getElementById("progress-bar");
const progressLabel = document.getElementById("progress-label");
const errorBox = document.getElementById("upload-error");
const result = document.getElementById("result");
const rowsLimit = Number(form.dataset.rowsLimit) || 1000;

let files = [];
let busy = false;

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function totalBytes(some) {
  return some.reduce((sum, file) => sum + file.size, 0);
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function showFiles() {
  list.replaceChildren(
    ...files.map((file) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name;
      const size = document.createElement("span");
      size.className = "size";
      size.textContent = formatBytes(file.size);
      item.append(name, size);
      return item;
    }),
  );
  const noun = files.length === 1 ? "file" : "files";
  chosenCount.textContent = `${files.length} ${noun} ready, ${formatBytes(totalBytes(files))}`;
  chosen.hidden = files.length === 0;
  clearButton.hidden = files.length === 0;
}

function addFiles(incoming) {
  const key = (file) => `${file.name}\n${file.size}\n${file.lastModified}`;
  const seen = new Set(files.map(key));
  for (const file of incoming) {
    if (!seen.has(key(file))) {
      seen.add(key(file));
      files.push(file);
    }
  }
  showError("");
  showFiles();
}

function nextBatch(queue) {
  const batch = [queue[0]];
  let bytes = queue[0].size;
  for (const file of queue.slice(1)) {
    if (batch.length >= BATCH_FILES || bytes + file.size > BATCH_BYTES) break;
    batch.push(file);
    bytes += file.size;
  }
  return batch;
}

function setProgress(fraction) {
  const percent = Math.min(100, Math.round(fraction * 100));
  progressBar.value = percent;
  progressLabel.textContent = `Uploading… ${percent}%`;
}

function setBusy(value) {
  busy = value;
  uploadButton.disabled = value;
  clearButton.disabled = value;
  zone.setAttribute("aria-disabled", String(value));
  progress.hidden = !value;
}

function errorMessage(status, body) {
  if (body && typeof body === "object") {
    if (typeof body.detail === "string") return body.detail;
    const parts = Object.entries(body).map(([field, problems]) => {
      return `${field}: ${[].concat(problems).join(" ")}`;
    });
    if (parts.length) return parts.join(" ");
  }
  if (status === 413) return "The upload is larger than the server accepts; send fewer files.";
  return `The server answered ${status}; nothing more was uploaded. Try again.`;
}

function send(batch, onProgress) {
  const data = new FormData();
  data.append("category", category.value);
  for (const file of batch) data.append("files", file, file.name);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.apiUrl);
    request.responseType = "json";
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRFToken", csrfToken(form));
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      const retryAfter = Number(request.getResponseHeader("Retry-After")) || 0;
      resolve({ status: request.status, body: request.response, retryAfter });
    });
    request.addEventListener("error", () => {
      reject(new Error("The connection failed; check your network and upload again."));
    });
    request.send(data);
  });
}

/** Send the queued files batch by batch, adding each batch's outcome to `report`. */
async function sendQueue(report) {
  const total = totalBytes(files) || 1;
  let sent = 0;
  while (files.length > 0) {
    const batch = nextBatch(files);
    const bytes = totalBytes(batch);
    const { status, body, retryAfter } = await send(batch, (part) => {
      setProgress((sent + part * bytes) / total);
    });
    if (status === 429 && retryAfter > 0 && retryAfter <= MAX_WAIT_S) {
      // Rate-limited: wait as long as the server asks, then send the same batch again.
      progressLabel.textContent = `Waiting ${retryAfter} s for the server's rate limit…`;
      await new Promise((wake) => setTimeout(wake, retryAfter * 1000));
      continue;
    }
    if (status !== 201) throw new Error(errorMessage(status, body));
    report.added += body.added;
    report.duplicates += body.duplicates;
    report.rejected += body.rejected;
    report.items = report.items.concat(body.items);
    sent += bytes;
    files = files.slice(batch.length);
    showFiles();
  }
}

async function upload() {
  if (busy) return;
  if (!category.value) {
    showError("Choose a category first.");
    category.focus();
    return;
  }
  if (files.length === 0) {
    showError("Choose or drop at least one file.");
    zone.focus();
    return;
  }
  const report = { added: 0, duplicates: 0, rejected: 0, items: [] };
  showError("");
  setProgress(0);
  setBusy(true);
  try {
    await sendQueue(report);
  } catch (error) {
    showError(error.message);
  } finally {
    setBusy(false);
  }
  if (report.items.length > 0) {
    showReport(result, report, rowsLimit);
    result.hidden = false;
  }
}

function openPicker() {
  if (!busy) input.click();
}

function hasFiles(event) {
  return Boolean(event.dataTransfer) && Array.from(event.dataTransfer.types).includes("Files");
}

function setUp() {
  // The drop zone stands in for the plain file input, which stays in the form for the picker.
  zone.hidden = false;
  document.getElementById("file-field").classList.add("visually-hidden");
  input.tabIndex = -1;
  input.required = false;

  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  zone.addEventListener("click", openPicker);
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      openPicker();
    } else if (event.key === " ") {
      event.preventDefault();
    }
  });
  zone.addEventListener("keyup", (event) => {
    if (event.key === " ") openPicker();
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      zone.classList.add("dragging");
    });
  }
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    if (!busy && event.dataTransfer) addFiles(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser navigate away to show it.
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => {
      if (hasFiles(event) && !zone.contains(event.target)) event.preventDefault();
    });
  }
  clearButton.addEventListener("click", () => {
    files = [];
    showError("");
    showFiles();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    upload();
  });
}

setUp();
