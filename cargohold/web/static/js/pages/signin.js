// Sign in and account creation.

import { forgetCsrf, post } from "../api.js";
import { field, form, h } from "../dom.js";

export function signinPage(session, signedIn, params = new URLSearchParams()) {
  const next = params.get("next");
  return h("section", { class: "card" },
    h("h1", {}, "Sign in"),
    form("stack", [
      field("Username or email", "username", { autocomplete: "username", required: true, autofocus: true }),
      field("Password", "password", { type: "password", autocomplete: "current-password", required: true }),
    ], "Sign in", async (values) => {
      await post("signin", { username: values.get("username"), password: values.get("password") });
      await signedIn(next);
    }),
    h("p", {}, "No account yet? ", h("a", { href: "#/signup" }, "Create one")));
}

export function signupPage(session, signedIn) {
  return h("section", { class: "card" },
    h("h1", {}, "Create account"),
    form("stack", [
      field("Username", "username", { autocomplete: "username", required: true, autofocus: true }),
      field("Email", "email", { type: "email", autocomplete: "email", required: true }),
      field("Password (at least 8 characters)", "password", { type: "password", autocomplete: "new-password", required: true, minlength: 8 }),
    ], "Create account", async (values) => {
      const username = values.get("username");
      const password = values.get("password");
      await post("user/", { username, email: values.get("email"), password });
      forgetCsrf();
      await post("signin", { username, password });
      await signedIn("#/");
    }));
}
