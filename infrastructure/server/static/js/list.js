// The sessions of the store, the most recently updated first, a page at a time;
// filtered by status, by a tool they called, by failures and by model, and searched by
// title or the start of an id ("Search inside" looks in their messages and tool output
// instead). The filters, search and page are kept in the address
// (#/?q=...&status=...&tool=...&failed=true&model=...&offset=...), so a reload or a link
// shows the same page.

import { api } from "./api.js";
import { cost, count, debounce, h, shortId, statusPill, tokens, when } from "./dom.js";
import { Filters } from "./filters.js";
import { notice } from "./ui.js";

const PAGE = 50;
const STATUSES = ["idle", "running", "error", "terminated"];

export class SessionList {
  constructor(params) {
    this.query = {
      q: params.get("q") ?? "",
      status: params.get("status") ?? "",
      offset: Number(params.get("offset") ?? 0) || 0,
    };
    this.notice = notice();
    this.search = h("input", {
      type: "search", id: "search", value: this.query.q, placeholder: "Title or id prefix  ( / )",
      "aria-label": "Search sessions by title or id prefix",
      oninput: debounce(() => {
        if (this.search.value.trim() !== this.query.q) this.go({ offset: 0 });
      }, 250),
    });
    this.status = h(
      "select",
      { id: "status-filter", "aria-label": "Filter by status", onchange: () => this.go({ status: this.status.value, offset: 0 }) },
      h("option", { value: "" }, "Any status"),
      STATUSES.map((s) => h("option", { value: s, selected: s === this.query.status }, s)),
    );
    this.filters = new Filters(params, () => this.go({ offset: 0 }), { status: false });
    this.inside = h("a", { class: "button secondary", id: "search-inside", href: "#/search",
      onclick: (event) => { event.preventDefault(); this.searchInside(); } }, "Search inside sessions");
    this.rows = h("tbody");
    this.range = h("span", { class: "muted", id: "page-range" });
    this.previous = h("button", { type: "button", class: "secondary", onclick: () => this.go({ offset: Math.max(0, this.query.offset - PAGE) }) }, "← Newer");
    this.next = h("button", { type: "button", class: "secondary", onclick: () => this.go({ offset: this.query.offset + PAGE }) }, "Older →");
    this.element = h(
      "div",
      { class: "sessions" },
      h("div", { class: "toolbar" }, h("h1", {}, "Sessions"), this.search, this.status, this.filters.element, this.inside),
      this.notice.element,
      h("table", { class: "list" },
        h("thead", {}, h("tr", {},
          ["Title", "Status", "Model", "Tokens", "Cost", "Events", "Updated", "Parent"].map((name) => h("th", { scope: "col" }, name)))),
        this.rows),
      h("div", { class: "pager" }, this.previous, this.range, this.next),
    );
    this.keys = (event) => {
      if (event.key === "/" && document.activeElement !== this.search) {
        event.preventDefault();
        this.search.focus();
      }
    };
    document.addEventListener("keydown", this.keys);
  }

  close() {
    document.removeEventListener("keydown", this.keys);
  }

  /** Change the filter or page, with the search as typed so far; recorded in the address. */
  go(change) {
    const query = { ...this.query, ...this.filters.values(), q: this.search.value.trim(), ...change };
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value) params.set(name, value);
    const text = params.toString();
    history.replaceState(null, "", text ? `#/?${text}` : "#/");
    this.query = query;
    this.load();
  }

  async open() {
    document.title = "Sessions · agentjournal";
    await Promise.all([this.filters.load(), this.load()]);
  }

  /** The words typed so far, looked for inside the sessions, with the same filters. */
  searchInside() {
    const params = new URLSearchParams();
    const words = this.search.value.trim();
    if (words) params.set("q", words);
    for (const [name, value] of Object.entries({ ...this.filters.values(), status: this.status.value })) if (value) params.set(name, value);
    const text = params.toString();
    location.hash = text ? `#/search?${text}` : "#/search";
  }

  async load() {
    this.controller?.abort();
    this.controller = new AbortController();
    const { q, status, offset } = this.query;
    try {
      const page = await api.sessions({ q, status, offset, limit: PAGE, ...this.filters.values() }, this.controller.signal);
      this.notice.clear();
      this.draw(page);
    } catch (error) {
      if (error.name !== "AbortError") this.notice.show(error);
    }
  }

  draw(page) {
    const rows = page.data.map((s) =>
      h("tr", {},
        h("td", { class: "title" }, h("a", { href: `#/s/${s.id}` }, s.title || `(untitled) ${shortId(s.id)}`),
          h("div", { class: "muted id" }, s.id)),
        h("td", {}, statusPill(s.status)),
        h("td", {}, s.model),
        h("td", { class: "num" }, tokens(s.usage)),
        h("td", { class: "num cost" }, cost(s.cost)),
        h("td", { class: "num" }, count(s.version)),
        h("td", {}, when(s.updated_at)),
        h("td", {}, s.parent_id ? [h("a", { href: `#/s/${s.parent_id}` }, shortId(s.parent_id)), ` @ ${s.parent_version}`] : "")));
    if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: "8", class: "muted empty" }, "No sessions match.")));
    this.rows.replaceChildren(...rows);
    const first = page.offset + 1;
    this.range.textContent = page.data.length ? `${count(first)}–${count(page.offset + page.data.length)}` : "";
    this.previous.disabled = page.offset === 0;
    this.next.disabled = !page.has_more;
  }
}
