// The session browser's entry point: asks for a key, then shows the view the address
// names.
//
//   #/                      the sessions (#/?q=...&status=...&offset=...)
//   #/s/ID                  a session
//   #/s/ID/e/N              a session at event N
//   #/s/ID/e/N/f/PATH       a session at event N, its Files tab open at PATH (encoded)
//   #/search?q=...          words found inside sessions (and &tool=, &failed=, &model=, &status=)
//   #/s/ID/tree             its fork tree
//   #/diff/LEFT/RIGHT       two sessions side by side from where they part
//
// Any other address, and anything the server does not have, is a not-found page. A
// server run with --no-auth is never asked for a key.

import { api, apiKey, events, forgetApiKey, serverNeedsKey, setApiKey } from "./api.js";
import { DiffView } from "./diff.js";
import { h } from "./dom.js";
import { SessionList } from "./list.js";
import { SearchView } from "./search.js";
import { SessionView } from "./session.js";
import { ForkTreeView } from "./tree.js";

const main = document.getElementById("main");
let current = null;

function viewFor(address) {
  const [path, query] = address.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, id, kind, at] = parts;
  if (parts.length <= 1 && (first === undefined || first === "")) return new SessionList(new URLSearchParams(query ?? ""));
  if (first === "s" && id && parts.length === 2) return new SessionView(id);
  if (first === "s" && id && kind === "tree" && parts.length === 3) return new ForkTreeView(id);
  const event = /^[1-9][0-9]*$/.test(at ?? "") ? Number(at) : null;
  if (first === "s" && id && kind === "e" && event && parts.length === 4) return new SessionView(id, event);
  if (first === "s" && id && kind === "e" && event && parts[4] === "f" && parts[5] && parts.length === 6) return new SessionView(id, event, parts[5]);
  if (first === "search" && parts.length === 1) return new SearchView(new URLSearchParams(query ?? ""));
  if (first === "diff" && id && kind && parts.length === 3) return new DiffView(id, kind);
  return new NotFound(`Nothing is at ${address || "#/"}.`);
}

/** The page for an address that names nothing, or a session the server does not have. */
class NotFound {
  constructor(message) {
    this.element = h("section", { class: "not-found", id: "not-found" },
      h("h1", {}, "Not found"),
      h("p", {}, message),
      h("p", {}, h("a", { href: "#/" }, "All sessions")));
  }

  open() {
    document.title = "Not found · agentjournal";
  }
}

async function route() {
  current?.close?.();
  current = null;
  if (!apiKey() && (await serverNeedsKey())) {
    login();
    return;
  }
  const view = viewFor(location.hash);
  current = view;
  main.replaceChildren(view.element);
  main.focus({ preventScroll: true });
  try {
    await view.open();
  } catch (error) {
    if (current !== view) return;
    if (error.status === 404) {
      view.close?.();
      current = new NotFound(error.message);
      main.replaceChildren(current.element);
      current.open();
    } else {
      main.append(h("div", { class: "notice", role: "alert" }, error.message));
    }
  }
}

/** The key form. The key is checked with one small request before it is kept. */
function login(message = "") {
  document.title = "Sign in · agentjournal";
  const input = h("input", { type: "password", id: "api-key", autocomplete: "off", required: true, "aria-describedby": "login-help" });
  const error = h("p", { class: "notice", role: "alert", id: "login-error", hidden: !message }, message);
  const form = h(
    "form",
    { class: "login", onsubmit: (event) => submit(event) },
    h("h1", {}, "agentjournal"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { class: "muted", id: "login-help" },
      "One of the server's keys (AGENTJOURNAL_API_KEYS). It is kept in this tab only, and sent as a header."),
    error,
    h("button", { type: "submit" }, "Open"),
  );

  async function submit(event) {
    event.preventDefault();
    setApiKey(input.value.trim());
    try {
      await api.sessions({ limit: 1 });
    } catch (failure) {
      forgetApiKey();
      error.textContent = failure.status === 401 ? `The server refused this key: ${failure.message}` : failure.message;
      error.hidden = false;
      input.select();
      return;
    }
    route();
  }

  main.replaceChildren(form);
  input.focus();
}

events.addEventListener("unauthorized", (event) => {
  current?.close?.();
  current = null;
  login(`Please enter a key again: ${event.detail}`);
});

// The skip link moves the focus; following it as a link would change the route.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

document.getElementById("forget-key").addEventListener("click", () => {
  forgetApiKey();
  route();
});

window.addEventListener("hashchange", route);
route();
