// Robot accounts of a user or organization: create, reveal token, regenerate, delete, and the
// OIDC identities (issuer + subject) allowed to trade their tokens for a robot token.

import { del, get, post, put, query } from "../api.js";
import { actionButton, copyField, errorBox, field, flash, form, formatDate, h, replace, table } from "../dom.js";

export async function robotsSection(endpoint) {
  const container = h("div");
  const reveal = h("div");
  async function load() {
    try {
      const data = await get(`${endpoint}${query({ permissions: true, token: false })}`);
      const rows = (data.robots || []).map((robot) => {
        const shortName = robot.name.split("+")[1];
        return [
          h("code", {}, robot.name),
          robot.description || "",
          formatDate(robot.created),
          (robot.repositories || []).join(", "),
          h("span", {},
            actionButton("Show token", async () => {
              const detail = await get(`${endpoint}/${shortName}`);
              replace(reveal, h("div", { class: "card" }, h("h2", {}, `Credentials for ${robot.name}`),
                copyField("Username", robot.name), copyField("Token", detail.token),
                copyField("Login", `podman login -u '${robot.name}' -p '${detail.token}' ${location.host}`)));
            }, { class: "secondary" }), " ",
            actionButton("Federation", async () => {
              replace(reveal, await federationCard(`${endpoint}/${shortName}/federation`, robot.name));
            }, { class: "secondary", "aria-label": `Federation of ${robot.name}` }), " ",
            actionButton("Regenerate", async () => {
              await post(`${endpoint}/${shortName}/regenerate`);
              flash(`A new token was generated for ${robot.name}; the old one no longer works.`);
            }, { class: "secondary", "data-confirm": `Regenerate the token of ${robot.name}? The current token stops working.` }), " ",
            actionButton("Delete", async () => {
              await del(`${endpoint}/${shortName}`);
              await load();
            }, { class: "danger", "data-confirm": `Delete ${robot.name}?` })),
        ];
      });
      replace(container, table(["Robot", "Description", "Created", "Repositories", ""], rows, "No robot accounts."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = form("inline", [field("Robot name", "name", { required: true, pattern: "[a-z0-9][a-z0-9_]*" }), field("Description", "description")], "Create robot", async (values) => {
    await put(`${endpoint}/${values.get("name")}`, { description: values.get("description") || "" });
    await load();
  });
  return h("div", {}, container, reveal, h("h2", {}, "New robot account"), create);
}

function describeEntry(entry) {
  return (entry.audiences || []).join(", ") || "this registry";
}

async function federationCard(endpoint, robotName) {
  const list = h("div");
  let entries = [];
  async function save(next) {
    entries = await post(endpoint, next);
    render();
  }
  function render() {
    const rows = entries.map((entry, index) => [
      h("code", {}, entry.issuer),
      h("code", {}, entry.subject),
      describeEntry(entry),
      actionButton("Remove", () => save(entries.filter((_, other) => other !== index)),
        { class: "danger", "aria-label": `Remove ${entry.subject}` }),
    ]);
    replace(list, table(["Issuer", "Subject", "Audience", ""], rows, "No federated identities."));
  }
  entries = await get(endpoint);
  render();
  const add = form("inline", [
    field("Issuer URL", "issuer", { required: true, type: "url", placeholder: "https://token.actions.githubusercontent.com" }),
    field("Subject", "subject", { required: true, placeholder: "repo:org/app:ref:refs/heads/main" }),
    field("Audiences (comma-separated, optional)", "audiences"),
  ], "Add identity", async (values, element) => {
    const entry = { issuer: values.get("issuer"), subject: values.get("subject") };
    const audiences = (values.get("audiences") || "").split(",").map((item) => item.trim()).filter(Boolean);
    if (audiences.length) entry.audiences = audiences;
    await save([...entries, entry]);
    element.reset();
    flash(`${robotName} now accepts tokens for ${entry.subject}.`);
  });
  const removeAll = actionButton("Remove all", async () => {
    await del(endpoint);
    entries = [];
    render();
  }, { class: "danger", "data-confirm": `Remove every federated identity of ${robotName}?` });
  const exchange = `curl -u '${robotName}:$OIDC_TOKEN' ${location.origin}/oauth2/federation/robot/token`;
  return h("div", { class: "card" }, h("h2", {}, `Federation for ${robotName}`),
    h("p", { class: "muted" }, "A token from one of these issuers, with the subject shown, can be traded for a robot token valid for one hour. Without audiences listed, the token must be meant for this registry's hostname."),
    list, add, removeAll, copyField("Exchange", exchange));
}
