// Small DOM helpers. User text always goes in as text nodes (never as HTML).

/** Create an element: h("li", {class: "x", dataset: {id: 1}}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Set an element's text only when it changed (keeps layout and screen readers calm). */
export function setText(el, text) {
  const value = text == null ? "" : String(text);
  if (el && el.textContent !== value) el.textContent = value;
}

/** Read JSON that the server rendered with Django's json_script filter. */
export function readJson(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

/** Copy buttons: <button data-copy="#input-id">. Falls back to selecting the text. */
export function wireCopyButtons(root = document) {
  root.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = "value" in source ? source.value : source.textContent;
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      if (source.select) source.select();
      button.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { button.textContent = label; }, 1600);
  });
}

/** One line of transient feedback in a role=status element. */
export function toast(el, message, { error = false, ms = 4000 } = {}) {
  if (!el) return;
  el.textContent = message;
  el.classList.toggle("toast-error", error);
  el.hidden = false;
  clearTimeout(el._timer);
  el._timer = setTimeout(() => { el.hidden = true; }, ms);
}

/** Initials for an avatar circle. */
export function initials(name) {
  const words = String(name || "?").split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  if (!words.length) return "?";
  const letters = words.length > 1 ? words[0][0] + words[1][0] : words[0].slice(0, 2);
  return letters.toUpperCase();
}
