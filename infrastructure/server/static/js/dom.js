// Small DOM and formatting helpers shared by the views.

/**
 * Build an element: h("a", {href: "#/", class: "brand"}, "text", childNode, ...).
 * Attributes named on* become event listeners; `dataset` and `style` take objects;
 * `false`, `null` and `undefined` attributes and children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === false || child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `sesn_<32 hex>` for a wire id or a UUID with dashes. */
export function wireId(id) {
  return id.startsWith("sesn_") ? id : `sesn_${id.replaceAll("-", "")}`;
}

/** The first characters of a session id, enough to tell sessions apart on screen. */
export function shortId(id) {
  return wireId(id).slice(5, 13);
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

export function when(iso) {
  return iso ? dateTime.format(new Date(iso)) : "";
}

/** A time of day with milliseconds, for log rows. */
export function clock(iso) {
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function count(n) {
  return Number(n ?? 0).toLocaleString("en");
}

export function tokens(usage) {
  return `${count(usage?.input_tokens)} in / ${count(usage?.output_tokens)} out`;
}

export function duration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** What calls cost ({usd, unpriced_calls}): dollars, "unknown" when no call had a
 * price, and how many had none when only some did. Unknown is never shown as $0. */
export function cost(value) {
  if (!value) return "";
  const unpriced = value.unpriced_calls ?? 0;
  if (value.usd === null || value.usd === undefined) return unpriced ? "cost unknown" : "";
  const dollars = `$${value.usd.toFixed(value.usd >= 0.01 ? 4 : 6)}`;
  return unpriced ? `${dollars} + ${count(unpriced)} unpriced` : dollars;
}

/** The status the engine gives a session: the API's own status field, unless the
 * extension names a finer one (``error`` after a failed turn, which the API calls idle). */
export function engineStatus(session) {
  return session?.x_agentjournal?.status ?? session?.status ?? "";
}

/** A status as a coloured pill; the word is always shown, colour only adds to it. */
export function statusPill(status) {
  return h("span", { class: `pill status-${status}` }, status);
}

/** A function that runs `fn` once `wait` ms have passed without another call. */
export function debounce(fn, wait) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
