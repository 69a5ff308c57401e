// The filters the session list and the search share: the tool a session called, its
// failures only, the model it runs (and, for the search, its status). The tools and
// models to choose from are those the store holds (the server's search facets).

import { api } from "./api.js";
import { h } from "./dom.js";

const STATUSES = ["idle", "running", "error", "terminated"];

export class Filters {
  /** `params`: the address's query, which the filters start from; `changed()` runs on
   * each change. With `status`, a status choice is part of them. */
  constructor(params, changed, { status = true } = {}) {
    this.wanted = { tool: params.get("tool") ?? "", model: params.get("model") ?? "" };
    this.tool = h("select", { id: "tool-filter", "aria-label": "Filter by tool", onchange: changed },
      h("option", { value: "" }, "Any tool"));
    this.model = h("select", { id: "model-filter", "aria-label": "Filter by model", onchange: changed },
      h("option", { value: "" }, "Any model"));
    this.failed = h("input", { type: "checkbox", id: "failed-filter", checked: params.get("failed") === "true", onchange: changed });
    this.status = status
      ? h("select", { id: "hit-status-filter", "aria-label": "Filter by status", onchange: changed },
        h("option", { value: "" }, "Any status"),
        STATUSES.map((s) => h("option", { value: s, selected: s === params.get("status") }, s)))
      : null;
    // Until the choices arrive, the address's own are the only ones, so they count.
    this.choose(this.tool, [this.wanted.tool].filter(Boolean), this.wanted.tool);
    this.choose(this.model, [this.wanted.model].filter(Boolean), this.wanted.model);
    this.element = h("span", { class: "filters" },
      this.tool, this.model, this.status,
      h("label", { class: "check" }, this.failed, " Failures only"));
  }

  /** Fill the tool and model choices from the store. */
  async load() {
    const facets = await api.facets();
    this.choose(this.tool, facets.tools, this.tool.value || this.wanted.tool);
    this.choose(this.model, facets.models, this.model.value || this.wanted.model);
  }

  choose(select, names, chosen) {
    const kept = [...new Set([...names, ...(chosen ? [chosen] : [])])];
    select.replaceChildren(select.firstElementChild,
      ...kept.map((name) => h("option", { value: name, selected: name === chosen }, name)));
  }

  /** The filters as query parameters (empty ones included, as ""). */
  values() {
    return {
      tool: this.tool.value,
      model: this.model.value,
      failed: this.failed.checked ? "true" : "",
      ...(this.status ? { status: this.status.value } : {}),
    };
  }
}
