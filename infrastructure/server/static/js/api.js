// Talking to the server: the key, JSON requests, and the event stream.
//
// The key is kept in this tab's sessionStorage (gone when the tab closes) and sent as
// the x-api-key header; it never goes into a URL. A 401 from any request forgets it and
// tells the app (the "unauthorized" event on `events`), which asks for a key again.

const KEY = "agentjournal.api-key";

export const events = new EventTarget();

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetApiKey() {
  sessionStorage.removeItem(KEY);
}

/** Whether the server answers without a key (`serve --no-auth`): asked once, with one
 * small request that sends none. */
let keyless = null;
export async function serverNeedsKey() {
  if (keyless === null) {
    try {
      keyless = (await fetch(`${X}?limit=1`)).ok;
    } catch {
      return true;
    }
  }
  return !keyless;
}

/** An error the server answered with: its status, type and message (Anthropic's shape). */
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function headers(extra = {}) {
  return { "x-api-key": apiKey() ?? "", ...extra };
}

async function failure(response) {
  let type = "api_error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    type = body.error?.type ?? type;
    message = body.error?.message ?? message;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) {
    forgetApiKey();
    events.dispatchEvent(new CustomEvent("unauthorized", { detail: message }));
  }
  return new ApiError(response.status, type, message);
}

/** A JSON request; resolves to the decoded body, rejects with an ApiError. */
export async function request(method, path, { query, body, signal } = {}) {
  const response = await fetch(url(path, query), {
    method,
    signal,
    headers: headers(body === undefined ? {} : { "content-type": "application/json" }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const get = (path, query, signal) => request("GET", path, { query, signal });
export const post = (path, body) => request("POST", path, { body });

const X = "/x-agentjournal/v1/sessions";

/** The routes the page uses, by what they are for. */
export const api = {
  sessions: (query, signal) => get(X, query, signal),
  session: (id) => get(`/v1/sessions/${id}`),
  state: (id, version, signal) => get(`${X}/${id}/state`, { version }, signal),
  turns: (id, version, signal) => get(`${X}/${id}/turns`, { version }, signal),
  logWindow: (id, after, limit) => get(`${X}/${id}/log/window`, { after, limit }),
  verify: (id) => get(`${X}/${id}/verify`),
  tree: (id) => get(`${X}/${id}/tree`),
  diff: (id, other) => get(`${X}/${id}/diff`, { with: other }),
  fork: (id, version) => post(`${X}/${id}/fork`, { version }),
  terminate: (id, reason) => post(`${X}/${id}/terminate`, { reason }),
  trace: (id) => get(`${X}/${id}/trace`),
  send: (id, event) => post(`/v1/sessions/${id}/events`, { events: [event] }),
  search: (query, signal) => get("/x-agentjournal/v1/search", query, signal),
  facets: () => get("/x-agentjournal/v1/search/facets"),
  fileChanges: (id, version, signal) => get(`${X}/${id}/files/changes`, { version }, signal),
  fileDiff: (id, path, version, signal) => get(`${X}/${id}/files/diff`, { path, version }, signal),
  fileBytes: (id, path, version, signal) => bytes(`${X}/${id}/files`, { path, version }, signal),
};

/** A file's contents as bytes (an ArrayBuffer); rejects with an ApiError. */
async function bytes(path, query, signal) {
  const response = await fetch(url(path, query), { signal, headers: headers() });
  if (!response.ok) throw await failure(response);
  return response.arrayBuffer();
}

/**
 * Follow a session's event stream (Server-Sent Events) until `close()` is called.
 *
 * EventSource cannot send headers, so the stream is read with fetch and parsed here.
 * `onEvent({type, id, data})` gets each event; `onStatus("live" | "reconnecting")` says
 * whether the stream is connected. A dropped stream reconnects with Last-Event-ID, so
 * nothing is missed or repeated.
 */
export function follow(sessionId, onEvent, onStatus) {
  const controller = new AbortController();
  let lastId = null;

  async function connect() {
    const response = await fetch(`/v1/sessions/${sessionId}/events/stream`, {
      signal: controller.signal,
      headers: headers({ accept: "text/event-stream", ...(lastId ? { "last-event-id": lastId } : {}) }),
    });
    if (!response.ok) throw await failure(response);
    onStatus("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new EventStreamParser((event) => {
      if (event.id) lastId = event.id;
      onEvent(event);
    });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.push(value);
    }
  }

  (async () => {
    let wait = 500;
    while (!controller.signal.aborted) {
      try {
        await connect();
        wait = 500;
      } catch (error) {
        if (controller.signal.aborted || error.status === 401 || error.status === 404) return;
      }
      if (controller.signal.aborted) return;
      onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 8000);
    }
  })();

  return { close: () => controller.abort() };
}

/** The text/event-stream format: `field: value` lines, an event at each blank line. */
export class EventStreamParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.event = { type: "message", id: "", data: [] };
  }

  push(text) {
    this.buffer += text;
    // A final "\r" may be the first half of a "\r\n" still to come: keep it for later.
    const end = this.buffer.endsWith("\r") ? this.buffer.length - 1 : this.buffer.length;
    const lines = this.buffer.slice(0, end).split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + this.buffer.slice(end);
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.event.data.length) {
        const { type, id, data } = this.event;
        this.dispatch({ type, id, data: data.join("\n") });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return; // a comment: the server's keep-alive ping
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") this.event.type = value;
    else if (field === "id") this.event.id = value;
    else if (field === "data") this.event.data.push(value);
  }
}
