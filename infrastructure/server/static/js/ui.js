// Pieces of interface the views share: confirmations, error notices, copying.

import { h } from "./dom.js";

/**
 * Ask before doing something that cannot be undone. A modal <dialog>: focus stays in
 * it, Escape cancels, and the safe choice has the focus first.
 */
export function confirmAction(question, action) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => dialog.close("cancel") }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": question, onclose: () => { dialog.remove(); resolve(dialog.returnValue === "ok"); } },
      h("p", {}, question),
      h("div", { class: "buttons" },
        cancel,
        h("button", { type: "button", class: "danger", onclick: () => dialog.close("ok") }, action)),
    );
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** A region that announces errors (and clears them). */
export function notice() {
  const element = h("div", { class: "notice", role: "alert", hidden: true });
  return {
    element,
    show(error) {
      element.textContent = error?.message ?? String(error);
      element.hidden = false;
    },
    clear() {
      element.textContent = "";
      element.hidden = true;
    },
  };
}

/** Put `text` on the clipboard; says "Copied" on `button` for a moment. */
export async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard access (an insecure context): select the text for the user instead.
    const area = h("textarea", { class: "offscreen", readonly: true }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
}
