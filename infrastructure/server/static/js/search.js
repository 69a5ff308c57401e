// Search inside sessions: the places in every session's messages, tool calls, tool
// output and failures that hold all the words typed, the latest first, narrowed by tool,
// failure, model and status. Each hit opens its session at its event (#/s/ID/e/N).
//
// The words and filters are kept in the address (#/search?q=...&tool=...&failed=1...),
// so a reload or a link shows the same results. The server reads its search index,
// never the logs, so each keystroke (after a pause) is one indexed query.

import { api } from "./api.js";
import { count, debounce, h, shortId, when } from "./dom.js";
import { Filters } from "./filters.js";
import { notice } from "./ui.js";

const PAGE = 50;

const KINDS = {
  user: "prompt",
  assistant: "reply",
  tool_call: "tool call",
  tool_result: "tool output",
  error: "failure",
};

/** `text` with each word of `words` that starts a word marked (<mark>), as nodes. */
export function highlighted(text, words) {
  if (!words.length) return [text];
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(${escaped.join("|")})`, "giu");
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    nodes.push(text.slice(last, match.index), h("mark", {}, match[0]));
    last = match.index + match[0].length;
  }
  nodes.push(text.slice(last));
  return nodes;
}

/** The words of a query as the server splits them: runs of letters and digits. */
export function wordsOf(query) {
  return [...new Set((query.match(/[\p{L}\p{N}]+/gu) ?? []).map((w) => w.toLowerCase()))];
}

export class SearchView {
  constructor(params) {
    this.query = { q: params.get("q") ?? "", offset: Number(params.get("offset") ?? 0) || 0 };
    this.notice = notice();
    this.filters = new Filters(params, () => this.go({ offset: 0 }));
    this.input = h("input", {
      type: "search", id: "content-search", value: this.query.q, placeholder: "Words in messages and tool output  ( / )",
      "aria-label": "Search inside sessions",
      oninput: debounce(() => {
        if (this.input.value.trim() !== this.query.q) this.go({ offset: 0 });
      }, 250),
    });
    this.results = h("ol", { class: "hits", id: "hits", "aria-live": "polite" });
    this.summary = h("p", { class: "muted", id: "hits-summary" });
    this.previous = h("button", { type: "button", class: "secondary", onclick: () => this.go({ offset: Math.max(0, this.query.offset - PAGE) }) }, "← Previous");
    this.next = h("button", { type: "button", class: "secondary", onclick: () => this.go({ offset: this.query.offset + PAGE }) }, "More →");
    this.element = h("div", { class: "search-view" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Sessions"), " / search"),
      h("div", { class: "toolbar" }, h("h1", {}, "Search inside sessions"), this.input, this.filters.element),
      this.notice.element,
      this.summary,
      this.results,
      h("div", { class: "pager" }, this.previous, this.next));
    this.keys = (event) => {
      if (event.key === "/" && document.activeElement !== this.input) {
        event.preventDefault();
        this.input.focus();
      }
    };
    document.addEventListener("keydown", this.keys);
  }

  close() {
    document.removeEventListener("keydown", this.keys);
    this.controller?.abort();
  }

  /** Change the words, a filter or the page; recorded in the address. */
  go(change) {
    this.query = { ...this.query, q: this.input.value.trim(), ...change };
    const params = new URLSearchParams();
    if (this.query.q) params.set("q", this.query.q);
    for (const [name, value] of Object.entries(this.filters.values())) if (value) params.set(name, value);
    if (this.query.offset) params.set("offset", this.query.offset);
    const text = params.toString();
    history.replaceState(null, "", text ? `#/search?${text}` : "#/search");
    this.load();
  }

  async open() {
    document.title = "Search · agentjournal";
    this.input.focus();
    await Promise.all([this.filters.load(), this.load()]);
  }

  async load() {
    this.controller?.abort();
    const { q, offset } = this.query;
    const filters = this.filters.values();
    if (!q && !Object.values(filters).some(Boolean)) {
      this.notice.clear();
      this.summary.textContent = "Type words to find, or choose a filter.";
      this.results.replaceChildren();
      this.previous.disabled = this.next.disabled = true;
      return;
    }
    this.controller = new AbortController();
    try {
      const page = await api.search({ q, ...filters, offset, limit: PAGE }, this.controller.signal);
      this.notice.clear();
      this.draw(page, wordsOf(q));
    } catch (error) {
      if (error.name === "AbortError") return;
      this.results.replaceChildren();
      this.summary.textContent = "";
      this.notice.show(error);
    }
  }

  draw(page, words) {
    const hits = page.data.map((hit) => h("li", { class: `hit kind-${hit.kind}${hit.failed ? " failed" : ""}` },
      h("div", { class: "hit-head" },
        h("a", { class: "hit-link", href: `#/s/${hit.session_id}/e/${hit.version}` },
          hit.title || `(untitled) ${shortId(hit.session_id)}`, ` · event ${count(hit.version)}`),
        " ", h("span", { class: "pill kind" }, KINDS[hit.kind] ?? hit.kind),
        hit.tool ? [" ", h("code", { class: "tool" }, hit.tool)] : "",
        hit.failed ? [" ", h("span", { class: "error-text" }, "failed")] : "",
        " ", h("span", { class: "muted" }, `${hit.model} · ${when(hit.at)}`)),
      h("p", { class: "snippet" }, highlighted(hit.snippet, words))));
    this.results.replaceChildren(...hits);
    const first = page.offset + 1;
    this.summary.textContent = hits.length
      ? `${count(first)}–${count(page.offset + hits.length)}${page.has_more ? ", more after" : ""}`
      : "Nothing found.";
    this.previous.disabled = page.offset === 0;
    this.next.disabled = !page.has_more;
  }
}
