// The superuser panel: users, organizations, quotas, service keys, registry size, builds.

import { del, get, post, put } from "../api.js";
import {
  actionButton, copyField, errorBox, field, flash, form, formatBytes, formatDate, h, replace, select, signInPrompt, table,
  tabs,
} from "../dom.js";
import { renderMessageBanner, severityLabel } from "../messages.js";
import { auditLog } from "../logs.js";

export async function superuserPage(session, params) {
  if (!session.user) return signInPrompt("the superuser panel");
  if (!session.user.super_user) {
    return h("section", {}, h("h1", {}, "Superuser panel"),
      h("div", { class: "error refusal", role: "alert" }, "This page is for superusers only. You are not allowed to see it."));
  }
  const tab = params.get("tab") || "users";
  const items = [
    ["users", "Users", "#/superuser?tab=users"],
    ["organizations", "Organizations", "#/superuser?tab=organizations"],
    ["quotas", "Quotas", "#/superuser?tab=quotas"],
    ["keys", "Service keys", "#/superuser?tab=keys"],
    ["size", "Registry size", "#/superuser?tab=size"],
    ["builds", "Builds", "#/superuser?tab=builds"],
    ["logs", "Audit log", "#/superuser?tab=logs"],
    ["messages", "Messages", "#/superuser?tab=messages"],
  ];
  const sections = {
    users: usersTab,
    organizations: organizationsTab,
    quotas: () => quotasTab(params.get("namespace") || ""),
    keys: keysTab,
    size: sizeTab,
    builds: () => buildTab(params.get("build") || ""),
    logs: () => auditLog("superuser", { withNamespace: true }),
    messages: messagesTab,
  };
  return h("section", {}, h("h1", {}, "Superuser panel"), tabs(items, tab), await (sections[tab] || usersTab)());
}

async function usersTab() {
  const container = h("div");
  const created = h("div");
  async function load() {
    try {
      const data = await get("superuser/users/");
      const rows = (data.users || []).map((user) => [
        user.username, user.email || "", user.enabled ? "enabled" : h("span", { class: "badge bad" }, "disabled"),
        user.super_user ? "superuser" : "",
        h("span", {},
          actionButton(user.enabled ? "Disable" : "Enable", async () => {
            await put(`superuser/users/${user.username}`, { enabled: !user.enabled });
            await load();
          }, { class: "secondary" }), " ",
          actionButton("Set password", async () => {
            const password = window.prompt(`New password for ${user.username} (at least 8 characters)`);
            if (!password) return;
            await put(`superuser/users/${user.username}`, { password });
            flash(`Password of ${user.username} changed.`);
          }, { class: "secondary" }), " ",
          actionButton("Delete", async () => {
            await del(`superuser/users/${user.username}`);
            await load();
          }, { class: "danger", "data-confirm": `Delete user ${user.username}?` })),
      ]);
      replace(container, table(["User", "Email", "State", "", ""], rows, "No users."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("inline", [field("Username", "username", { required: true }), field("Email", "email", { type: "email" })], "Create user", async (values, element) => {
    const body = { username: values.get("username") };
    if (values.get("email")) body.email = values.get("email");
    const data = await post("superuser/users/", body);
    replace(created, h("div", { class: "card" }, h("p", {}, `User ${data.username} created. Their temporary password:`), copyField("Password", data.password)));
    element.reset();
    await load();
  });
  return h("div", {}, created, container, h("h2", {}, "New user"), create);
}

async function organizationsTab() {
  const container = h("div");
  async function load() {
    try {
      const data = await get("superuser/organizations/");
      const rows = (data.organizations || []).map((org) => [
        h("a", { href: `#/organization/${org.name}` }, org.name), org.email || "",
        h("span", {},
          actionButton("Rename", async () => {
            const name = window.prompt(`New name for ${org.name}`);
            if (!name) return;
            await put(`superuser/organizations/${org.name}`, { name });
            await load();
          }, { class: "secondary" }), " ",
          actionButton("Delete", async () => {
            await del(`superuser/organizations/${org.name}`);
            await load();
          }, { class: "danger", "data-confirm": `Delete organization ${org.name} and everything in it?` })),
      ]);
      replace(container, table(["Organization", "Email", ""], rows, "No organizations."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  return container;
}

async function quotasTab(namespace) {
  const result = h("div");
  async function show(name, kind) {
    const base = kind === "user" ? `superuser/users/${name}/quota` : `superuser/organization/${name}/quota`;
    try {
      const quotas = await get(base);
      const quota = (quotas || [])[0];
      const parts = [h("h2", {}, `Quota of ${name}`)];
      if (quota) {
        // Limits live under the organization quota path (superusers may use it); users have none.
        const limitBase = kind === "user" ? null : `organization/${name}/quota/${quota.id}/limit`;
        parts.push(h("p", {}, `Limit: ${formatBytes(quota.limit_bytes)}`),
          table(["Limit type", "Threshold", ""], (quota.limits || []).map((limit) => [limit.type, `${limit.limit_percent}%`,
            limitBase ? actionButton("Remove", async () => { await del(`${limitBase}/${limit.id}`); await show(name, kind); }, { class: "secondary" }) : ""]),
          "No limits set."),
          form("inline", [field("New limit in bytes", "limit_bytes", { type: "number", min: 1, required: true })], "Change limit", async (values) => {
            await put(`${base}/${quota.id}`, { limit_bytes: Number(values.get("limit_bytes")) });
            await show(name, kind);
          }),
          limitBase ? form("inline", [select("Type", "type", [["Warning", "Warning"], ["Reject", "Reject"]], "Reject"),
            field("Threshold %", "threshold_percent", { type: "number", min: 1, max: 100, required: true })], "Add limit", async (values) => {
            await post(limitBase, { type: values.get("type"), threshold_percent: Number(values.get("threshold_percent")) });
            await show(name, kind);
          }) : null,
          actionButton("Delete quota", async () => { await del(`${base}/${quota.id}`); await show(name, kind); }, { class: "danger" }));
      } else {
        parts.push(form("inline", [field("Quota in bytes", "limit_bytes", { type: "number", min: 1, required: true })], "Set quota", async (values) => {
          await post(base, { limit_bytes: Number(values.get("limit_bytes")) });
          await show(name, kind);
        }));
      }
      replace(result, h("div", { class: "card" }, parts));
    } catch (error) {
      replace(result, errorBox(error));
    }
  }
  const chooser = form("inline", [field("Namespace", "namespace", { required: true, value: namespace }),
    select("Kind", "kind", [["organization", "Organization"], ["user", "User"]], "organization")], "Show quota", async (values) => {
    await show(values.get("namespace").trim(), values.get("kind"));
  });
  if (namespace) await show(namespace, "organization");
  return h("div", {}, chooser, result);
}

async function keysTab() {
  const container = h("div");
  const created = h("div");
  async function load() {
    try {
      const data = await get("superuser/keys");
      const rows = (data.keys || []).map((key) => [
        key.name || "", key.service, h("code", {}, key.kid.slice(0, 16)),
        key.expiration_date ? formatDate(key.expiration_date) : "never",
        key.approval ? h("span", { class: "badge ok" }, "approved") : h("span", { class: "badge bad" }, "unapproved"),
        h("span", {},
          key.approval ? "" : actionButton("Approve", async () => { await post(`superuser/approvedkeys/${key.kid}`, { notes: "" }); await load(); }), " ",
          actionButton("Expire now", async () => {
            await put(`superuser/keys/${key.kid}`, { expiration: Math.floor(Date.now() / 1000) + 60 });
            await load();
          }, { class: "secondary" }), " ",
          actionButton("Delete", async () => { await del(`superuser/keys/${key.kid}`); await load(); }, { class: "danger", "data-confirm": "Delete this key?" })),
      ]);
      replace(container, table(["Name", "Service", "Key id", "Expires", "Approval", ""], rows, "No service keys."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("inline", [field("Service", "service", { required: true, pattern: "[a-z0-9_]+" }), field("Name", "name"),
    field("Expires", "expiration", { type: "datetime-local" })], "Create key", async (values, element) => {
    const raw = values.get("expiration");
    const data = await post("superuser/keys", { service: values.get("service"), name: values.get("name") || "", expiration: raw ? Math.floor(new Date(raw).getTime() / 1000) : null });
    replace(created, h("div", { class: "card" }, h("p", {}, "The private key is shown only now. Store it safely."),
      h("pre", { class: "log" }, data.private_key)));
    element.reset();
    await load();
  });
  return h("div", {}, created, container, h("h2", {}, "New service key"), create);
}

async function messagesTab() {
  const container = h("div");
  async function load() {
    try {
      const data = await get("messages");
      const rows = (data.messages || []).map((message) => [
        severityLabel(message.severity), message.media_type, h("span", { class: "message-content" }, message.content),
        actionButton("Delete", async () => {
          await del(`message/${message.uuid}`);
          await Promise.all([load(), renderMessageBanner()]);
        }, { class: "danger", "data-confirm": "Delete this message?" }),
      ]);
      replace(container, table(["Severity", "Format", "Message", ""], rows, "No messages."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("stack", [
    h("label", {}, "Message", h("textarea", { name: "content", required: true, rows: 3 })),
    select("Severity", "severity", [["info", "Information"], ["warning", "Warning"], ["error", "Error"]], "info"),
    select("Format", "media_type", [["text/plain", "Plain text"], ["text/markdown", "Markdown"]], "text/plain"),
  ], "Post message", async (values, element) => {
    await post("messages", { message: { content: values.get("content"), severity: values.get("severity"), media_type: values.get("media_type") } });
    element.reset();
    flash("Message posted.");
    await Promise.all([load(), renderMessageBanner()]);
  });
  return h("div", {}, h("p", { class: "muted" }, "Messages are shown at the top of every page, to every visitor."),
    container, h("h2", {}, "New message"), create);
}

async function sizeTab() {
  const container = h("div");
  async function load() {
    try {
      const data = await get("superuser/registrysize/");
      replace(container, h("div", { class: "card" },
        h("p", {}, "Registry size: ", h("strong", {}, formatBytes(data.size_bytes))),
        h("p", {}, "Last calculated: ", data.last_ran ? formatDate(data.last_ran) : "never"),
        data.queued || data.running ? h("p", { class: "notice" }, data.running ? "Calculation running…" : "Calculation queued…") : null,
        actionButton("Recalculate", async () => { await post("superuser/registrysize/"); flash("Calculation queued."); await load(); })));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  return container;
}

async function buildTab(buildId) {
  const result = h("div");
  async function show(id) {
    try {
      const [build, logs] = await Promise.all([get(`superuser/${id}/build`), get(`superuser/${id}/logs`)]);
      replace(result, h("div", { class: "card" }, h("h2", {}, `Build ${build.id}`),
        h("p", {}, `Repository ${build.repository.namespace}/${build.repository.name}, phase ${build.phase}, started ${formatDate(build.started)}`),
        h("pre", { class: "log" }, (logs.logs || []).map((entry) => `${entry.message}\n`).join(""))));
    } catch (error) {
      replace(result, errorBox(error));
    }
  }
  if (buildId) await show(buildId);
  return h("div", {}, form("inline", [field("Build id", "build", { required: true, value: buildId, size: 40 })], "Show build", async (values) => {
    await show(values.get("build").trim());
  }), result);
}
