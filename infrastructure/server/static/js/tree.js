// A session's fork tree: the sessions it was forked from, down to it, and every fork
// of it at any depth. Each edge says at which of the parent's events the fork parted;
// each node opens its session, and offers a diff with the session the tree is about.

import { api } from "./api.js";
import { count, h, shortId, statusPill, tokens } from "./dom.js";
import { notice } from "./ui.js";

function node(item, current) {
  const here = item.id === current;
  return h(
    "div",
    { class: `node${here ? " current" : ""}` },
    item.forked_at ? h("span", { class: "edge" }, `forked at event ${count(item.forked_at)}`) : "",
    h("a", { href: `#/s/${item.id}`, "aria-current": here ? "page" : false }, item.title || `(untitled) ${shortId(item.id)}`),
    " ", statusPill(item.status),
    h("span", { class: "muted" }, ` ${shortId(item.id)} · ${count(item.version)} events · ${tokens(item.usage)}`),
    here ? "" : h("a", { class: "diff-link", href: `#/diff/${current}/${item.id}` }, "diff"),
  );
}

/** Nested lists from the server's pre-order (each node with its depth). */
function nest(nodes, current) {
  const root = h("ul", { class: "tree" });
  const lists = [root];
  for (const item of nodes) {
    const li = h("li", {}, node(item, current));
    lists[item.depth].append(li);
    const children = h("ul");
    li.append(children);
    lists[item.depth + 1] = children;
    lists.length = item.depth + 2;
  }
  for (const empty of root.querySelectorAll("ul:empty")) empty.remove();
  return root;
}

export class ForkTreeView {
  constructor(id) {
    this.id = id;
    this.notice = notice();
    this.body = h("div", { class: "tree-body" }, h("p", { class: "muted" }, "Loading…"));
    this.element = h(
      "div",
      { class: "fork-tree" },
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "#/" }, "Sessions"), " / ", h("a", { href: `#/s/${id}` }, shortId(id)), " / fork tree"),
      h("h1", {}, "Fork tree"),
      this.notice.element,
      this.body,
    );
  }

  async open() {
    document.title = `Fork tree of ${shortId(this.id)} · agentjournal`;
    try {
      const tree = await api.tree(this.id);
      this.body.replaceChildren(
        tree.missing_parent ? h("p", { class: "muted" }, `The first session shown was forked from ${shortId(tree.missing_parent)}, which is not in this store.`) : "",
        nest(tree.nodes, tree.session_id),
        tree.truncated ? h("p", { class: "muted" }, `Only the first ${count(tree.nodes.length)} sessions are shown.`) : "",
      );
    } catch (error) {
      this.notice.show(error);
    }
  }
}
