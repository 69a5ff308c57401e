// Two sessions side by side from the point their conversations part: how they are
// related, how many messages they share, and what each has after.

import { api } from "./api.js";
import { drawConversation } from "./conversation.js";
import { count, h, shortId } from "./dom.js";
import { notice } from "./ui.js";

function side(id, messages, label) {
  const conversation = h("div", { class: "conversation" });
  if (messages.length) drawConversation(conversation, messages, []);
  else conversation.append(h("p", { class: "muted empty" }, "Nothing after the shared messages."));
  return h("section", { class: "pane", "aria-label": label },
    h("h2", {}, label, " ", h("a", { href: `#/s/${id}` }, shortId(id)), ` · ${count(messages.length)} messages after`),
    conversation);
}

export class DiffView {
  constructor(left, right) {
    this.left = left;
    this.right = right;
    this.notice = notice();
    this.body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
    this.element = h(
      "div",
      { class: "diff" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "#/" }, "Sessions"), " / ", h("a", { href: `#/s/${left}` }, shortId(left)), " / diff"),
      h("h1", {}, `${shortId(left)} ⟷ ${shortId(right)}`),
      this.notice.element,
      this.body,
    );
  }

  async open() {
    document.title = `Diff ${shortId(this.left)} and ${shortId(this.right)} · agentjournal`;
    try {
      const diff = await api.diff(this.left, this.right);
      this.body.replaceChildren(
        h("p", { class: "relation", id: "diff-relation" }, diff.relation, ` · ${count(diff.shared_messages)} messages shared`),
        h("div", { class: "panes two" },
          side(diff.left, diff.left_only, "Left"),
          side(diff.right, diff.right_only, "Right")),
      );
    } catch (error) {
      this.notice.show(error);
    }
  }
}
