// The signed-in user's account: profile, password, app-specific tokens, robots, quota.

import { del, get, post, put } from "../api.js";
import { actionButton, copyField, errorBox, field, flash, form, formatDate, h, replace, signInPrompt, table, tabs } from "../dom.js";
import { usageBar } from "../components.js";
import { auditLog } from "../logs.js";
import { policiesTab } from "../sections/policies.js";
import { robotsSection } from "../sections/robots.js";

export async function accountPage(session, params) {
  const user = session.user;
  if (!user) return signInPrompt("your account");
  const tab = params.get("tab") || "profile";
  const items = [
    ["profile", "Profile", "#/account?tab=profile"],
    ["password", "Password", "#/account?tab=password"],
    ["tokens", "App tokens", "#/account?tab=tokens"],
    ["robots", "Robot accounts", "#/account?tab=robots"],
    ["quota", "Quota", "#/account?tab=quota"],
    ["policies", "Tag policies", "#/account?tab=policies"],
    ["logs", "Audit log", "#/account?tab=logs"],
  ];
  const sections = {
    profile: () => profileTab(user),
    password: () => passwordTab(),
    tokens: () => tokensTab(),
    robots: () => robotsSection("user/robots"),
    quota: () => quotaTab(user),
    policies: () => policiesTab("user/autoprunepolicy/", null),
    logs: () => auditLog("user"),
  };
  return h("section", {}, h("h1", {}, `Account ${user.username}`), tabs(items, tab), await (sections[tab] || sections.profile)());
}

function profileTab(user) {
  return h("div", { class: "card" },
    h("p", {}, "Username: ", h("strong", {}, user.username)),
    form("stack", [field("Email", "email", { type: "email", value: user.email || "", required: true })], "Save email", async (values) => {
      await put("user/", { email: values.get("email") });
      flash("Email saved.");
    }));
}

function passwordTab() {
  return h("div", { class: "card" },
    form("stack", [field("New password (at least 8 characters)", "password", { type: "password", autocomplete: "new-password", required: true, minlength: 8 })], "Change password", async (values, element) => {
      await put("user/", { password: values.get("password") });
      element.reset();
      flash("Password changed. Other sessions were signed out.");
    }));
}

async function tokensTab() {
  const container = h("div");
  const created = h("div");
  async function load() {
    try {
      const data = await get("user/apptoken");
      const rows = (data.tokens || []).map((token) => [
        token.title, formatDate(token.created), token.last_accessed ? formatDate(token.last_accessed) : "never",
        token.expiration ? formatDate(token.expiration) : "never",
        actionButton("Revoke", async () => {
          await del(`user/apptoken/${token.uuid}`);
          await load();
        }, { class: "danger", "data-confirm": `Revoke token ${token.title}?` }),
      ]);
      replace(container, table(["Title", "Created", "Last used", "Expires", ""], rows, "No app tokens."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("inline", [field("Token title", "title", { required: true })], "Create token", async (values, element) => {
    const data = await post("user/apptoken", { title: values.get("title") });
    const token = data.token || data;
    replace(created, h("div", { class: "card" }, h("p", {}, "Copy this token now; it is the password for the username $app."),
      copyField("Token", token.token_code)));
    element.reset();
    await load();
  });
  return h("div", {}, created, container, h("h2", {}, "New token"), create);
}

async function quotaTab(user) {
  try {
    const quotas = await get("user/quota");
    const quota = (quotas || [])[0];
    const report = user.quota_report || {};
    return h("div", { class: "card" }, usageBar(report.quota_bytes, quota ? quota.limit_bytes : report.configured_quota));
  } catch (error) {
    return errorBox(error);
  }
}
