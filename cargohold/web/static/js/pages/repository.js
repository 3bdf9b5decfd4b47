// One repository: tags, history, manifest, permissions, settings, notifications, mirror, builds,
// triggers, logs.

import { del, get, post, put, query } from "../api.js";
import {
  actionButton, copyField, errorBox, field, flash, form, formatBytes, formatDate, h, refusal, replace,
  select, shortDigest, table, tabs,
} from "../dom.js";
import { pager } from "../components.js";
import { auditLog } from "../logs.js";
import { renderMarkdown } from "../markdown.js";
import { buildsTab, triggersTab } from "../sections/builds.js";
import { manifestTab } from "../sections/manifest.js";
import { mirrorTab } from "../sections/mirror.js";
import { notificationsTab } from "../sections/notifications.js";
import { policiesTab } from "../sections/policies.js";

const ROLE_OPTIONS = [["read", "Read"], ["write", "Write"], ["admin", "Admin"]];

export async function repositoryPage(session, namespace, name, params) {
  const path = `${namespace}/${name}`;
  let repo;
  try {
    repo = await get(`repository/${path}`);
  } catch (error) {
    return h("section", {}, h("h1", {}, path), refusal(error, "this repository"));
  }
  const tab = params.get("tab") || "tags";
  const base = `#/repository/${path}?tab=`;
  const items = [["tags", "Tags", `${base}tags`], ["history", "Tag history", `${base}history`]];
  if (repo.can_admin) {
    items.push(["permissions", "Permissions", `${base}permissions`], ["settings", "Settings", `${base}settings`],
      ["notifications", "Notifications", `${base}notifications`], ["policies", "Tag policies", `${base}policies`],
      ["mirror", "Mirroring", `${base}mirror`], ["triggers", "Build triggers", `${base}triggers`]);
  }
  items.push(["builds", "Builds", `${base}builds`]);
  if (repo.can_admin) items.push(["logs", "Audit log", `${base}logs`]);
  if (params.get("digest")) items.push(["manifest", "Manifest", `${base}manifest&digest=${params.get("digest")}`]);

  const host = location.host;
  const sections = {
    tags: () => tagsTab(repo, path),
    history: () => historyTab(repo, path, params.get("tag") || ""),
    manifest: () => manifestTab(path, params.get("digest")),
    permissions: () => permissionsTab(path),
    settings: () => settingsTab(repo, path),
    notifications: () => notificationsTab(path),
    policies: () => policiesTab(`repository/${path}/autoprunepolicy/`, `repository/${path}/immutabilitypolicy/`),
    mirror: () => mirrorTab(path, repo),
    builds: () => buildsTab(repo, path, params.get("build")),
    triggers: () => triggersTab(repo, path),
    logs: () => auditLog(`repository/${path}`),
  };
  return h("section", {},
    h("h1", {}, path, " ", h("span", { class: repo.is_public ? "badge ok" : "badge" }, repo.is_public ? "public" : "private"),
      repo.state && repo.state !== "NORMAL" ? h("span", { class: "badge bad" }, repo.state) : null),
    descriptionCard(repo, path),
    h("div", { class: "card pull" },
      copyField("podman", `podman pull ${host}/${path}`),
      copyField("docker", `docker pull ${host}/${path}`)),
    tabs(items, tab),
    await (sections[tab] || sections.tags)());
}

function descriptionCard(repo, path) {
  const edit = repo.can_admin ? h("a", { href: `#/repository/${path}?tab=settings`, class: "edit-description" }, "Edit description") : null;
  if (!repo.description) return edit ? h("p", {}, edit) : null;
  return h("div", { class: "card description" }, renderMarkdown(repo.description), edit);
}

function tagActions(repo, path, tag, reload) {
  if (!repo.can_write) return "";
  const moveForm = form("inline", [field("Move to digest", "digest", { required: true, size: 30 })], "Move", async (values) => {
    await put(`repository/${path}/tag/${tag.name}`, { manifest_digest: values.get("digest").trim() });
    flash(`Tag ${tag.name} moved.`);
    reload();
  });
  const expiryForm = form("inline", [field("Expires", "expires", { type: "datetime-local" })], "Set expiration", async (values) => {
    const raw = values.get("expires");
    const expiration = raw ? Math.floor(new Date(raw).getTime() / 1000) : null;
    await put(`repository/${path}/tag/${tag.name}`, { expiration });
    flash(expiration ? `Tag ${tag.name} expires ${formatDate(expiration)}.` : `Expiration of ${tag.name} removed.`);
    reload();
  });
  return h("details", {}, h("summary", {}, "Change"),
    moveForm, expiryForm,
    actionButton("Delete tag", async () => {
      await del(`repository/${path}/tag/${tag.name}`);
      flash(`Tag ${tag.name} deleted.`);
      reload();
    }, { class: "danger", "data-confirm": `Delete tag ${tag.name}?` }));
}

// Tags selected on the current page, acted on together (delete, set expiration) as in Quay.
function bulkActions(path, selection, reload) {
  const count = h("span", { class: "muted", "aria-live": "polite" }, "No tag selected.");
  const expires = h("input", { type: "datetime-local", name: "bulk-expires", "aria-label": "Expiration of the selected tags" });
  const buttons = [];
  async function each(action, done) {
    const names = [...selection];
    for (const name of names) await action(name);
    flash(done(names));
    await reload();
  }
  const deleteButton = actionButton("Delete selected", () => each(
    (name) => del(`repository/${path}/tag/${encodeURIComponent(name)}`),
    (names) => `Deleted ${names.length} tag${names.length === 1 ? "" : "s"}: ${names.join(", ")}.`),
  { class: "danger", "data-confirm": "Delete the selected tags?" });
  const expiryButton = actionButton("Set expiration", () => {
    const expiration = expires.value ? Math.floor(new Date(expires.value).getTime() / 1000) : null;
    return each(
      (name) => put(`repository/${path}/tag/${encodeURIComponent(name)}`, { expiration }),
      (names) => (expiration ? `${names.length} tags expire ${formatDate(expiration)}.` : `Expiration removed from ${names.length} tags.`));
  }, { class: "secondary" });
  buttons.push(deleteButton, expiryButton);
  function update() {
    const size = selection.size;
    count.textContent = size ? `${size} tag${size === 1 ? "" : "s"} selected.` : "No tag selected.";
    for (const button of buttons) button.disabled = size === 0;
  }
  update();
  return { element: h("div", { class: "bulk", role: "group", "aria-label": "Selected tags" }, count, deleteButton, expires, expiryButton), update };
}

function tagsTab(repo, path) {
  const container = h("div");
  const selection = new Set();
  let page = 1;
  let filter = "";
  const bulk = repo.can_write ? bulkActions(path, selection, () => load()) : null;
  function selectBox(tag) {
    return h("input", {
      type: "checkbox", class: "select-tag", value: tag.name, "aria-label": `Select tag ${tag.name}`,
      checked: selection.has(tag.name),
      onchange: (event) => {
        if (event.target.checked) selection.add(tag.name); else selection.delete(tag.name);
        bulk.update();
      },
    });
  }
  async function load() {
    replace(container, h("p", { class: "muted" }, "Loading…"));
    selection.clear();
    bulk?.update();
    try {
      const data = await get(`repository/${path}/tag/${query({ onlyActiveTags: true, limit: 50, page, filter_tag_name: filter ? `like:${filter}` : "" })}`);
      const boxes = [];
      const rows = data.tags.map((tag) => {
        const box = bulk ? selectBox(tag) : null;
        if (box) boxes.push(box);
        return [
          box,
          h("a", { href: `#/repository/${path}?tab=manifest&digest=${tag.manifest_digest}` }, h("strong", {}, tag.name)),
          h("a", { href: `#/repository/${path}?tab=manifest&digest=${tag.manifest_digest}`, class: "mono", title: tag.manifest_digest }, shortDigest(tag.manifest_digest)),
          tag.is_manifest_list ? "multi-arch" : formatBytes(tag.size),
          tag.last_modified ? formatDate(tag.last_modified) : "",
          tag.expiration ? formatDate(tag.expiration) : h("span", { class: "muted" }, "never"),
          h("a", { href: `#/repository/${path}?tab=history&tag=${encodeURIComponent(tag.name)}`, "aria-label": `History of ${tag.name}` }, "history"),
          tagActions(repo, path, tag, load),
        ].filter((cell) => cell !== null);
      });
      const all = bulk ? h("input", {
        type: "checkbox", "aria-label": "Select every tag on this page",
        onchange: (event) => {
          for (const box of boxes) {
            box.checked = event.target.checked;
            if (box.checked) selection.add(box.value); else selection.delete(box.value);
          }
          bulk.update();
        },
      }) : null;
      const headers = [all, "Tag", "Manifest", "Size", "Last modified", "Expires", h("span", { class: "visually-hidden" }, "History"), h("span", { class: "visually-hidden" }, "Actions")].filter((cell) => cell !== null);
      replace(container,
        table(headers, rows, "This repository has no tags."),
        pager(page, page > 1 && (() => { page -= 1; load(); }), data.has_additional && (() => { page += 1; load(); })));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  const filterForm = form("inline", [field("Filter tags", "filter", { type: "search" })], "Filter", async (values) => {
    filter = values.get("filter").trim();
    page = 1;
    await load();
  });
  const addForm = repo.can_write ? form("inline", [
    field("New tag", "tag", { required: true }),
    field("Manifest digest", "digest", { required: true, size: 40 }),
  ], "Add tag", async (values) => {
    await put(`repository/${path}/tag/${values.get("tag").trim()}`, { manifest_digest: values.get("digest").trim() });
    flash(`Tag ${values.get("tag")} created.`);
    await load();
  }) : null;
  load();
  return h("div", {}, filterForm, bulk?.element, container, addForm ? h("h2", {}, "Add a tag") : null, addForm);
}

function historyTab(repo, path, tagName) {
  const container = h("div");
  let page = 1;
  async function load() {
    try {
      const data = await get(`repository/${path}/tag/${query({ onlyActiveTags: false, limit: 50, page, specificTag: tagName })}`);
      const now = Date.now() / 1000;
      const rows = data.tags.map((tag) => {
        const ended = tag.end_ts && tag.end_ts <= now;
        return [
          tag.name,
          h("span", { class: "mono", title: tag.manifest_digest }, shortDigest(tag.manifest_digest)),
          tag.start_ts ? formatDate(tag.start_ts) : "",
          tag.end_ts ? formatDate(tag.end_ts) : h("span", { class: "badge ok" }, "current"),
          tag.reversion ? "restored" : "",
          ended && repo.can_write ? actionButton(`Restore ${tag.name}`, async () => {
            await post(`repository/${path}/tag/${tag.name}/restore`, { manifest_digest: tag.manifest_digest });
            flash(`Tag ${tag.name} restored to ${shortDigest(tag.manifest_digest)}.`);
            await load();
          }, { class: "secondary" }) : "",
        ];
      });
      replace(container, table(["Tag", "Manifest", "From", "Until", "", ""], rows, "No history."),
        pager(page, page > 1 && (() => { page -= 1; load(); }), data.has_additional && (() => { page += 1; load(); })));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  load();
  return h("div", {}, tagName ? h("p", {}, "History of tag ", h("strong", {}, tagName), " — ", h("a", { href: `#/repository/${path}?tab=history` }, "all tags")) : null, container);
}

function entityPicker(label, name) {
  const input = h("input", { name, required: true, list: `${name}-suggestions`, autocomplete: "off" });
  const options = h("datalist", { id: `${name}-suggestions` });
  input.addEventListener("input", async () => {
    const prefix = input.value.trim();
    if (prefix.length < 2) return;
    try {
      const data = await get(`entities/${encodeURIComponent(prefix)}${query({ namespace: location.hash.split("/")[2] })}`);
      replace(options, (data.results || []).map((entity) => h("option", { value: entity.name }, `${entity.kind}${entity.is_robot ? " (robot)" : ""}`)));
    } catch { /* suggestions are a convenience; typing the full name still works */ }
  });
  return h("label", {}, label, input, options);
}

async function permissionsTab(path) {
  const container = h("div");
  async function load() {
    try {
      const [users, teams] = await Promise.all([get(`repository/${path}/permissions/user/`), get(`repository/${path}/permissions/team/`)]);
      const rows = [];
      for (const [name, grant] of Object.entries(users.permissions || {})) {
        rows.push([name, grant.is_robot ? "robot" : "user", grant.role, actionButton("Remove", async () => {
          await del(`repository/${path}/permissions/user/${name}`);
          await load();
        }, { class: "secondary", "aria-label": `Remove ${name}` })]);
      }
      for (const [name, grant] of Object.entries(teams.permissions || {})) {
        rows.push([name, "team", grant.role, actionButton("Remove", async () => {
          await del(`repository/${path}/permissions/team/${name}`);
          await load();
        }, { class: "secondary", "aria-label": `Remove team ${name}` })]);
      }
      replace(container, table(["Name", "Kind", "Role", ""], rows, "No explicit permissions."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const grant = form("inline", [
    entityPicker("User, robot or team", "entity"),
    select("Kind", "kind", [["user", "User or robot"], ["team", "Team"]], "user"),
    select("Role", "role", ROLE_OPTIONS, "read"),
  ], "Grant", async (values) => {
    const kind = values.get("kind") === "team" ? "team" : "user";
    await put(`repository/${path}/permissions/${kind}/${values.get("entity").trim()}`, { role: values.get("role") });
    flash("Permission saved.");
    await load();
  });
  return h("div", {}, container, h("h2", {}, "Grant access"), grant);
}

function descriptionEditor(repo, path) {
  const preview = h("div", { class: "preview", "aria-live": "polite" }, renderMarkdown(repo.description || ""));
  const text = h("textarea", { name: "description", rows: 8, oninput: () => replace(preview, renderMarkdown(text.value)) }, repo.description || "");
  return h("div", { class: "card description-editor" }, h("h2", {}, "Description"),
    h("p", { class: "muted" }, "Markdown: headings, emphasis, code, lists, quotes and links. HTML is shown as text."),
    form("stack", [h("label", {}, "Description", text)], "Save", async (values) => {
      await put(`repository/${path}`, { description: values.get("description") });
      repo.description = values.get("description");
      flash("Description saved.");
    }),
    h("h3", {}, "Preview"), preview);
}

function settingsTab(repo, path) {
  const visibility = repo.is_public ? "private" : "public";
  return h("div", { class: "grid2" },
    descriptionEditor(repo, path),
    h("div", { class: "card" }, h("h2", {}, "Visibility"),
      h("p", {}, `This repository is ${repo.is_public ? "public" : "private"}.`),
      actionButton(`Make ${visibility}`, async () => {
        await post(`repository/${path}/changevisibility`, { visibility });
        location.reload();
      }, { "data-confirm": `Make ${path} ${visibility}?` })),
    h("div", { class: "card" }, h("h2", {}, "State"),
      form("inline", [select("State", "state", [["NORMAL", "Normal"], ["READ_ONLY", "Read only"], ["MIRROR", "Mirror"]], repo.state || "NORMAL")], "Change state", async (values) => {
        await put(`repository/${path}/changestate`, { state: values.get("state") });
        flash(`State changed to ${values.get("state")}.`);
      })),
    h("div", { class: "card" }, h("h2", {}, "Delete"),
      actionButton("Delete repository", async () => {
        await del(`repository/${path}`);
        location.hash = "#/";
      }, { class: "danger", "data-confirm": `Delete ${path} and all its tags?` })));
}
