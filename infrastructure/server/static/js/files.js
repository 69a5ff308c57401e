// The Files tab of a session: its work folder as of the selected event (the log's own
// manifest, so after its sandbox is gone too), each file with the event of its latest
// change; a file's contents then, and its diff against the change before.
//
// It follows the replay: choosing another event shows the folder as of that one. A
// file's address is #/s/ID/e/N/f/PATH, which opens the session there with the file shown.

import { api } from "./api.js";
import { count, fill, h } from "./dom.js";

const SHOWN_BYTES = 200_000;

const CHANGES = {
  added: "added",
  modified: "changed",
  deleted: "deleted",
  inherited: "came with the fork",
};

/** A byte count for people. */
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A unified diff drawn line by line: additions, deletions and hunk heads told apart. */
function diffLines(text) {
  return text.split("\n").filter((line, i, all) => line || i < all.length - 1).map((line) => {
    const kind = line.startsWith("@@") ? "hunk" : line.startsWith("+++") || line.startsWith("---") ? "head"
      : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "same";
    return h("div", { class: `diff-line ${kind}` }, line || " ");
  });
}

export class FilesPanel {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.version = null; // the event the listing is as of
    this.wanted = null; // the event to show, once visible
    this.path = null; // the file shown
    this.visible = false;
    this.heading = h("p", { class: "muted", id: "files-heading" });
    this.list = h("ul", { class: "file-list", id: "file-list", "aria-label": "Files" });
    this.file = h("div", { class: "file-view", id: "file-view" });
    this.element = h("div", { class: "files-panel", id: "files" },
      this.heading, h("div", { class: "files-split" }, this.list, this.file));
  }

  /** The tab is shown (or hidden): the folder is read only while it is shown. */
  show(visible) {
    this.visible = visible;
    if (visible && this.wanted !== this.version) this.load();
  }

  /** Show the folder as of event `version` (when the tab is shown). */
  at(version) {
    this.wanted = version;
    if (this.visible) this.load();
  }

  /** Show `path` (a deep link's file) once the folder is listed. */
  select(path) {
    this.path = path;
  }

  async load() {
    const version = this.wanted;
    this.controller?.abort();
    this.controller = new AbortController();
    const signal = this.controller.signal;
    try {
      const files = await api.fileChanges(this.sessionId, version, signal);
      if (version !== this.wanted) return;
      this.version = version;
      this.drawList(files);
      if (this.path) await this.open(this.path, signal);
    } catch (error) {
      if (error.name !== "AbortError") fill(this.heading, h("span", { class: "error-text" }, error.message));
    }
  }

  drawList(files) {
    fill(this.heading, files.data.length
      ? `${count(files.data.length)} files as of event ${count(files.version)}`
      : `No files as of event ${count(files.version)}.`);
    fill(this.list, files.data.map((file) => h("li", {},
      h("button", { type: "button", class: "file-entry", dataset: { path: file.path },
        "aria-current": file.path === this.path ? "true" : false,
        onclick: () => this.open(file.path) },
        h("span", { class: "path" }, file.path),
        h("span", { class: "muted" }, ` ${size(file.size)}`),
        file.changed_at === this.version ? h("span", { class: "pill changed-here" }, "changed here") : ""),
      file.changed_at ? h("a", { class: "muted changed-at", href: `#/s/${this.sessionId}/e/${file.changed_at}/f/${encodeURIComponent(file.path)}` },
        `changed at event ${count(file.changed_at)}`) : "")));
  }

  /** Show a file: its contents as of the event, and its latest change's diff (for a
   * file not in the folder then, the diff still says when it went). */
  async open(path, signal) {
    this.path = path;
    for (const entry of this.list.querySelectorAll(".file-entry")) {
      entry.setAttribute("aria-current", String(entry.dataset.path === path));
    }
    const version = this.version;
    const link = h("a", { class: "button secondary small", id: "file-link", href: `#/s/${this.sessionId}/e/${version}/f/${encodeURIComponent(path)}` }, "Link");
    fill(this.file, h("h3", { class: "file-path" }, path, " ", link), h("p", { class: "muted" }, "Loading…"));
    const [contents, diff] = await Promise.allSettled([
      api.fileBytes(this.sessionId, path, version, signal),
      api.fileDiff(this.sessionId, path, version, signal),
    ]);
    if (path !== this.path || version !== this.version) return;
    fill(this.file,
      h("h3", { class: "file-path" }, path, " ", link),
      this.changeSection(diff),
      h("h4", {}, `Contents as of event ${count(version)}`),
      this.contentsSection(contents));
  }

  changeSection(result) {
    if (result.status === "rejected") return h("p", { class: "error-text", id: "file-diff-error" }, result.reason.message);
    const diff = result.value;
    const against = diff.previous_at ? [" against event ", this.eventLink(diff.previous_at)] : "";
    return h("section", { class: "file-change", id: "file-diff" },
      h("p", { id: "file-change" },
        `${CHANGES[diff.change] ?? diff.change} at event `, this.eventLink(diff.changed_at), against),
      diff.diff === null ? h("p", { class: "muted" }, diff.note)
        : diff.diff === "" ? h("p", { class: "muted" }, diff.note || "no change in its text")
          : h("pre", { class: "diff" }, diffLines(diff.diff)),
      diff.truncated ? h("p", { class: "muted" }, "The diff is cut here.") : "");
  }

  contentsSection(result) {
    if (result.status === "rejected") return h("p", { class: "muted", id: "file-contents" }, result.reason.message);
    const data = new Uint8Array(result.value);
    let text;
    try {
      // Streaming: a cut through a character is not taken for binary contents.
      text = new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(0, SHOWN_BYTES), { stream: data.length > SHOWN_BYTES });
    } catch {
      return h("p", { class: "muted", id: "file-contents" }, `Binary contents, ${size(data.length)}.`);
    }
    return [
      h("pre", { class: "file-contents", id: "file-contents" }, text),
      data.length > SHOWN_BYTES ? h("p", { class: "muted" }, `The first ${size(SHOWN_BYTES)} of ${size(data.length)}.`) : "",
    ];
  }

  eventLink(version) {
    return h("a", { href: `#/s/${this.sessionId}/e/${version}` }, count(version));
  }
}
