// Entry point: who is signed in, the navigation bar and the hash router.

import { ApiFailure, forgetCsrf, get, post } from "./api.js";
import { clearFlash, errorBox, h, replace, signInHref } from "./dom.js";
import { accountPage } from "./pages/account.js";
import { organizationPage, newOrganizationPage } from "./pages/organization.js";
import { repositoryPage } from "./pages/repository.js";
import { newRepositoryPage, repositoryListPage } from "./pages/repositories.js";
import { renderMessageBanner } from "./messages.js";
import { invitePage } from "./pages/invite.js";
import { signinPage, signupPage } from "./pages/signin.js";
import { superuserPage } from "./pages/superuser.js";

export const session = { user: null };

// The server sets a readable "<session cookie>_signed_in" cookie beside the HttpOnly session;
// without it the visitor is signed out and no request is needed to learn that.
const SIGNED_IN_MARKER = /^\s*([^=]+_signed_in)=1\s*$/;

function signedInMarkers() {
  return document.cookie.split(";").map((part) => SIGNED_IN_MARKER.exec(part)).filter(Boolean).map((match) => match[1]);
}

async function loadUser() {
  session.user = null;
  const markers = signedInMarkers();
  if (!markers.length) return;
  try {
    session.user = await get("user/");
  } catch (error) {
    if (!(error instanceof ApiFailure) || (error.status !== 401 && error.status !== 403)) throw error;
    // The session ended on the server (timeout, password change): forget the stale marker.
    for (const name of markers) document.cookie = `${name}=; Max-Age=0; path=/; SameSite=Lax`;
  }
}

// After signing in or up: learn who the user is, then open the page that asked for sign-in.
export async function signedIn(next) {
  await loadUser();
  renderNav();
  const target = next && next.startsWith("#/") && !next.startsWith("#/signin") ? next : "#/";
  if (location.hash === target) await route();
  else location.hash = target;
}

function renderNav() {
  const nav = document.getElementById("nav");
  const user = session.user;
  if (!user) {
    replace(nav, h("a", { href: "#/" }, "Repositories"), h("span", { class: "spacer" }),
      h("a", { href: signInHref(), id: "signin-link" }, "Sign in"), h("a", { href: "#/signup" }, "Create account"));
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
  signin: (parts, params) => signinPage(session, signedIn, params),
  confirminvite: (parts, params) => invitePage(session, params),
  signup: () => signupPage(session, signedIn),
  "new-repository": () => newRepositoryPage(session),
  "new-organization": () => newOrganizationPage(session, refresh),
  repository: (parts, params) => repositoryPage(session, parts[0], parts.slice(1).join("/"), params),
  organization: (parts, params) => organizationPage(session, parts[0], params),
  account: (parts, params) => accountPage(session, params),
  superuser: (parts, params) => superuserPage(session, params),
};

let routeTicket = 0;

async function route() {
  const ticket = ++routeTicket;
  const main = document.getElementById("main");
  const { parts, params } = parseHash();
  const handler = routes[parts[0] || ""];
  const signinLink = document.getElementById("signin-link");
  if (signinLink) signinLink.setAttribute("href", signInHref());
  clearFlash();
  if (!handler) {
    replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Back to the repositories")));
    return;
  }
  replace(main, h("p", { class: "muted" }, "Loading…"));
  let content;
  try {
    content = await handler(parts.slice(1), params);
  } catch (error) {
    content = errorBox(error);
  }
  // A later navigation won the race: its page is the one to show.
  if (ticket !== routeTicket) return;
  replace(main, content);
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
refresh().catch((error) => replace(document.getElementById("main"), errorBox(error)));
