/**
 * The labeling page: asks the task API for a task, shows it by kind, and prefetches the next
 * one as soon as it is shown, so that after an answer the next task appears at once. Where
 * answers bring the next task with them (``data-answer-next``), the one an answer brings is
 * the prefetch for the task shown after it: one request per task.
 */
import { TaskApi } from "./api.js";
import { renderChoice } from "./choice.js";
import { el } from "./dom.js";
import { renderDraw } from "./draw.js";
import { renderGrid } from "./grid.js";

const RENDERERS = {
  verify: renderChoice,
  grid: renderGrid,
  draw: renderDraw,
  verify_box: renderChoice,
  coverage: renderChoice,
};
const NOT_SHORTCUTS = "input, textarea, select, [contenteditable]";

const root = document.getElementById("label-app");
const api = new TaskApi(
  root.dataset.nextUrl,
  root.dataset.answerUrl,
  root.dataset.kind,
  root.dataset.answerNext,
);
const $ = (id) => document.getElementById(id);
const view = {
  prompt: $("task-prompt"),
  notice: $("label-notice"),
  work: $("label-work"),
  body: $("task-body"),
  actions: $("task-actions"),
  categoryName: $("category-name"),
  definition: $("category-definition"),
  examples: $("examples"),
  legend: $("key-legend"),
  states: { empty: $("state-empty"), paused: $("state-paused"), error: $("state-error") },
};

let current = null; // the task shown
let controller = null; // its renderer: { legend, handleKey }
let upcoming = null; // promise of the prefetched result
let busy = true;

function notify(message, tone = "info") {
  view.notice.textContent = message;
  view.notice.className = `label-notice label-notice-${tone}`;
  view.notice.hidden = !message;
}

function showState(name) {
  view.work.hidden = name !== "work";
  for (const [key, section] of Object.entries(view.states)) section.hidden = key !== name;
}

function setBusy(value) {
  busy = value;
  root.classList.toggle("is-busy", value);
  for (const control of view.work.querySelectorAll("button")) {
    if (value) {
      control.dataset.wasDisabled = String(control.disabled);
      control.disabled = true;
    } else if (control.dataset.wasDisabled) {
      control.disabled = control.dataset.wasDisabled === "true";
      delete control.dataset.wasDisabled;
    }
  }
}

function showLegend(legend) {
  view.legend.replaceChildren(
    ...legend.map(([keys, text]) => {
      const row = el("div", "key-row");
      const term = el("dt");
      keys.forEach((key, index) => {
        if (index) term.append(" / ");
        term.append(el("kbd", "", key));
      });
      row.append(term, el("dd", "", text));
      return row;
    }),
  );
}

function showCategory(task) {
  view.categoryName.textContent = task.category.name;
  view.definition.textContent = task.category.definition || "No definition given.";
  view.examples.replaceChildren(
    ...task.examples.map((url, index) => {
      const image = el("img", "example");
      image.src = url;
      image.alt = `Example ${index + 1} of a ${task.category.name}`;
      return image;
    }),
  );
  view.examples.hidden = task.examples.length === 0;
}

function preload(task) {
  for (const url of [...task.items.map((item) => item.image_url), ...task.examples]) {
    new Image().src = url;
  }
}

function prefetch(shownId) {
  upcoming = api
    .next()
    .then((result) => {
      if (result.status === "task" && result.task.id !== shownId) preload(result.task);
      return result;
    })
    .catch(() => null);
}

/** Whether ``result`` (as ``api.next()`` gives it) is there and is not the task ``id``. */
function other(result, id) {
  return Boolean(result) && !(result.status === "task" && result.task.id === id);
}

/** ``following``: what the last answer brought (a result as ``api.next()`` gives it), kept as
 * the prefetch unless it is the task now shown. */
function show(task, following = null) {
  current = task;
  view.body.replaceChildren();
  view.actions.replaceChildren();
  view.body.className = `label-body label-body-${task.kind}`;
  view.actions.className = `label-actions label-actions-${task.kind}`;
  root.dataset.taskKind = task.kind;
  root.dataset.taskId = task.id;
  view.prompt.textContent = task.prompt;
  const ui = { body: view.body, actions: view.actions, submit, notify };
  controller = RENDERERS[task.kind](task, ui);
  showLegend(controller.legend);
  showCategory(task);
  showState("work");
  setBusy(false);
  view.prompt.focus({ preventScroll: true });
  if (other(following, task.id)) {
    if (following.status === "task") preload(following.task);
    upcoming = Promise.resolve(following);
  } else {
    prefetch(task.id);
  }
}

function showResult(result) {
  current = null;
  controller = null;
  if (result.status === "task") {
    show(result.task);
  } else if (result.status === "paused") {
    view.prompt.textContent = "Your account is paused";
    $("paused-reason").textContent = result.reason;
    showState("paused");
  } else if (result.why === "finished" && root.dataset.finishedUrl) {
    // a campaign's assignment is done: its completion page has the code
    window.location.assign(root.dataset.finishedUrl);
  } else {
    view.prompt.textContent = "Nothing to do right now";
    const why = result.why === "done" ? "done" : "no-work";
    for (const text of view.states.empty.querySelectorAll("[data-why]")) {
      text.hidden = text.dataset.why !== why;
    }
    showState("empty");
  }
}

async function load() {
  setBusy(true);
  view.prompt.textContent = "Loading a task\u2026";
  try {
    showResult(await api.next());
  } catch (error) {
    view.prompt.textContent = "Something went wrong";
    $("error-text").textContent = `Could not load a task: ${error.message}`;
    showState("error");
  }
}

/** Show the prefetched task, else what the answer brought (``following``), else ask. */
async function advance(answeredId, following = null) {
  const ready = upcoming ? await upcoming : null;
  upcoming = null;
  if (ready && ready.status === "task" && ready.task.id !== answeredId) {
    show(ready.task, following);
  } else if (other(following, answeredId)) {
    showResult(following);
  } else {
    await load();
  }
}

function updateStats(stats) {
  $("stat-tasks").textContent = String(stats.answered_tasks);
  $("stat-items").textContent = String(stats.answered_items);
  $("stat-streak").textContent = String(stats.streak);
}

async function submit(answers) {
  if (busy || !current) return;
  const task = current;
  setBusy(true);
  let outcome;
  try {
    outcome = await api.answer(task, answers);
  } catch {
    notify("Could not reach the server. Check your connection and try again.", "error");
    setBusy(false);
    return;
  }
  if (outcome.status === "ok") {
    updateStats(outcome.stats);
    notify("");
    if (outcome.stats.paused) {
      showResult({ status: "paused", reason: outcome.stats.pause_reason });
    } else {
      await advance(task.id, outcome.following);
    }
  } else if (outcome.status === "gone") {
    notify(`${outcome.message} No harm done: here is the next one.`, "warn");
    await advance(task.id);
  } else if (outcome.status === "paused") {
    showResult(outcome);
  } else {
    notify(outcome.message, "error");
    setBusy(false);
  }
}

document.addEventListener("keydown", (event) => {
  if (!controller || busy || event.repeat) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target instanceof Element ? event.target : null;
  if (target && target.closest(NOT_SHORTCUTS)) return;
  const outside = target && target.closest("a, button") && !view.work.contains(target);
  if (outside && (event.key === "Enter" || event.key === " ")) return;
  if (controller.handleKey(event.key)) event.preventDefault();
});

for (const retry of [$("retry-button"), $("error-retry")]) {
  retry.addEventListener("click", () => {
    notify("");
    load();
  });
}

load();
