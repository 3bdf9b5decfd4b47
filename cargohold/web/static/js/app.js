// Entry point: who is signed in, the navigation bar and the hash router.

import { ApiFailure, forgetCsrf, get, post } from "./api.js";
import { clearFlash, errorBox, h, replace } from "./dom.js";
import { accountPage } from "./pages/account.js";
import { organizationPage, newOrganizationPage } from "./pages/organization.js";
import { repositoryPage } from "./pages/repository.js";
import { newRepositoryPage, repositoryListPage } from "./pages/repositories.js";
import { renderMessageBanner } from "./messages.js";
import { invitePage } from "./pages/invite.js";
import { signinPage, signupPage } from "./pages/signin.js";
import { superuserPage } from "./pages/superuser.js";

export const session = { user: null };

async function loadUser() {
  try {
    session.user = await get("user/");
  } catch (error) {
    if (!(error instanceof ApiFailure) || (error.status !== 401 && error.status !== 403)) throw error;
    session.user = null;
  }
}

function renderNav() {
  const nav = document.getElementById("nav");
  const user = session.user;
  if (!user) {
    replace(nav, h("a", { href: "#/" }, "Repositories"), h("span", { class: "spacer" }),
      h("a", { href: "#/signin" }, "Sign in"), h("a", { href: "#/signup" }, "Create account"));
    return;
  }
  const orgs = (user.organizations || []).map((org) => h("a", { href: `#/organization/${org.name}` }, org.name));
  replace(nav,
    h("a", { href: "#/" }, "Repositories"),
    orgs,
    user.super_user ? h("a", { href: "#/superuser" }, "Superuser") : null,
    h("span", { class: "spacer" }),
    h("a", { href: "#/account" }, user.username),
    h("button", { type: "button", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try {
    await post("signout");
  } finally {
    forgetCsrf();
    session.user = null;
    location.hash = "#/signin";
    await refresh();
  }
}

export async function refresh() {
  await Promise.all([loadUser(), renderMessageBanner()]);
  renderNav();
  await route();
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search || "") };
}

const routes = {
  "": () => repositoryListPage(session),
  signin: (parts, params) => signinPage(session, refresh, params),
  confirminvite: (parts, params) => invitePage(session, params),
  signup: () => signupPage(session, refresh),
  "new-repository": () => newRepositoryPage(session),
  "new-organization": () => newOrganizationPage(session, refresh),
  repository: (parts, params) => repositoryPage(session, parts[0], parts.slice(1).join("/"), params),
  organization: (parts, params) => organizationPage(session, parts[0], params),
  account: (parts, params) => accountPage(session, params),
  superuser: (parts, params) => superuserPage(session, params),
};

async function route() {
  const main = document.getElementById("main");
  const { parts, params } = parseHash();
  const handler = routes[parts[0] || ""];
  clearFlash();
  if (!handler) {
    replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Back to the repositories")));
    return;
  }
  replace(main, h("p", { class: "muted" }, "Loading…"));
  try {
    const content = await handler(parts.slice(1), params);
    replace(main, content);
  } catch (error) {
    replace(main, errorBox(error));
  }
  main.focus();
}

window.addEventListener("hashchange", route);
refresh().catch((error) => replace(document.getElementById("main"), errorBox(error)));
