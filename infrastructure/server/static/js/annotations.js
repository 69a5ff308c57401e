// A session's annotations: notes and scores people gave its events, kept in a
// hash-chained log of their own (the session's log and head hash stay as they are).
// The form annotates the event the session view has selected; each annotation links
// to its event (#/s/ID/e/N), and the line above the list says whether their log
// verifies.

import { get, post } from "./api.js";
import { count, fill, h, when } from "./dom.js";

const X = "/x-agentjournal/v1/sessions";

export class AnnotationsPanel {
  constructor(sessionId, notice) {
    this.sessionId = sessionId;
    this.notice = notice;
    this.version = 1;
    this.status = h("p", { id: "annotations-status", class: "muted" }, "Loading…");
    this.list = h("ol", { id: "annotations-list", class: "annotations-list" });
    this.target = h("span", { id: "annotation-target" });
    this.note = h("textarea", { id: "annotation-note", rows: "2", placeholder: "What about this event?", "aria-label": "Note" });
    this.score = h("input", { id: "annotation-score", type: "number", step: "any", placeholder: "e.g. 0.5", "aria-label": "Score" });
    this.element = h("section", { class: "pane annotations-pane", id: "annotations", "aria-label": "Annotations" },
      h("h2", {}, "Annotations"),
      this.status,
      this.list,
      h("form", { class: "annotation-form", onsubmit: (event) => this.save(event) },
        h("label", { for: "annotation-note" }, "Annotate ", this.target),
        this.note,
        h("label", { for: "annotation-score" }, "Score"),
        this.score,
        h("button", { type: "submit", id: "annotate" }, "Save annotation")));
  }

  /** The event the next annotation is about. */
  select(version) {
    this.version = version;
    fill(this.target, `event ${count(version)}`);
  }

  async load() {
    try {
      this.show(await get(`${X}/${this.sessionId}/annotations`));
    } catch (error) {
      this.notice.show(error);
    }
  }

  show(answer) {
    const checked = answer.verification;
    this.status.className = checked && !checked.ok ? "error-text" : "muted";
    fill(this.status,
      !checked ? "No annotations yet."
        : checked.ok ? `✓ ${count(answer.data.length)} annotations; their log is intact (head ${checked.head.slice(0, 12)})`
          : `✗ Their log is broken at its event ${checked.broken.version}: ${checked.broken.problem}`);
    fill(this.list, answer.data.map((note) =>
      h("li", { class: "annotation", dataset: { event: String(note.event.version) } },
        h("a", { href: `#/s/${this.sessionId}/e/${note.event.version}` }, `event ${count(note.event.version)}`),
        h("span", { class: "muted" }, ` ${note.event.type}`),
        note.score === null ? "" : h("strong", { class: "score" }, ` score ${note.score}`),
        note.note ? [" · ", h("span", { class: "note" }, note.note)] : "",
        h("span", { class: "muted" }, ` · ${when(note.created_at)}`))));
  }

  async save(event) {
    event.preventDefault();
    const note = this.note.value.trim();
    const score = this.score.value === "" ? null : Number(this.score.value);
    this.notice.clear();
    try {
      await post(`${X}/${this.sessionId}/annotations`, { version: this.version, note, score });
      this.note.value = "";
      this.score.value = "";
      await this.load();
    } catch (error) {
      this.notice.show(error);
    }
  }
}
