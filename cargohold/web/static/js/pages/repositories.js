// The repository list (own namespace, organizations, starred, public), search and creation.

import { del, get, post, query } from "../api.js";
import {
  actionButton, field, form, formatBytes, formatDate, h, replace, select, signInPrompt, table, tabs,
} from "../dom.js";
import { pager, tokenPager } from "../components.js";

function starButton(repo) {
  let starred = Boolean(repo.is_starred);
  const button = actionButton(starred ? "★ Unstar" : "☆ Star", async () => {
    const path = `${repo.namespace}/${repo.name}`;
    if (starred) await del(`user/starred/${path}`);
    else await post("user/starred", { namespace: repo.namespace, repository: repo.name });
    starred = !starred;
    button.textContent = starred ? "★ Unstar" : "☆ Star";
    button.setAttribute("aria-pressed", String(starred));
  }, { class: "secondary", "aria-pressed": String(starred), "aria-label": `Star ${repo.namespace}/${repo.name}` });
  return button;
}

function repoSize(repo) {
  return repo.quota_report ? repo.quota_report.quota_bytes : null;
}

const SORTS = {
  name: (a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
  size: (a, b) => (repoSize(b) ?? -1) - (repoSize(a) ?? -1),
  modified: (a, b) => (b.last_modified ?? 0) - (a.last_modified ?? 0),
};

function repoRows(repositories, session) {
  return repositories.map((repo) => [
    h("a", { href: `#/repository/${repo.namespace}/${repo.name}` }, `${repo.namespace}/${repo.name}`),
    repo.is_public ? h("span", { class: "badge ok" }, "public") : h("span", { class: "badge" }, "private"),
    repo.description ? h("span", { class: "description" }, repo.description.split("\n")[0]) : "",
    repoSize(repo) === null ? "" : h("span", { "data-bytes": String(repoSize(repo)) }, formatBytes(repoSize(repo))),
    repo.last_modified ? formatDate(repo.last_modified) : h("span", { class: "muted" }, "never"),
    session.user ? starButton(repo) : "",
  ]);
}

// Sorting and the name filter apply to the repositories of the page shown.
function repoTable(data, session, view) {
  const text = view.filter.toLowerCase();
  const shown = (data.repositories || [])
    .filter((repo) => !text || `${repo.namespace}/${repo.name}`.toLowerCase().includes(text))
    .sort(SORTS[view.sort] || SORTS.name);
  return table(["Repository", "Visibility", "Description", "Size", "Last modified", h("span", { class: "visually-hidden" }, "Star")],
    repoRows(shown, session), "No repositories to show.");
}

function listControls(view, rerender) {
  const sort = h("select", { name: "sort", onchange: () => { view.sort = sort.value; rerender(); } },
    [["name", "Name"], ["size", "Size (largest first)"], ["modified", "Last modified (newest first)"]]
      .map(([value, label]) => h("option", { value, selected: value === view.sort }, label)));
  const filter = h("input", { type: "search", name: "filter", autocomplete: "off", oninput: () => { view.filter = filter.value.trim(); rerender(); } });
  return h("div", { class: "inline list-controls" }, h("label", {}, "Filter this page", filter), h("label", {}, "Sort by", sort));
}

function searchResults(session, text) {
  const container = h("div");
  let page = 1;
  async function show() {
    try {
      const data = await get(`find/repositories${query({ query: text, page })}`);
      const rows = (data.results || []).map((repo) => [
        h("a", { href: `#/repository/${repo.namespace?.name ?? repo.namespace}/${repo.name}` }, `${repo.namespace?.name ?? repo.namespace}/${repo.name}`),
        repo.is_public ? "public" : "private",
        repo.description || "",
      ]);
      replace(container, table(["Repository", "Visibility", "Description"], rows, "No repository matches."),
        pager(page, page > 1 && (() => { page -= 1; show(); }), data.has_additional && (() => { page += 1; show(); })));
    } catch (error) {
      replace(container, h("div", { class: "error" }, error.message));
    }
  }
  show();
  return container;
}

export function repositoryListPage(session, params = new URLSearchParams(location.hash.split("?")[1] || "")) {
  const user = session.user;
  const view = params.get("view") || (user ? "mine" : "public");
  const items = [];
  if (user) {
    items.push(["mine", "Mine", "#/?view=mine"]);
    for (const org of user.organizations || []) items.push([`org:${org.name}`, org.name, `#/?view=org:${encodeURIComponent(org.name)}`]);
    items.push(["starred", "Starred", "#/?view=starred"]);
  }
  items.push(["public", "Public", "#/?view=public"]);

  let filters;
  if (view === "mine") filters = { namespace: user.username };
  else if (view.startsWith("org:")) filters = { namespace: view.slice(4) };
  else if (view === "starred") filters = { starred: true };
  else filters = { public: true };

  const results = h("div");
  const listView = { sort: "name", filter: "" };
  const tableBox = h("div");
  let shown = null;
  const rerender = () => { if (shown) replace(tableBox, repoTable(shown, session, listView)); };
  const list = h("div", {}, listControls(listView, rerender), tokenPager(
    (token) => get(`repository${query({ ...filters, last_modified: true, next_page: token })}`),
    (data) => { shown = data; rerender(); return tableBox; }));
  replace(results, list);

  const search = form("inline", [field("Search repositories", "q", { type: "search" })], "Search", async (values) => {
    const text = values.get("q").trim();
    replace(results, text ? searchResults(session, text) : list);
  });

  return h("section", {},
    h("h1", {}, "Repositories"),
    user ? h("p", {}, h("a", { href: "#/new-repository", class: "button" }, "Create repository"), " ",
      h("a", { href: "#/new-organization" }, "Create organization")) : null,
    tabs(items, view),
    search,
    results);
}

export function newRepositoryPage(session) {
  const user = session.user;
  if (!user) return signInPrompt("the repository form");
  const namespaces = [[user.username, user.username], ...(user.organizations || []).map((org) => [org.name, org.name])];
  return h("section", { class: "card" },
    h("h1", {}, "Create repository"),
    form("stack", [
      select("Namespace", "namespace", namespaces, user.username),
      field("Name", "repository", { required: true, pattern: "[a-z0-9][a-z0-9._/-]*" }),
      field("Description", "description"),
      select("Visibility", "visibility", [["private", "Private"], ["public", "Public"]], "private"),
    ], "Create", async (values) => {
      const body = Object.fromEntries(values.entries());
      body.repo_kind = "image";
      await post("repository", body);
      location.hash = `#/repository/${body.namespace}/${body.repository}`;
    }));
}
