// Small DOM helpers: elements, forms, tables and error display.

import { describeError } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "class") element.className = value;
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export function errorBox(error) {
  const message = error && error.message ? error.message : describeError(error?.status, error?.body);
  return h("div", { class: "error", role: "alert" }, message);
}

export function flash(message, kind = "notice") {
  const box = document.getElementById("flash");
  replace(box, h("div", { class: kind }, message));
  setTimeout(() => { if (box.textContent === message) replace(box); }, 6000);
}

export function clearFlash() {
  replace(document.getElementById("flash"));
}

// A form whose submit runs `action(values)`; errors are shown inside the form, never swallowed.
export function form(className, fields, submitLabel, action) {
  const status = h("div");
  const button = h("button", { type: "submit" }, submitLabel);
  const element = h("form", { class: className }, fields, button, status);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(status);
    button.disabled = true;
    try {
      await action(new FormData(element), element);
    } catch (error) {
      replace(status, errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

export function field(label, name, attrs = {}) {
  return h("label", {}, label, h("input", { name, ...attrs }));
}

export function select(label, name, options, selected) {
  return h("label", {}, label,
    h("select", { name }, options.map(([value, text]) => h("option", { value, selected: value === selected }, text))));
}

export function checkbox(label, name, checked = false) {
  return h("label", { class: "check" }, h("input", { type: "checkbox", name, checked }), label);
}

// A button that runs an action and reports its failure next to itself.
export function actionButton(label, action, attrs = {}) {
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    if (attrs["data-confirm"] && !window.confirm(attrs["data-confirm"])) return;
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      button.after(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

export function table(headers, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  // Wide tables scroll inside their own box, never the page.
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell)))))));
}

export function copyField(label, value) {
  const input = h("input", { value, readonly: true, "aria-label": label });
  return h("div", { class: "copy" }, h("span", {}, label), input,
    h("button", { type: "button", class: "secondary", onclick: () => { input.select(); navigator.clipboard?.writeText(value); flash("Copied."); } }, "Copy"));
}

export function tabs(items, current) {
  return h("nav", { class: "tabs", "aria-label": "Sections" },
    items.map(([key, label, href]) => h("a", { href, "aria-current": key === current ? "page" : null }, label)));
}

export function formatDate(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

export function shortDigest(digest) {
  return digest ? digest.replace(/^(sha256:)?(.{12}).*$/, "$1$2") : "";
}

// The sign-in page, remembering the page that asked for it so that sign-in returns there.
export function signInHref() {
  const here = location.hash || "#/";
  return here.startsWith("#/signin") || here.startsWith("#/signup") ? "#/signin" : `#/signin?next=${encodeURIComponent(here)}`;
}

export function signInPrompt(what) {
  return h("section", {}, h("h1", {}, "Sign in required"),
    h("p", { class: "notice" }, `Sign in to see ${what}. `, h("a", { href: signInHref() }, "Sign in")));
}

export function refusal(error, what) {
  const status = error?.status;
  if (status === 401) {
    return h("div", { class: "error refusal", role: "alert" }, `Sign in to see ${what}. `, h("a", { href: signInHref() }, "Sign in"));
  }
  const text = status === 403 || status === 404
    ? `${what[0].toUpperCase()}${what.slice(1)} does not exist or you are not allowed to see it.`
    : error.message;
  return h("div", { class: "error refusal", role: "alert" }, text);
}
