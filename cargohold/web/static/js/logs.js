// Audit logs of a repository, an organization, the signed-in user or the whole installation:
// a bar chart of actions per day from .../aggregatelogs, filters and a paged table of entries.
// Entries are shown as words and key/value text, never as raw JSON.

import { get, query } from "./api.js";
import { tokenPager } from "./components.js";
import { errorBox, field, h, replace } from "./dom.js";

const PAGE_SIZE = 20;
const MAX_FETCHES = 10;
const DAY_MS = 86_400_000;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
  element.append(...children.flat());
  return element;
}

export function kindLabel(kind) {
  const text = String(kind || "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// <input type=date> gives YYYY-MM-DD; the logs API takes Quay's MM/DD/YYYY.
function apiDay(value) {
  const [year, month, day] = value.split("-");
  return `${month}/${day}/${year}`;
}

function flatten(value, prefix = "") {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return [[prefix, value.map((item) => (typeof item === "object" ? flatten(item).map(([k, v]) => `${k}=${v}`).join(" ") : String(item))).join(", ")]];
  if (typeof value === "object") {
    return Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? `${prefix}.${key}` : key));
  }
  return [[prefix, String(value)]];
}

export function details(metadata) {
  const pairs = flatten(metadata || {});
  if (!pairs.length) return "";
  return h("dl", { class: "kv" }, pairs.map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

function chart(aggregated, startDay, endDay, kind) {
  const counts = new Map();
  for (const item of aggregated) {
    if (kind && item.kind !== kind) continue;
    const day = isoDay(new Date(item.datetime));
    counts.set(day, (counts.get(day) || 0) + item.count);
  }
  const days = [];
  for (let time = Date.parse(startDay); time <= Date.parse(endDay); time += DAY_MS) days.push(isoDay(new Date(time)));
  const max = Math.max(1, ...counts.values());
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const width = 700;
  const height = 160;
  const plot = height - 30;
  const slot = width / days.length;
  const bars = days.map((day, index) => {
    const count = counts.get(day) || 0;
    const barHeight = Math.round((count / max) * (plot - 14));
    const x = index * slot + slot * 0.15;
    return svg("g", { class: "day" },
      svg("rect", { x: x.toFixed(1), y: plot - barHeight, width: (slot * 0.7).toFixed(1), height: barHeight, class: "day-bar" },
        svg("title", {}, `${day}: ${count}`)),
      count ? svg("text", { x: (x + slot * 0.35).toFixed(1), y: plot - barHeight - 3, "text-anchor": "middle", class: "count" }, String(count)) : [],
      index % Math.ceil(days.length / 8) === 0
        ? svg("text", { x: (x + slot * 0.35).toFixed(1), y: height - 8, "text-anchor": "middle", class: "axis" }, day.slice(5))
        : []);
  });
  const label = `Actions per day from ${startDay} to ${endDay}: ${total} in total`;
  return h("figure", { class: "chart" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, "data-total": String(total) },
      svg("title", {}, label),
      svg("line", { x1: 0, y1: plot, x2: width, y2: plot, class: "baseline" }),
      bars),
    h("figcaption", { class: "muted" }, `${total} action${total === 1 ? "" : "s"} from ${startDay} to ${endDay}`));
}

function entryRow(entry, withNamespace) {
  return [
    h("time", { datetime: new Date(entry.datetime).toISOString() }, new Date(entry.datetime).toLocaleString()),
    kindLabel(entry.kind),
    entry.performer ? entry.performer.name : h("span", { class: "muted" }, "anonymous"),
    withNamespace ? (entry.namespace ? entry.namespace.name : "") : null,
    details(entry.metadata),
    entry.ip || "",
  ].filter((cell) => cell !== null);
}

function entriesTable(entries, withNamespace) {
  if (!entries.length) return h("p", { class: "muted" }, "No entries match.");
  const headers = ["When", "Action", "By", withNamespace ? "Namespace" : null, "Details", "IP"].filter(Boolean);
  return h("div", { class: "table-wrap" }, h("table", { class: "logs" },
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, entries.map((entry) => h("tr", {}, entryRow(entry, withNamespace).map((cell) => h("td", {}, cell)))))));
}

// `base` is the API path that /logs and /aggregatelogs hang from: repository/ns/name,
// organization/name, user or superuser.
export function auditLog(base, { withNamespace = false } = {}) {
  const today = new Date();
  const state = {
    start: isoDay(new Date(today.getTime() - 6 * DAY_MS)),
    end: isoDay(today),
    kind: "",
    performer: "",
  };
  const chartBox = h("div", { class: "card" });
  const tableBox = h("div");
  const kindSelect = h("select", { name: "kind", "aria-label": "Action" }, h("option", { value: "" }, "All actions"));
  const filters = h("form", { class: "inline", "aria-label": "Filter the audit log" },
    h("label", {}, "Action", kindSelect),
    field("Performer", "performer", { type: "search", autocomplete: "off" }),
    field("From", "start", { type: "date", value: state.start, required: true }),
    field("To", "end", { type: "date", value: state.end, required: true }),
    h("button", { type: "submit" }, "Apply"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = new FormData(filters);
    Object.assign(state, {
      kind: values.get("kind"), performer: values.get("performer").trim(),
      start: values.get("start"), end: values.get("end"),
    });
    show();
  });

  const period = () => ({ starttime: apiDay(state.start), endtime: apiDay(state.end), performer: state.performer });
  const matches = (entry) => (!state.kind || entry.kind === state.kind)
    && (!state.performer || entry.performer?.name === state.performer);

  // Filters the API does not apply (the kind; the performer of repository logs) are applied
  // here, reading on until a page is full or the period's entries run out.
  async function loadPage(token) {
    const entries = [];
    let next = token;
    for (let fetched = 0; fetched < MAX_FETCHES; fetched += 1) {
      const data = await get(`${base}/logs${query({ ...period(), next_page: next })}`);
      entries.push(...(data.logs || []).filter(matches));
      next = data.next_page || null;
      if (!next || entries.length >= PAGE_SIZE) break;
    }
    return { entries, next_page: next };
  }

  async function showChart() {
    replace(chartBox, h("p", { class: "muted" }, "Loading…"));
    try {
      const data = await get(`${base}/aggregatelogs${query(period())}`);
      const aggregated = data.aggregated || [];
      const kinds = [...new Set(aggregated.map((item) => item.kind))].sort();
      if (state.kind && !kinds.includes(state.kind)) kinds.push(state.kind);
      replace(kindSelect, h("option", { value: "" }, "All actions"),
        kinds.map((kind) => h("option", { value: kind, selected: kind === state.kind }, kindLabel(kind))));
      replace(chartBox, chart(aggregated, state.start, state.end, state.kind));
    } catch (error) {
      replace(chartBox, errorBox(error));
    }
  }

  // A new pager on every filter change starts again at the first page.
  function show() {
    showChart();
    replace(tableBox, tokenPager(loadPage, ({ entries }) => entriesTable(entries, withNamespace)));
  }
  show();
  return h("div", { class: "audit-log" }, filters, chartBox, tableBox);
}
