// A conversation drawn as a chat: prompts, replies, tool calls with their arguments and
// results (exit code, duration, output collapsed when long), and a divider at each turn
// with its usage and how it ended.

import { count, duration, h, tokens } from "./dom.js";

const LONG_LINES = 12;
const LONG_CHARS = 1200;
const FIRST_SHOWN = 200;

/** Text shown whole when short, behind a <details> toggle when long. */
function collapsible(text, label) {
  const body = h("pre", { class: "text" }, text);
  const lines = text.split("\n").length;
  if (lines <= LONG_LINES && text.length <= LONG_CHARS) return body;
  return h("details", { class: "long" }, h("summary", {}, `${label} (${count(lines)} lines)`), body);
}

function pretty(argumentsText) {
  try {
    return JSON.stringify(JSON.parse(argumentsText || "{}"), null, 2);
  } catch {
    return argumentsText;
  }
}

function toolResult(result, ranOn) {
  const failed = result.is_error || (result.exit_code !== null && result.exit_code !== 0);
  return h(
    "div",
    { class: `tool-result${failed ? " failed" : ""}` },
    h(
      "div",
      { class: "meta" },
      result.exit_code === null || result.exit_code === undefined ? "result" : `exit ${result.exit_code}`,
      result.duration_ms ? ` · ${duration(result.duration_ms)}` : "",
      result.truncated ? " · truncated" : "",
      result.is_error ? " · error" : "",
      ranOn ? ` · ran on worker ${ranOn}` : "",
    ),
    collapsible(result.output, "output"),
  );
}

function toolCall(call, result, ranOn) {
  return h(
    "div",
    { class: "tool-call" },
    h("div", { class: "tool-name" }, h("span", { class: "icon", "aria-hidden": "true" }, "⚙"), ` ${call.name}`),
    collapsible(pretty(call.arguments), "arguments"),
    result ? toolResult(result, ranOn) : h("div", { class: "meta pending" }, "no result yet"),
  );
}

function message(item, results, ranOn) {
  if (item.type === "user") {
    return h("article", { class: "msg user" }, h("header", {}, "User"), h("div", { class: "body" }, collapsible(item.content, "prompt")));
  }
  if (item.type === "assistant") {
    return h(
      "article",
      { class: "msg assistant" },
      h("header", {}, "Assistant", item.model ? h("span", { class: "muted" }, ` · ${item.model}`) : ""),
      item.content ? h("div", { class: "body" }, collapsible(item.content, "reply")) : "",
      item.tool_calls.map((call) => toolCall(call, results.get(call.id), ranOn[call.id])),
    );
  }
  return h("article", { class: "msg tool" }, h("header", {}, `Tool ${item.name}`), toolResult(item, ranOn[item.tool_call_id]));
}

function divider(turn) {
  if (turn.turn === 0) {
    return h("div", { class: "turn" }, `Inherited from the parent: ${count(turn.message_count)} messages · ${tokens(turn.usage)}`);
  }
  const took = turn.ended_at ? duration(new Date(turn.ended_at) - new Date(turn.started_at)) : "";
  const end = turn.stop_reason ? `${turn.stop_reason}${turn.detail ? `: ${turn.detail}` : ""}` : "running";
  return h(
    "div",
    { class: "turn" },
    h("strong", {}, `Turn ${turn.turn}`),
    ` · ${tokens(turn.usage)} · ${end}`,
    took ? ` · ${took}` : "",
    ` · events ${turn.started}–${turn.ended ?? "…"}`,
  );
}

/**
 * Draw `messages` (a session state's) into `container`, with the dividers of `turns`.
 * Only the latest messages are drawn at first; a button draws the earlier ones. `ranOn`
 * names the self-hosted worker that ran a call, by call id.
 */
export function drawConversation(container, messages, turns, ranOn = {}, shown = FIRST_SHOWN) {
  const results = new Map();
  for (const item of messages) if (item.type === "tool") results.set(item.tool_call_id, item);
  const answered = new Set();
  for (const item of messages) {
    if (item.type === "assistant") for (const call of item.tool_calls) if (results.has(call.id)) answered.add(call.id);
  }
  const dividers = new Map(turns.map((turn) => [turn.first_message, turn]));
  const start = Math.max(0, messages.length - shown);
  const nodes = [];
  if (start > 0) {
    nodes.push(
      h("button", { class: "earlier", type: "button", onclick: () => drawConversation(container, messages, turns, ranOn, shown * 4) },
        `Show ${count(Math.min(start, shown * 3))} earlier messages (${count(start)} not shown)`),
    );
  }
  for (let index = start; index < messages.length; index++) {
    const item = messages[index];
    if (dividers.has(index)) nodes.push(divider(dividers.get(index)));
    if (item.type === "tool" && answered.has(item.tool_call_id)) continue; // drawn with its call
    nodes.push(message(item, results, ranOn));
  }
  for (const turn of turns) if (turn.first_message >= messages.length) nodes.push(divider(turn));
  if (!messages.length && !turns.length) nodes.push(h("p", { class: "muted empty" }, "No messages yet."));
  container.replaceChildren(...nodes);
}
