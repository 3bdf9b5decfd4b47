// A team invitation from an email link: accept or decline it.

import { del, put } from "../api.js";
import { actionButton, h } from "../dom.js";

export function invitePage(session, params) {
  const code = params.get("code") || "";
  if (!code) return h("div", { class: "error refusal", role: "alert" }, "This invitation link has no code.");
  if (!session.user) {
    const next = `#/confirminvite?code=${encodeURIComponent(code)}`;
    return h("section", { class: "card" }, h("h1", {}, "Team invitation"),
      h("p", {}, "Sign in (or create an account) to answer this invitation."),
      h("p", {}, h("a", { href: `#/signin?next=${encodeURIComponent(next)}` }, "Sign in")));
  }
  const result = h("div", { role: "status" });
  return h("section", { class: "card" }, h("h1", {}, "Team invitation"),
    h("p", {}, `You, ${session.user.username}, were invited to join a team.`),
    actionButton("Accept invitation", async () => {
      const joined = await put(`teaminvite/${encodeURIComponent(code)}`);
      location.hash = `#/organization/${joined.org}?tab=teams&team=${joined.team}`;
    }), " ",
    actionButton("Decline", async () => {
      await del(`teaminvite/${encodeURIComponent(code)}`);
      result.replaceChildren("Invitation declined.");
    }, { class: "secondary" }),
    result);
}
