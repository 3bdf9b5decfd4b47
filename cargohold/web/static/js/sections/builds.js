// Builds with live logs, and build triggers (custom git: activate, start, enable/disable).

import { del, ensureCsrf, get, post, put, query } from "../api.js";
import {
  actionButton, checkbox, copyField, errorBox, field, flash, form, formatDate, h, replace, table,
} from "../dom.js";

const TERMINAL_PHASES = new Set(["complete", "error", "internalerror", "cancelled", "expired"]);

function phaseBadge(phase) {
  const cls = phase === "complete" ? "badge ok" : ["error", "internalerror", "expired", "cancelled"].includes(phase) ? "badge bad" : "badge";
  return h("span", { class: cls }, phase);
}

function logView(path, build) {
  const output = h("pre", { class: "log", "aria-live": "polite" });
  const status = h("p", {}, "Phase: ", phaseBadge(build.phase));
  let start = 0;
  let stopped = false;
  async function poll() {
    if (stopped || !output.isConnected && start > 0) return;
    try {
      const data = await get(`repository/${path}/build/${build.id}/logs${query({ start })}`);
      for (const entry of data.logs || []) {
        const cls = entry.type === "phase" ? "phase" : entry.type === "error" ? "error" : "";
        output.append(h("span", { class: cls }, entry.type === "phase" ? `== ${entry.message}\n` : `${entry.message}\n`));
      }
      start = data.start + (data.logs || []).length;
      if (typeof data.total === "number") start = Math.max(start, data.total);
      output.scrollTop = output.scrollHeight;
      const current = await get(`repository/${path}/build/${build.id}/status`);
      replace(status, "Phase: ", phaseBadge(current.phase));
      if (TERMINAL_PHASES.has(current.phase)) { stopped = true; return; }
    } catch (error) {
      output.after(errorBox(error));
      stopped = true;
      return;
    }
    setTimeout(poll, 1500);
  }
  poll();
  const cancel = actionButton("Cancel build", async () => {
    await del(`repository/${path}/build/${build.id}`);
    flash("Build cancelled.");
  }, { class: "danger" });
  return h("div", { class: "card" }, h("h2", {}, `Build ${build.display_name || build.id}`), status,
    h("p", {}, "Tags: ", (build.tags || []).join(", ")), TERMINAL_PHASES.has(build.phase) ? null : cancel, output);
}

async function uploadArchive(file) {
  const drop = await post("filedrop/", { mimeType: file.type || "application/octet-stream" });
  const response = await fetch(drop.url, { method: "PUT", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
  if (!response.ok) throw new Error(`Uploading the archive failed with status ${response.status}.`);
  return drop.file_id;
}

export async function buildsTab(repo, path, buildId) {
  const list = h("div");
  async function load() {
    try {
      const data = await get(`repository/${path}/build/${query({ limit: 25 })}`);
      const rows = (data.builds || []).map((build) => [
        h("a", { href: `#/repository/${path}?tab=builds&build=${build.id}` }, build.display_name || build.id.slice(0, 8)),
        phaseBadge(build.phase),
        formatDate(build.started),
        (build.tags || []).join(", "),
        build.trigger ? build.trigger.service : build.manual_user || "",
      ]);
      replace(list, table(["Build", "Phase", "Started", "Tags", "Started by"], rows, "No builds yet."));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
  let detail = null;
  if (buildId) {
    try {
      detail = logView(path, await get(`repository/${path}/build/${buildId}`));
    } catch (error) {
      detail = errorBox(error);
    }
  }
  const start = repo.can_write ? form("stack", [
    h("label", {}, "Archive or Dockerfile to upload", h("input", { type: "file", name: "file" })),
    field("…or an archive URL", "archive_url", { type: "url" }),
    field("Tags (comma separated)", "tags", { value: "latest" }),
  ], "Start build", async (values) => {
    const body = { docker_tags: values.get("tags").split(",").map((tag) => tag.trim()).filter(Boolean) };
    const file = values.get("file");
    if (file && file.size) body.file_id = await uploadArchive(file);
    else if (values.get("archive_url")) body.archive_url = values.get("archive_url");
    else throw new Error("Choose a file to upload or give an archive URL.");
    const build = await post(`repository/${path}/build/`, body);
    location.hash = `#/repository/${path}?tab=builds&build=${build.id}`;
  }) : null;
  return h("div", {}, detail, list, start ? h("h2", {}, "Start a build") : null, start);
}

function triggerCard(path, trigger, reload) {
  const config = trigger.config || {};
  const parts = [h("h2", {}, `${trigger.service} trigger `, trigger.enabled ? phaseBadge("enabled") : h("span", { class: "badge bad" }, `disabled${trigger.disabled_reason ? `: ${trigger.disabled_reason}` : ""}`))];
  if (trigger.is_active) {
    parts.push(h("p", {}, "Source: ", h("code", {}, trigger.build_source || config.build_source || "")));
    for (const credential of config.credentials || []) parts.push(copyField(credential.name, credential.value));
    parts.push(form("inline", [field("Branch", "branch_name"), field("or commit SHA", "commit_sha")], "Start build now", async (values) => {
      const body = values.get("commit_sha") ? { commit_sha: values.get("commit_sha") } : { branch_name: values.get("branch_name") || "main" };
      const build = await post(`repository/${path}/trigger/${trigger.id}/start`, body);
      location.hash = `#/repository/${path}?tab=builds&build=${build.id}`;
    }));
  } else {
    parts.push(h("p", {}, "This trigger is not active yet. Tell it where the code is:"));
    parts.push(form("stack", [
      field("Git repository URL", "build_source", { required: true }),
      field("Dockerfile path", "dockerfile_path", { value: "/Dockerfile" }),
      field("Context", "context", { value: "/" }),
      field("Branch/tag regex (optional)", "branchtag_regex"),
      field("Tag templates (comma separated, optional)", "tag_templates"),
      checkbox("Tag with the branch or tag name", "default_tag_from_ref", true),
      checkbox("Tag latest for the default branch", "latest_for_default_branch", true),
      field("Pull robot (optional)", "pull_robot"),
    ], "Activate", async (values) => {
      const configBody = {
        build_source: values.get("build_source"),
        dockerfile_path: values.get("dockerfile_path"),
        context: values.get("context"),
        default_tag_from_ref: values.get("default_tag_from_ref") === "on",
        latest_for_default_branch: values.get("latest_for_default_branch") === "on",
      };
      if (values.get("branchtag_regex")) configBody.branchtag_regex = values.get("branchtag_regex");
      if (values.get("tag_templates")) configBody.tag_templates = values.get("tag_templates").split(",").map((t) => t.trim()).filter(Boolean);
      const body = { config: configBody };
      if (values.get("pull_robot")) body.pull_robot = values.get("pull_robot");
      await post(`repository/${path}/trigger/${trigger.id}/activate`, body);
      flash("Trigger activated.");
      await reload();
    }));
  }
  parts.push(h("p", {},
    actionButton(trigger.enabled ? "Disable" : "Enable", async () => {
      await put(`repository/${path}/trigger/${trigger.id}`, { enabled: !trigger.enabled });
      await reload();
    }, { class: "secondary" }), " ",
    h("a", { href: `#/repository/${path}?tab=builds&trigger=${trigger.id}` }, "builds"), " ",
    actionButton("Delete trigger", async () => {
      await del(`repository/${path}/trigger/${trigger.id}`);
      await reload();
    }, { class: "danger", "data-confirm": "Delete this trigger?" })));
  return h("div", { class: "card" }, parts);
}

export async function triggersTab(repo, path) {
  const container = h("div");
  async function load() {
    try {
      const data = await get(`repository/${path}/trigger/`);
      replace(container, (data.triggers || []).length
        ? data.triggers.map((trigger) => triggerCard(path, trigger, load))
        : h("p", { class: "muted" }, "No build triggers."));
    } catch (error) {
      replace(container, errorBox(error));
    }
  }
  await load();
  const create = actionButton("Create custom git trigger", async () => {
    // The setup route is a GET that writes, so it wants the CSRF token like any POST.
    const headers = { "X-CSRF-Token": await ensureCsrf() };
    const response = await fetch(`/customtrigger/setup/${path}`, { credentials: "same-origin", redirect: "follow", headers });
    if (!response.ok) throw new Error(`Creating the trigger failed with status ${response.status}.`);
    await load();
  });
  return h("div", {}, container, create);
}
