// The raw audit log: every event of a session, one row each (version, time, type, hash,
// payload), with the selected event's whole payload below.
//
// A log may hold tens of thousands of events, so the list is virtual: only the rows in
// view exist in the DOM, and events are fetched a window at a time as they scroll into
// view. Keyboard: arrows, Page Up/Down, Home/End move the selection; the selection is
// the event the page replays to.

import { api } from "./api.js";
import { clock, count, h } from "./dom.js";

const ROW = 26;
const WINDOW = 200;
const OVERSCAN = 10;

const PREVIEW = 300;

/** The payload on one line, without the hashes (shown in their own column). */
function preview(payload) {
  const { hash, previous_hash, ...rest } = payload;
  return JSON.stringify(rest).slice(0, PREVIEW);
}

export class AuditLog {
  /**
   * `onSelect(version)` is called when the user selects an event (click or keys).
   */
  constructor(sessionId, onSelect) {
    this.sessionId = sessionId;
    this.onSelect = onSelect;
    this.total = 0;
    this.selected = 0;
    this.entries = new Map();
    this.loading = new Map();
    this.shown = null;
    this.spacer = h("div", { class: "spacer" });
    this.viewport = h(
      "div",
      {
        class: "log-rows",
        tabindex: "0",
        role: "listbox",
        "aria-label": "Audit log: every event of the session",
        onscroll: () => this.draw(),
        onkeydown: (event) => this.key(event),
      },
      this.spacer,
    );
    this.detail = h("div", { class: "log-detail", "aria-live": "polite" });
    this.element = h("div", { class: "log" }, this.viewport, this.detail);
    this.resized = new ResizeObserver(() => this.draw());
    this.resized.observe(this.viewport);
  }

  close() {
    this.resized.disconnect();
  }

  /** Show a log of `total` events; `first` (optional) is its first window, already fetched. */
  async open(total, first) {
    this.setTotal(total);
    if (first) this.store(first);
    this.draw();
  }

  setTotal(total) {
    this.total = total;
    this.spacer.style.height = `${total * ROW}px`;
  }

  /** The log grew (a live turn): forget the partial last window so it is fetched again. */
  grow(total) {
    const partial = Math.floor(this.total / WINDOW) * WINDOW;
    this.loading.delete(partial);
    this.setTotal(total);
    this.draw();
  }

  store(entries) {
    for (const entry of entries) this.entries.set(entry.version, { ...entry, preview: preview(entry.payload) });
  }

  fetchWindow(start) {
    if (this.loading.has(start)) return;
    const fetching = api.logWindow(this.sessionId, start, WINDOW).then((body) => {
      this.store(body.data);
      if (body.version > this.total) this.grow(body.version);
      this.draw();
    });
    fetching.catch(() => this.loading.delete(start));
    this.loading.set(start, fetching);
  }

  draw() {
    const top = this.viewport.scrollTop;
    const height = this.viewport.clientHeight || 400;
    const first = Math.max(1, Math.floor(top / ROW) + 1 - OVERSCAN);
    const last = Math.min(this.total, Math.ceil((top + height) / ROW) + OVERSCAN);
    const rows = [];
    for (let version = first; version <= last; version++) {
      const entry = this.entries.get(version);
      if (!entry) this.fetchWindow(Math.floor((version - 1) / WINDOW) * WINDOW);
      rows.push(this.row(version, entry));
    }
    this.spacer.replaceChildren(...rows);
    this.showDetail();
  }

  row(version, entry) {
    const selected = version === this.selected;
    const row = h(
      "div",
      {
        class: `log-row${selected ? " selected" : ""}${entry ? "" : " loading"}`,
        id: `log-${version}`,
        role: "option",
        "aria-selected": String(selected),
        dataset: { version: String(version) },
        style: { transform: `translateY(${(version - 1) * ROW}px)` },
        onclick: () => this.select(version, true),
      },
      h("span", { class: "v" }, version),
      h("span", { class: "t" }, entry ? clock(entry.timestamp) : ""),
      h("span", { class: "type" }, entry ? entry.type : "…"),
      h("span", { class: "hash" }, entry ? entry.payload.hash.slice(0, 10) : ""),
      h("span", { class: "p" }, entry ? entry.preview : ""),
    );
    return row;
  }

  /** Select an event; `chosen` when the user did (so the page replays to it). */
  select(version, chosen = false) {
    this.selected = Math.max(1, Math.min(this.total, version));
    this.viewport.setAttribute("aria-activedescendant", `log-${this.selected}`);
    this.scrollTo(this.selected);
    this.draw();
    if (chosen) this.onSelect(this.selected);
  }

  scrollTo(version) {
    const top = (version - 1) * ROW;
    const view = this.viewport;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (top + ROW > view.scrollTop + view.clientHeight) view.scrollTop = top + ROW - view.clientHeight;
  }

  key(event) {
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -Infinity, End: Infinity };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const from = this.selected || this.total;
    const to = Number.isFinite(moves[event.key]) ? from + moves[event.key] : moves[event.key] < 0 ? 1 : this.total;
    this.select(to, true);
  }

  showDetail() {
    const entry = this.entries.get(this.selected);
    if (entry && entry === this.shown) return;
    this.shown = entry;
    if (!entry) {
      this.detail.replaceChildren(h("p", { class: "muted" }, this.selected ? "Loading…" : "Select an event to see its payload."));
      return;
    }
    const { hash, previous_hash, ...payload } = entry.payload;
    this.detail.replaceChildren(
      h("div", { class: "detail-head" }, h("strong", {}, `Event ${count(entry.version)} · ${entry.type}`), ` · ${entry.timestamp}`),
      h("dl", { class: "hashes" },
        h("dt", {}, "hash"), h("dd", {}, h("code", {}, hash)),
        h("dt", {}, "previous"), h("dd", {}, h("code", {}, previous_hash))),
      h("pre", { class: "payload" }, JSON.stringify(payload, null, 2)),
    );
  }
}
