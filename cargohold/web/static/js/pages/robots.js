// Robot accounts of a user or organization: create, reveal token, regenerate, delete.

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
