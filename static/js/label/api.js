/** The worker task API: the next task, and answers sent once (a retry reuses the token). */
import { csrfToken } from "../csrf.js";

const PAUSED_PREFIX = "Your account is paused: ";

async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return Object.values(body).flat().join(" ");
  } catch {
    return `The server answered ${response.status}.`;
  }
}

function pauseReason(text) {
  return text.startsWith(PAUSED_PREFIX) ? text.slice(PAUSED_PREFIX.length) : text;
}

export class TaskApi {
  /** ``answerNext``: the kind (or "any") each answer asks the next task of, so that one
   * request per task does both; empty where the next task comes from ``nextUrl`` only. */
  constructor(nextUrl, answerUrl, kind, answerNext = "") {
    this.nextUrl = kind ? `${nextUrl}?kind=${encodeURIComponent(kind)}` : nextUrl;
    this.answerUrl = answerUrl;
    this.answerQuery = answerNext ? `?next=${encodeURIComponent(answerNext)}` : "";
  }

  /** ``{ status: "task", task }``, ``{ status: "empty", why }`` (``why``: "no-work" or "done",
   * from the Crowdnet-Empty-Reason header) or ``{ status: "paused", reason }``; throws on a
   * network error or an unexpected answer. */
  async next() {
    const response = await fetch(this.nextUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.status === 204) {
      return { status: "empty", why: response.headers.get("Crowdnet-Empty-Reason") || "" };
    }
    if (response.status === 403) {
      return { status: "paused", reason: pauseReason(await detail(response)) };
    }
    if (!response.ok) throw new Error(await detail(response));
    return { status: "task", task: await response.json() };
  }

  /** Send the answers with a fresh client token, retried once with the same token if the
   * network fails. ``{ status: "ok", stats, following }`` (``following``: the next task as
   * ``next()`` gives it, when the answer asked for one, else null), ``"gone"`` (expired,
   * answered, unknown), ``"invalid"`` with a message, or ``"paused"`` with the reason. */
  async answer(task, answers) {
    const url =
      this.answerUrl.replace("00000000-0000-0000-0000-000000000000", task.id) + this.answerQuery;
    const body = JSON.stringify({ answers, client_token: crypto.randomUUID() });
    const post = () =>
      fetch(url, {
        method: "POST",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRFToken": csrfToken(),
        },
        credentials: "same-origin",
        body,
      });
    let response;
    try {
      response = await post();
    } catch {
      response = await post();
    }
    if (response.status === 201) {
      const stats = await response.json();
      return { status: "ok", stats, following: stats.next || null };
    }
    if (response.status === 404 || response.status === 409) {
      return { status: "gone", message: await detail(response) };
    }
    if (response.status === 403) {
      const text = await detail(response);
      if (text.startsWith(PAUSED_PREFIX)) return { status: "paused", reason: pauseReason(text) };
      return { status: "invalid", message: text };
    }
    return { status: "invalid", message: await detail(response) };
  }
}
