// One session: its conversation, its raw audit log beside it, a replay slider over its
// events, its verification badge, its live events, its cost and timing, and what can be
// done to it. Opened as #/s/ID/e/N, it starts at event N; as #/s/ID/e/N/f/PATH, with its
// Files tab showing that file. A session whose hash chain is broken opens at its first
// bad event, and cannot be forked or sent to (the page says why).
//
// The "selected event" ties the parts together: the slider and the log both choose it,
// the conversation and state shown are the session as of it (replayed by the server),
// and "Fork" forks there. At the latest event the view follows the session live.

import { AnnotationsPanel } from "./annotations.js";
import { api, follow } from "./api.js";
import { drawConversation } from "./conversation.js";
import { CostsPanel } from "./costs.js";
import { cost, count, debounce, duration, engineStatus, fill, h, shortId, statusPill, tokens, when, wireId } from "./dom.js";
import { FilesPanel } from "./files.js";
import { AuditLog } from "./log.js";
import { Tabs } from "./tabs.js";
import { confirmAction, copy, notice } from "./ui.js";

const LIVE_KEPT = 60;

/** Where a session's tools run, as its `x_agentjournal.compute` says: a label and a hint. */
const COMPUTES = {
  "host": ["confined host", "tools run on this host in a bubblewrap sandbox: the work folder only, no other process, no secret"],
  "host-unconfined": ["UNCONFINED host", "tools run on this host as the server's own user, with its files, processes and network"],
  "docker": ["Docker sandbox", "tools run in a hardened Docker container"],
  "self_hosted": ["self-hosted workers", "tools run on the self-hosted environment's workers, in their own folders, which this server cannot see"],
};

/** Seconds between looks at a self-hosted session's work item, which changes without an event. */
const WORK_REFRESH_MS = 2000;

/** A self-hosted session's work item: its state (queued, starting, active, stopping,
 * stopped) and the worker that holds it, by the name it gave. */
function workTag(work) {
  const text = work ? `work ${work.state}${work.worker ? ` on ${work.worker}` : ""}` : "no work queued yet";
  return h("span", { id: "session-work", class: `work ${work?.state ?? "none"}`, title: work?.id ?? "" }, text);
}

/** The compute a session's tools run on, flagged when nothing confines them. */
function computeTag(compute) {
  const [label, hint] = COMPUTES[compute] ?? [compute ?? "", ""];
  return h("span", { id: "session-compute", class: compute === "host-unconfined" && "unconfined", title: hint }, label);
}

/** A one-line description of an API event for the live feed. */
function describe(event) {
  const text = (content) => (content ?? []).map((block) => block.text ?? "").join(" ");
  switch (event.type) {
    case "user.message":
    case "agent.message":
      return text(event.content);
    case "agent.tool_use":
    case "agent.custom_tool_use":
      return `${event.name} ${JSON.stringify(event.input)}`;
    case "agent.tool_result":
      return `${event.is_error ? "error: " : ""}${text(event.content)}`;
    case "span.model_request_end":
      return tokens(event.model_usage);
    case "session.status_idle":
      return event.stop_reason?.type ?? "";
    case "session.error":
      return event.error?.message ?? "";
    default:
      return "";
  }
}

export class SessionView {
  constructor(id, at = null, file = null) {
    this.id = wireId(id);
    this.file = file; // the file the address names, if any
    this.wanted = at; // the event the address names, if any
    this.head = 0; // the log's length
    this.at = 0; // the event the view shows the session as of
    this.shown = 0; // the version of the state on screen
    this.replaying = false;
    this.status = "";
    this.notice = notice();
    this.log = new AuditLog(this.id, (version) => this.replayTo(version));
    this.refreshSoon = debounce(() => this.refresh(), 100);
    this.build();
  }

  build() {
    const id = this.id;
    this.title = h("h1", { id: "session-title" }, "…");
    this.meta = h("p", { class: "meta" });
    this.badge = h("button", { type: "button", class: "badge checking", id: "verify-badge", disabled: true }, "Checking the hash chain…");
    this.hash = h("code", { id: "head-hash", class: "hash" }, "");
    this.copyButton = h("button", { type: "button", class: "small secondary", onclick: () => copy(this.hash.textContent, this.copyButton) }, "Copy");
    this.slider = h("input", {
      type: "range", id: "replay", min: "1", max: "1", value: "1", "aria-label": "Replay to event",
      oninput: () => this.replayTo(Number(this.slider.value)),
    });
    this.position = h("output", { id: "replay-position", for: "replay" });
    this.latest = h("button", { type: "button", class: "small secondary", onclick: () => this.replayTo(this.head) }, "Latest");
    this.stateLine = h("p", { class: "state-line", id: "replay-state", "aria-live": "polite" });
    this.forkButton = h("button", { type: "button", id: "fork", onclick: () => this.fork() }, "Fork here");
    this.eventLink = h("a", { class: "button secondary small", id: "event-link", title: "A link to the session at this event" }, "Link");
    this.costs = new CostsPanel(this.id);
    this.files = new FilesPanel(this.id);
    this.tamperNotice = h("div", { class: "notice tampered", id: "tampered-notice", role: "alert", hidden: true });
    this.annotations = new AnnotationsPanel(this.id, this.notice);
    this.conversation = h("div", { class: "conversation", id: "conversation", tabindex: "0", "aria-label": "Conversation" });
    this.prompt = h("textarea", {
      id: "prompt", rows: "2", placeholder: "Send a prompt (Ctrl+Enter)", "aria-label": "Prompt",
      onkeydown: (event) => { if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) this.send(event); },
    });
    this.interruptButton = h("button", { type: "button", class: "secondary", id: "interrupt", onclick: () => this.interrupt() }, "Interrupt");
    this.terminateButton = h("button", { type: "button", class: "danger", id: "terminate", onclick: () => this.terminate() }, "Terminate");
    this.liveStatus = h("span", { class: "live-status", id: "live-status" }, "connecting…");
    this.liveFeed = h("ol", { class: "live-feed", id: "live-feed", "aria-live": "polite" });

    this.sendButton = h("button", { type: "submit", id: "send" }, "Send");
    this.tabs = new Tabs([
      ["conversation", "Conversation", [
        this.conversation,
        h("form", { class: "composer", onsubmit: (event) => this.send(event) },
          this.prompt,
          h("div", { class: "buttons" }, this.sendButton, this.interruptButton))]],
      ["files", "Files", this.files.element],
    ], (tab) => this.files.show(tab === "files"));

    this.element = h(
      "div",
      { class: "session" },
      h("header", { class: "session-head" },
        h("div", { class: "heading" },
          h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "Sessions"), " / ", h("span", {}, shortId(id))),
          this.title, this.meta),
        h("div", { class: "head-side" },
          h("div", { class: "head-actions" },
            h("a", { class: "button secondary", href: `#/s/${id}/tree`, id: "tree-link" }, "Fork tree"),
            this.terminateButton),
          h("div", { class: "integrity" }, this.badge),
          h("div", { class: "integrity" }, h("span", { class: "muted" }, "head hash"), this.hash, this.copyButton))),
      h("div", { class: "replay" },
        h("label", { for: "replay" }, "Event"), this.slider, this.position, this.latest, this.eventLink, this.forkButton),
      this.stateLine,
      this.tamperNotice,
      this.notice.element,
      h("div", { class: "panes" },
        h("section", { class: "pane conversation-pane", "aria-label": "Conversation and files" },
          this.tabs.element,
          ...this.tabs.panels),
        h("section", { class: "pane log-pane", "aria-label": "Audit log" },
          h("h2", {}, "Audit log"),
          this.log.element,
          h("section", { class: "live" }, h("h2", {}, "Live ", this.liveStatus), this.liveFeed))),
      this.costs.element,
      this.annotations.element,
    );
  }

  /** Load and draw the session, then follow it live. */
  async open() {
    const [session, state, turns, tail] = await Promise.all([
      api.session(this.id), api.state(this.id), api.turns(this.id), api.logWindow(this.id, undefined, 200),
    ]);
    this.head = state.version;
    this.showSession(session, state);
    this.slider.max = String(this.head);
    this.at = this.head;
    this.showState(state, turns.data);
    this.log.open(this.head, tail.data);
    this.log.select(this.head);
    this.eventLink.href = `#/s/${this.id}/e/${this.head}`;
    this.files.at(this.head);
    if (this.file) {
      this.files.select(this.file);
      this.tabs.choose("files");
    }
    this.annotations.select(this.head);
    this.annotations.load();
    if (this.wanted !== null) this.replayTo(this.wanted);
    requestAnimationFrame(() => performance.mark("session-view-painted"));
    // Both read the whole log: the chain's check first, then the costs.
    this.verify().then(() => this.loadCosts());
    this.stream = follow(this.id, (event) => this.arrived(event), (status) => {
      this.liveStatus.textContent = status;
      this.liveStatus.className = `live-status ${status}`;
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.workTimer);
    this.stream?.close();
    this.log.close();
  }

  showSession(session, state) {
    document.title = `${session.title || shortId(this.id)} · agentjournal`;
    this.title.textContent = session.title || `Session ${shortId(this.id)}`;
    this.status = engineStatus(session);
    const lineage = state?.lineage ?? this.lineage;
    this.lineage = lineage;
    const spent = session.x_agentjournal;
    const onWorkers = spent?.compute === "self_hosted";
    clearTimeout(this.workTimer);
    if (onWorkers && session.x_agentjournal.work?.state !== "stopped") {
      this.workTimer = setTimeout(() => this.closed || this.refresh(), WORK_REFRESH_MS);
    }
    fill(this.meta,
      h("span", { id: "session-status" }, statusPill(this.status)), " ",
      h("span", {}, session.agent?.model?.id ?? ""), " · ",
      computeTag(session.x_agentjournal?.compute), " · ",
      onWorkers ? [workTag(session.x_agentjournal.work), " · "] : "",
      h("span", { id: "session-tokens" }, tokens(session.usage)), " · ",
      spent ? [h("span", { id: "session-cost" }, cost(spent.cost) || "no cost yet"), ` · model time ${duration(spent.model_ms)} · `] : "",
      h("span", { id: "session-events" }, `${count(this.head)} events`), " · ",
      `updated ${when(session.updated_at)}`,
      lineage ? [" · forked from ", h("a", { href: `#/s/${wireId(lineage.parent_id)}` }, shortId(lineage.parent_id)), ` at event ${lineage.parent_version}`] : "",
    );
    const closed = session.status === "terminated";
    this.terminateButton.disabled = closed;
    this.prompt.disabled = closed || Boolean(this.broken);
    this.sendButton.disabled = closed || Boolean(this.broken);
    this.interruptButton.disabled = session.status !== "running";
  }

  showState(state, turns) {
    this.shown = state.version;
    this.position.textContent = `${count(state.version)} of ${count(this.head)}`;
    this.slider.value = String(state.version);
    this.forkButton.textContent = `Fork at event ${count(state.version)}`;
    const replaying = state.version < this.head;
    this.stateLine.classList.toggle("replaying", replaying);
    fill(this.stateLine,
      replaying ? h("strong", {}, `Replaying: the session as of event ${count(state.version)}. `) : "As of the latest event: ",
      h("span", { id: "state-status" }, statusPill(state.status)),
      " · ", h("span", { id: "state-usage" }, tokens(state.usage)),
      " · ", h("span", { id: "state-messages" }, `${count(state.messages.length)} messages`),
      " · ", h("span", { id: "state-turns" }, `${count(state.turns)} turns`),
      state.last_error ? [" · ", h("span", { class: "error-text" }, state.last_error)] : "",
    );
    drawConversation(this.conversation, state.messages, turns, state.ran_on || {});
    if (!replaying) this.conversation.scrollTop = this.conversation.scrollHeight;
  }

  /** Show the session as of `version`: the slider and the log move at once, the state
   * follows as soon as the server has replayed it (one request at a time, the latest
   * position winning). */
  replayTo(version) {
    this.at = Math.max(1, Math.min(this.head, version));
    this.slider.value = String(this.at);
    this.eventLink.href = `#/s/${this.id}/e/${this.at}`;
    this.annotations.select(this.at);
    this.position.textContent = `${count(this.at)} of ${count(this.head)}`;
    if (this.log.selected !== this.at) this.log.select(this.at);
    this.files.at(this.at);
    this.loadState();
  }

  async loadState() {
    if (this.replaying) return;
    this.replaying = true;
    try {
      while (this.shown !== this.at) {
        const version = this.at;
        const [state, turns] = await Promise.all([api.state(this.id, version), api.turns(this.id, version)]);
        if (version === this.at) this.showState(state, turns.data);
      }
    } catch (error) {
      this.notice.show(error);
    } finally {
      this.replaying = false;
    }
  }

  /** The cost and timing panel reads the whole log, so it comes after the first paint
   * and the chain's check. */
  async loadCosts() {
    try {
      this.costs.show(await api.trace(this.id));
    } catch (error) {
      this.notice.show(error);
    }
  }

  async verify() {
    this.badge.className = "badge checking";
    try {
      const result = await api.verify(this.id);
      this.hash.textContent = result.head;
      this.badge.className = `badge ${result.ok ? "ok" : "broken"}`;
      if (result.ok) {
        this.badge.textContent = `✓ Chain intact · ${count(result.events)} events`;
        this.badge.disabled = true;
        this.badge.title = "Every event matches its hash and follows the one before it.";
      } else {
        this.badge.textContent = `✗ Chain broken at event ${result.broken.version}: ${result.broken.problem}`;
        this.badge.disabled = false;
        this.badge.title = "Show this event";
        this.badge.onclick = () => this.replayTo(result.broken.version);
        this.refuseActions(result.broken);
      }
    } catch (error) {
      this.badge.className = "badge broken";
      this.badge.textContent = `✗ Cannot verify: ${error.message}`;
    }
  }

  /** The log is not as it was recorded: show its first bad event (unless the address
   * named another), and refuse what would build on it, saying why. */
  refuseActions(broken) {
    const first = !this.broken;
    this.broken = broken;
    const why = `This session's log fails its check at event ${count(broken.version)} (${broken.problem}): `
      + "it is not as it was recorded, so it cannot be forked or continued here. "
      + "Export it to keep the evidence, or compare it with a copy kept elsewhere.";
    fill(this.tamperNotice, h("strong", {}, "Tampered log. "), why);
    this.tamperNotice.hidden = false;
    for (const control of [this.forkButton, this.prompt, this.sendButton]) {
      control.disabled = true;
      control.title = why;
    }
    if (first && this.wanted === null) this.replayTo(broken.version);
  }

  arrived(event) {
    let data = {};
    try {
      data = JSON.parse(event.data);
    } catch {
      // a keep-alive or a malformed event: nothing to show
    }
    const item = h("li", { class: "live-event" }, h("span", { class: "type" }, event.type), " ", h("span", { class: "muted" }, describe(data)));
    this.liveFeed.append(item);
    while (this.liveFeed.children.length > LIVE_KEPT) this.liveFeed.firstElementChild.remove();
    this.liveFeed.scrollTop = this.liveFeed.scrollHeight;
    this.ended ||= ["session.status_idle", "session.status_terminated", "session.error"].includes(event.type);
    this.refreshSoon();
  }

  /** New events were recorded: grow the log, follow them if at the latest event, and
   * check the chain again once the turn has ended. */
  async refresh() {
    try {
      const [session, added] = await Promise.all([api.session(this.id), api.logWindow(this.id, this.head, 1000)]);
      const following = this.at === this.head;
      if (added.version > this.head) {
        this.head = added.version;
        this.slider.max = String(this.head);
        this.log.store(added.data);
        this.log.grow(this.head);
        if (following) this.replayTo(this.head);
        else this.position.textContent = `${count(this.at)} of ${count(this.head)}`;
      }
      this.showSession(session);
      if (this.ended) {
        this.ended = false;
        this.verify().then(() => this.loadCosts());
      }
    } catch (error) {
      this.notice.show(error);
    }
  }

  async act(action) {
    this.notice.clear();
    try {
      return await action();
    } catch (error) {
      this.notice.show(error);
      return null;
    }
  }

  async send(event) {
    event.preventDefault();
    const text = this.prompt.value.trim();
    if (!text) return;
    const sent = await this.act(() => api.send(this.id, { type: "user.message", content: [{ type: "text", text }] }));
    if (sent) {
      this.prompt.value = "";
      if (this.at !== this.head) this.replayTo(this.head);
    }
  }

  async interrupt() {
    if (await confirmAction("Interrupt the running turn? It ends here, recorded as interrupted.", "Interrupt")) {
      await this.act(() => api.send(this.id, { type: "user.interrupt" }));
    }
  }

  async terminate() {
    const question = "Terminate this session? It takes no more turns and its sandbox is removed; its log stays.";
    if (await confirmAction(question, "Terminate")) {
      await this.act(() => api.terminate(this.id, "terminated in the session browser"));
      this.ended = true;
      this.refresh();
    }
  }

  async fork() {
    const forked = await this.act(() => api.fork(this.id, this.at));
    if (forked) location.hash = `#/s/${forked.id}`;
  }
}
