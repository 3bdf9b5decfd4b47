// Widgets that several pages and sections show: list pagers and the quota usage bar.
// Built on the helpers of dom.js; pages import them from here, never from each other.

import { errorBox, formatBytes, h, replace } from "./dom.js";

// Previous, "Page n", Next under a paged list; a step without a callback is disabled.
export function pager(number, previous, next) {
  const step = (label, go) => h("button", { type: "button", class: "secondary", disabled: !go, onclick: go || undefined }, label);
  return h("div", { class: "pager" }, step("Previous", previous), h("span", {}, `Page ${number}`), step("Next", next));
}

// Pages through a list endpoint that answers with `next_page` tokens.
export function tokenPager(load, render) {
  const container = h("div");
  const pages = [null];
  let index = 0;
  const go = (step) => () => { index += step; show(); };
  async function show() {
    replace(container, h("p", { class: "muted" }, "Loading…"));
    try {
      const data = await load(pages[index]);
      if (data.next_page && pages.length === index + 1) pages.push(data.next_page);
      replace(container, render(data), pager(index + 1, index > 0 && go(-1), data.next_page && go(1)));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  show();
  return container;
}

// How much of a namespace's quota its images use.
export function usageBar(used, limit) {
  if (!limit) return h("p", {}, `${formatBytes(used || 0)} used, no quota set.`);
  const percent = Math.min(100, Math.round(((used || 0) / limit) * 100));
  const cls = percent >= 100 ? "bar full" : percent >= 80 ? "bar warn" : "bar";
  return h("div", {}, h("p", {}, `${formatBytes(used || 0)} of ${formatBytes(limit)} used (${percent}%)`),
    h("div", { class: cls, role: "progressbar", "aria-valuenow": String(percent), "aria-valuemin": "0", "aria-valuemax": "100" }, h("span", { style: `width:${percent}%` })));
}
