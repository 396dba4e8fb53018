/** Small DOM helpers for the labeling app: elements are built with textContent, never HTML. */

/** A new element with an optional class name and text. */
export function el(tag, className = "", text = "") {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text) element.textContent = text;
  return element;
}

/** A button with a visible label, an optional key hint, and an accessible name. */
export function button(label, { key = "", name = "", className = "", onClick } = {}) {
  const element = el("button", className);
  element.type = "button";
  element.append(el("span", "button-label", label));
  if (key) {
    const hint = el("kbd", "key-hint", key);
    hint.setAttribute("aria-hidden", "true");
    element.append(hint);
    element.setAttribute("aria-keyshortcuts", key);
  }
  element.setAttribute("aria-label", name || label);
  if (onClick) element.addEventListener("click", onClick);
  return element;
}
