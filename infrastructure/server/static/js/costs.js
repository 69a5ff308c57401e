// Cost and timing of a session: each turn with its model and tool calls in the order
// they started (what each took, its time to first token, tokens and price), drawn as a
// waterfall on the turn's time axis, the session's totals, and how each tool fared.
// Every call links to its event (#/s/ID/e/N), which opens the replay there.

import { clock, cost, count, duration, fill, h, tokens } from "./dom.js";

export class CostsPanel {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.total = h("p", { id: "costs-total" });
    this.calls = h("tbody");
    this.tools = h("tbody");
    this.element = h("section", { class: "pane costs-pane", id: "costs", "aria-label": "Cost and timing" },
      h("h2", {}, "Cost and timing"),
      this.total,
      h("table", { class: "costs-table", id: "costs-calls" },
        h("thead", {}, h("tr", {},
          ["Turn / call", "Started", "Took", "First token", "Tokens", "Cost", "Waterfall"].map((name) => h("th", { scope: "col" }, name)))),
        this.calls),
      h("h3", {}, "Tools"),
      h("table", { class: "costs-table", id: "tool-stats" },
        h("thead", {}, h("tr", {},
          ["Tool", "Calls", "Failed", "Median", "p95"].map((name) => h("th", { scope: "col" }, name)))),
        this.tools));
  }

  show(trace) {
    const calls = trace.turns.reduce((n, turn) => n + turn.model_calls.length, 0);
    fill(this.total, `Session: ${cost(trace.cost) || "no model calls"} · ${count(calls)} model calls · model time ${duration(trace.model_ms)}`);
    fill(this.calls, trace.turns.map((turn) => this.turnRows(turn)));
    fill(this.tools, trace.tool_stats.map((tool) =>
      h("tr", {}, h("td", {}, tool.name), h("td", {}, count(tool.calls)), h("td", {}, count(tool.failures)),
        h("td", {}, duration(tool.median_ms)), h("td", {}, duration(tool.p95_ms)))));
  }

  turnRows(turn) {
    const calls = [
      ...turn.model_calls.map((call) => ({ ...call, kind: "model" })),
      ...turn.tool_calls.map((call) => ({ ...call, kind: "tool" })),
    ].sort((a, b) => a.started_at.localeCompare(b.started_at));
    const start = Date.parse(turn.started_at);
    const end = Math.max(start + 1, turn.ended_at ? Date.parse(turn.ended_at) : start, ...calls.map((c) => Date.parse(c.ended_at)));
    const axis = { start, span: end - start };
    const head = h("tr", { class: `turn outcome-${turn.outcome}` },
      h("th", { scope: "row" }, this.link(turn.version, `Turn ${turn.turn}`), ` (${turn.outcome})`),
      h("td", {}, clock(turn.started_at)),
      h("td", {}, turn.duration_ms === null ? "running" : duration(turn.duration_ms)),
      h("td", {}, ""),
      h("td", {}, ""),
      h("td", { class: "cost" }, cost(turn.cost)),
      h("td", {}, bar(axis, start, end, "turn")));
    return [head, ...calls.map((call) => this.callRow(call, axis))];
  }

  callRow(call, axis) {
    const model = call.kind === "model";
    const name = model ? `model ${call.model}` : `tool ${call.name}`;
    return h("tr", { class: `call ${call.kind}${call.failed ? " failed" : ""}` },
      h("td", {}, this.link(call.version, name), call.failed ? h("span", { class: "error-text" }, " failed") : ""),
      h("td", {}, clock(call.started_at)),
      h("td", {}, call.duration_ms === null ? "not timed" : duration(call.duration_ms)),
      h("td", {}, model ? duration(call.first_token_ms) : ""),
      h("td", {}, model ? tokens(call.usage) : ""),
      h("td", { class: "cost" }, model ? cost({ usd: call.cost_usd, unpriced_calls: call.cost_usd === null ? 1 : 0 }) : ""),
      h("td", {}, bar(axis, Date.parse(call.started_at), Date.parse(call.ended_at), call.kind, call.failed)));
  }

  link(version, text) {
    return h("a", { href: `#/s/${this.sessionId}/e/${version}` }, text);
  }
}

/** One bar of the waterfall: where `from`..`to` (epoch ms) falls on the turn's axis. */
function bar(axis, from, to, kind, failed = false) {
  const left = Math.min(100, Math.max(0, ((from - axis.start) / axis.span) * 100));
  const width = Math.max(0.5, Math.min(100 - left, ((to - from) / axis.span) * 100));
  const label = `starts at +${duration(from - axis.start) || "0 ms"}, takes ${duration(to - from) || "0 ms"}`;
  return h("div", { class: "track", title: label, "aria-label": label, role: "img" },
    h("div", { class: `bar ${kind}${failed ? " failed" : ""}`, style: { left: `${left}%`, width: `${width}%` } }));
}
