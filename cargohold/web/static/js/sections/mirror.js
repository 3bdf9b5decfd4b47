// Repository mirroring: configuration, sync status, sync now / cancel.

import { get, post, put } from "../api.js";
import { actionButton, checkbox, errorBox, field, flash, form, formatDate, h, replace } from "../dom.js";

function toLocalInput(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString().slice(0, 16);
}

export async function mirrorTab(path, repo) {
  let mirror = null;
  // Configuring mirroring puts the repository in the MIRROR state: in any other state there
  // is no configuration to ask for.
  if (repo.state === "MIRROR") {
    try {
      mirror = await get(`repository/${path}/mirror`);
    } catch (error) {
      if (error.status !== 404) return errorBox(error);
    }
  }
  const status = h("div");
  if (mirror) {
    replace(status, h("div", { class: "card" },
      h("p", {}, "Status: ", h("strong", {}, mirror.sync_status), mirror.is_enabled ? "" : " (disabled)"),
      h("p", {}, "Next sync: ", mirror.sync_start_date ? formatDate(mirror.sync_start_date) : "not scheduled"),
      mirror.sync_expiration_date ? h("p", {}, "Running until at most ", formatDate(mirror.sync_expiration_date)) : null,
      h("p", {}, "Retries remaining: ", String(mirror.sync_retries_remaining ?? "")),
      actionButton("Sync now", async () => { await post(`repository/${path}/mirror/sync-now`); flash("Sync requested."); }), " ",
      actionButton("Cancel sync", async () => { await post(`repository/${path}/mirror/sync-cancel`); flash("Sync cancelled."); }, { class: "secondary" })));
  } else if (repo.state !== "MIRROR") {
    replace(status, h("p", { class: "notice" }, "Set the repository state to Mirror (Settings) before configuring mirroring."));
  }
  const current = mirror || {};
  const settings = form("stack", [
    checkbox("Enabled", "is_enabled", current.is_enabled ?? true),
    field("Upstream repository (e.g. registry.example.com/ns/repo)", "external_reference", { required: true, value: current.external_reference || "" }),
    field("Upstream username", "external_registry_username", { value: current.external_registry_username || "" }),
    field("Upstream password", "external_registry_password", { type: "password", autocomplete: "new-password" }),
    field("Tags to mirror (comma separated globs)", "tags", { required: true, value: (current.root_rule?.rule_value || []).join(",") }),
    field("Robot that pushes the mirrored images", "robot_username", { required: true, value: current.robot_username || "" }),
    field("Sync interval (seconds)", "sync_interval", { type: "number", min: 60, value: current.sync_interval || 86400 }),
    field("First sync", "sync_start_date", { type: "datetime-local", value: toLocalInput(current.sync_start_date) }),
    checkbox("Verify upstream TLS", "verify_tls", current.external_registry_config?.verify_tls ?? true),
  ], mirror ? "Save mirror settings" : "Create mirror", async (values) => {
    const start = values.get("sync_start_date") ? new Date(values.get("sync_start_date")) : new Date();
    const body = {
      is_enabled: values.get("is_enabled") === "on",
      external_reference: values.get("external_reference").trim(),
      external_registry_username: values.get("external_registry_username") || null,
      sync_interval: Number(values.get("sync_interval")),
      sync_start_date: start.toISOString().replace(/\.\d{3}Z$/, "Z"),
      robot_username: values.get("robot_username").trim(),
      root_rule: { rule_kind: "tag_glob_csv", rule_value: values.get("tags").split(",").map((t) => t.trim()).filter(Boolean) },
      external_registry_config: { verify_tls: values.get("verify_tls") === "on", unsigned_images: false, proxy: {} },
    };
    if (values.get("external_registry_password")) body.external_registry_password = values.get("external_registry_password");
    if (mirror) await put(`repository/${path}/mirror`, body);
    else await post(`repository/${path}/mirror`, body);
    flash("Mirror settings saved.");
    location.reload();
  });
  return h("div", {}, status, h("h2", {}, "Settings"), settings);
}
