// Tabs over one pane: a tab list and its panels, only the chosen one shown; the arrow
// keys move between tabs, as the ARIA tabs pattern has them.

import { h } from "./dom.js";

export class Tabs {
  /** `tabs`: [id, label, panel element] each; `chosen(id)` runs when one is chosen. */
  constructor(tabs, chosen) {
    this.chosen = chosen;
    this.buttons = tabs.map(([id, label]) => h("button", {
      type: "button", role: "tab", id: `tab-${id}`, class: "tab", "aria-controls": `panel-${id}`,
      onclick: () => this.choose(id),
      onkeydown: (event) => this.keys(event),
    }, label));
    this.panels = tabs.map(([id, , panel]) => h("div", { role: "tabpanel", id: `panel-${id}`, class: "tab-panel", "aria-labelledby": `tab-${id}` }, panel));
    this.ids = tabs.map(([id]) => id);
    this.element = h("div", { role: "tablist", class: "tabs" }, this.buttons);
    this.choose(this.ids[0], false);
  }

  choose(id, announce = true) {
    this.ids.forEach((each, i) => {
      const on = each === id;
      this.buttons[i].setAttribute("aria-selected", String(on));
      this.buttons[i].tabIndex = on ? 0 : -1;
      this.panels[i].hidden = !on;
    });
    this.current = id;
    if (announce) this.chosen(id);
  }

  keys(event) {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = (this.ids.indexOf(this.current) + step + this.ids.length) % this.ids.length;
    this.choose(this.ids[next]);
    this.buttons[next].focus();
  }
}
