// An organization: teams and members, robots, OAuth applications, default permissions, quota, logs.

import { del, get, post, put, query } from "../api.js";
import {
  actionButton, checkbox, copyField, errorBox, field, flash, form, h, refusal,
  replace, select, signInPrompt, table, tabs,
} from "../dom.js";
import { usageBar } from "../components.js";
import { auditLog } from "../logs.js";
import { policiesTab } from "../sections/policies.js";
import { robotsSection } from "../sections/robots.js";

const TEAM_ROLES = [["member", "Member"], ["creator", "Creator"], ["admin", "Admin"]];
const SCOPES = [
  ["repo:read", "View all visible repositories"],
  ["repo:write", "Read/Write to any accessible repositories"],
  ["repo:admin", "Administer repositories"],
  ["repo:create", "Create repositories"],
  ["user:read", "Read user information"],
  ["user:admin", "Administer user"],
  ["org:admin", "Administer organization"],
  ["super:user", "Super user access"],
];

export function newOrganizationPage(session, refresh) {
  if (!session.user) return signInPrompt("the organization form");
  return h("section", { class: "card" }, h("h1", {}, "Create organization"),
    form("stack", [
      field("Name", "name", { required: true, pattern: "[a-z0-9]+([._-][a-z0-9]+)*" }),
      field("Email", "email", { type: "email" }),
    ], "Create", async (values) => {
      const body = { name: values.get("name") };
      if (values.get("email")) body.email = values.get("email");
      await post("organization/", body);
      await refresh();
      location.hash = `#/organization/${body.name}`;
    }));
}

export async function organizationPage(session, name, params) {
  let org;
  try {
    org = await get(`organization/${name}`);
  } catch (error) {
    return h("section", {}, h("h1", {}, name), refusal(error, "this organization"));
  }
  const tab = params.get("tab") || "teams";
  const base = `#/organization/${name}?tab=`;
  const items = [["teams", "Teams", `${base}teams`]];
  if (org.is_admin) {
    items.push(["robots", "Robot accounts", `${base}robots`], ["applications", "OAuth applications", `${base}applications`],
      ["prototypes", "Default permissions", `${base}prototypes`], ["quota", "Quota", `${base}quota`], ["policies", "Tag policies", `${base}policies`],
      ["logs", "Audit log", `${base}logs`]);
  }
  const sections = {
    teams: () => teamsTab(org, params.get("team")),
    robots: () => robotsSection(`organization/${name}/robots`, name),
    applications: () => applicationsTab(name),
    prototypes: () => prototypesTab(name),
    quota: () => quotaTab(session, org),
    policies: () => policiesTab(`organization/${name}/autoprunepolicy/`, `organization/${name}/immutabilitypolicy/`),
    logs: () => auditLog(`organization/${name}`),
  };
  return h("section", {}, h("h1", {}, `Organization ${name}`),
    h("p", {}, h("a", { href: `#/?view=org:${encodeURIComponent(name)}` }, "Repositories of this organization")),
    tabs(items, tab), await (sections[tab] || sections.teams)());
}

async function teamsTab(org, selected) {
  const name = org.name;
  const teams = Object.values(org.teams || {});
  const rows = teams.map((team) => [
    h("a", { href: `#/organization/${name}?tab=teams&team=${team.name}` }, team.name),
    team.role,
    String(team.member_count ?? ""),
    team.description || "",
    org.is_admin ? actionButton("Delete", async () => {
      await del(`organization/${name}/team/${team.name}`);
      location.reload();
    }, { class: "secondary", "data-confirm": `Delete team ${team.name}?`, "aria-label": `Delete team ${team.name}` }) : "",
  ]);
  const create = org.is_admin ? form("inline", [
    field("Team name", "team", { required: true }),
    select("Role", "role", TEAM_ROLES, "member"),
    field("Description", "description"),
  ], "Create team", async (values) => {
    await put(`organization/${name}/team/${values.get("team")}`, { role: values.get("role"), description: values.get("description") });
    location.hash = `#/organization/${name}?tab=teams&team=${values.get("team")}`;
  }) : null;
  return h("div", {}, table(["Team", "Role", "Members", "Description", ""], rows, "No teams visible to you."),
    create ? h("h2", {}, "New team") : null, create,
    selected ? await teamDetail(org, selected) : null);
}

async function teamDetail(org, team) {
  const name = org.name;
  const container = h("div", { class: "card" });
  try {
    const [members, permissions] = await Promise.all([
      get(`organization/${name}/team/${team}/members${query({ includePending: true })}`),
      org.is_admin ? get(`organization/${name}/team/${team}/permissions`) : Promise.resolve({ permissions: [] }),
    ]);
    const rows = (members.members || []).map((member) => [
      member.kind === "invite" ? member.email || member.name : member.name,
      member.is_robot ? "robot" : member.kind === "invite" ? "invited by email" : member.invited ? "invited" : "member",
      members.can_edit ? actionButton(member.invited || member.kind === "invite" ? "Cancel invite" : "Remove", async () => {
        if (member.kind === "invite" && member.email) await del(`organization/${name}/team/${team}/invite/${member.email}`);
        else await del(`organization/${name}/team/${team}/members/${member.name}`);
        location.reload();
      }, { class: "secondary" }) : "",
    ]);
    const permissionRows = (permissions.permissions || []).map((grant) => [
      h("a", { href: `#/repository/${name}/${grant.repository.name}` }, grant.repository.name), grant.role,
    ]);
    replace(container, h("h2", {}, `Team ${team}`),
      table(["Member", "Status", ""], rows, "No members yet."),
      members.can_edit ? form("inline", [field("Add or invite (username, robot or email)", "member", { required: true })], "Add", async (values) => {
        const who = values.get("member").trim();
        const result = who.includes("@")
          ? await put(`organization/${name}/team/${team}/invite/${who}`)
          : await put(`organization/${name}/team/${team}/members/${who}`);
        flash(result && result.invited ? `${who} was invited.` : `${who} was added.`);
        location.reload();
      }) : null,
      org.is_admin ? [h("h2", {}, "Repository permissions of this team"), table(["Repository", "Role"], permissionRows, "This team has no repository permissions.")] : null);
  } catch (error) {
    replace(container, errorBox(error));
  }
  return container;
}

async function applicationsTab(name) {
  const container = h("div");
  async function load() {
    try {
      const data = await get(`organization/${name}/applications`);
      replace(container, (data.applications || []).map((app) => applicationCard(name, app, load)),
        (data.applications || []).length ? null : h("p", { class: "muted" }, "No applications."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("inline", [field("Application name", "name", { required: true }), field("Redirect URI (optional)", "redirect_uri")], "Create application", async (values) => {
    await post(`organization/${name}/applications`, { name: values.get("name"), redirect_uri: values.get("redirect_uri") || "" });
    await load();
  });
  return h("div", {}, container, h("h2", {}, "New application"), create);
}

function applicationCard(org, app, reload) {
  const scopes = SCOPES.map(([scope, label]) => checkbox(`${scope} — ${label}`, scope, scope === "repo:read"));
  const generate = form("stack", [h("fieldset", {}, h("legend", {}, "Scopes for a new token"), scopes)], "Generate token", async (values) => {
    const chosen = SCOPES.map(([scope]) => scope).filter((scope) => values.get(scope) === "on");
    if (!chosen.length) throw new Error("Choose at least one scope.");
    const redirect = `${location.origin}/oauth/localapp`;
    window.open(`/oauth/authorize${query({ response_type: "token", client_id: app.client_id, scope: chosen.join(" "), redirect_uri: redirect })}`, "_blank", "noopener");
  });
  return h("div", { class: "card" }, h("h2", {}, app.name),
    copyField("Client ID", app.client_id),
    app.client_secret ? copyField("Client secret", app.client_secret) : null,
    h("details", {}, h("summary", {}, "Generate an access token"), generate),
    actionButton("Delete application", async () => {
      await del(`organization/${org}/applications/${app.client_id}`);
      await reload();
    }, { class: "danger", "data-confirm": `Delete application ${app.name}?` }));
}

async function prototypesTab(name) {
  const container = h("div");
  async function load() {
    try {
      const data = await get(`organization/${name}/prototypes`);
      const rows = (data.prototypes || []).map((prototype) => [
        prototype.activating_user ? prototype.activating_user.name : "anyone",
        `${prototype.delegate.name} (${prototype.delegate.kind})`,
        prototype.role,
        actionButton("Delete", async () => {
          await del(`organization/${name}/prototypes/${prototype.id}`);
          await load();
        }, { class: "secondary" }),
      ]);
      replace(container, table(["When created by", "Grant to", "Role", ""], rows, "No default permissions."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("inline", [
    field("When created by (optional user)", "activating_user"),
    field("Grant to (user, robot or team)", "delegate", { required: true }),
    select("Kind", "kind", [["user", "User or robot"], ["team", "Team"]], "team"),
    select("Role", "role", [["read", "Read"], ["write", "Write"], ["admin", "Admin"]], "read"),
  ], "Add default permission", async (values) => {
    const body = { role: values.get("role"), delegate: { name: values.get("delegate").trim(), kind: values.get("kind") } };
    if (values.get("activating_user")) body.activating_user = { name: values.get("activating_user").trim() };
    await post(`organization/${name}/prototypes`, body);
    await load();
  });
  return h("div", {}, container, create);
}

async function quotaTab(session, org) {
  try {
    const quotas = await get(`organization/${org.name}/quota`);
    const report = org.quota_report || {};
    const quota = (quotas || [])[0];
    const limits = quota ? (quota.limits || []).map((limit) => [limit.type, `${limit.limit_percent}%`]) : [];
    return h("div", { class: "card" }, h("h2", {}, "Storage quota"),
      usageBar(report.quota_bytes, quota ? quota.limit_bytes : report.configured_quota),
      quota ? table(["Limit type", "Threshold"], limits, "No limits set.") : null,
      session.user?.super_user ? h("p", {}, h("a", { href: `#/superuser?tab=quotas&namespace=${org.name}` }, "Change this quota in the superuser panel")) : null);
  } catch (error) {
    return errorBox(error);
  }
}
