// Repository notifications: list, create, test, reset failures, delete; authorize e-mail addresses.

import { del, get, post } from "../api.js";
import { actionButton, errorBox, field, flash, form, h, replace, select } from "../dom.js";

// A notification that failed this many times in a row is skipped until reset.
const MAX_FAILURES = 3;

const EVENTS = [
  ["repo_push", "Push to repository"],
  ["build_queued", "Build queued"],
  ["build_start", "Build started"],
  ["build_success", "Build succeeded"],
  ["build_failure", "Build failed"],
  ["build_cancelled", "Build cancelled"],
  ["repo_mirror_sync_started", "Mirror sync started"],
  ["repo_mirror_sync_success", "Mirror sync succeeded"],
  ["repo_mirror_sync_failed", "Mirror sync failed"],
  ["repo_image_expiry", "Image expiring"],
];
const METHODS = [
  ["webhook", "Webhook POST"],
  ["slack", "Slack message"],
  ["email", "E-mail"],
  ["quay_notification", "Notification in this registry"],
];
const TARGET_KINDS = [["user", "User"], ["team", "Team"], ["org", "Organization"]];
const BUILD_EVENTS = new Set(EVENTS.map(([key]) => key).filter((key) => key.startsWith("build_")));

const label = (options, key) => (options.find(([value]) => value === key) || [key, key])[1];

function destination(notification) {
  const config = notification.config || {};
  if (notification.method === "email") return config.email || "";
  if (notification.method === "quay_notification") {
    const target = config.target || {};
    return `${label(TARGET_KINDS, target.kind)} ${target.name || ""}`;
  }
  return config.url || "";
}

function configFrom(values) {
  const method = values.get("method");
  if (method === "webhook") {
    const config = { url: values.get("url").trim() };
    if (values.get("template").trim()) config.template = values.get("template");
    return config;
  }
  if (method === "slack") return { url: values.get("url").trim() };
  if (method === "email") return { email: values.get("email").trim() };
  return { target: { kind: values.get("target_kind"), name: values.get("target_name").trim() } };
}

function eventConfigFrom(values) {
  const event = values.get("event");
  if (event === "repo_image_expiry") return { days: Number(values.get("days")) };
  if (BUILD_EVENTS.has(event) && values.get("ref_regex").trim()) return { "ref-regex": values.get("ref_regex").trim() };
  return {};
}

export async function notificationsTab(path) {
  const list = h("div");
  async function load() {
    try {
      const { notifications } = await get(`repository/${path}/notification/`);
      if (!notifications.length) {
        replace(list, h("p", { class: "muted" }, "No notifications yet."));
        return;
      }
      const rows = notifications.map((n) => {
        const disabled = n.number_of_failures >= MAX_FAILURES;
        const name = n.title || label(EVENTS, n.event);
        return h("tr", { "data-uuid": n.uuid },
          h("td", {}, name),
          h("td", {}, label(EVENTS, n.event), n.event_config?.days ? ` (${n.event_config.days} days)` : ""),
          h("td", {}, label(METHODS, n.method)),
          h("td", { class: "mono" }, destination(n)),
          h("td", {}, String(n.number_of_failures), disabled ? h("span", { class: "badge bad" }, "disabled") : null),
          h("td", {},
            actionButton("Test", async () => {
              await post(`repository/${path}/notification/${n.uuid}/test`);
              flash("Test notification queued.");
            }, { class: "secondary", "aria-label": `Test ${name}` }), " ",
            n.number_of_failures ? actionButton("Reset failures", async () => {
              await post(`repository/${path}/notification/${n.uuid}`);
              flash("Failures reset.");
              await load();
            }, { class: "secondary", "aria-label": `Reset failures of ${name}` }) : null, " ",
            actionButton("Delete", async () => {
              await del(`repository/${path}/notification/${n.uuid}`);
              flash("Notification deleted.");
              await load();
            }, { class: "secondary", "aria-label": `Delete ${name}`, "data-confirm": `Delete the notification ${name}?` })));
      });
      replace(list, h("table", {},
        h("thead", {}, h("tr", {}, ["Title", "Event", "Method", "Sent to", "Failures", ""].map((text) => h("th", { scope: "col" }, text)))),
        h("tbody", {}, rows)));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();

  const create = form("stack", [
    field("Title (optional)", "title", { maxlength: 255 }),
    select("When", "event", EVENTS, "repo_push"),
    field("Days before expiry (image expiring)", "days", { type: "number", min: 1, max: 3650, value: 7 }),
    field("Only builds whose git ref matches (regular expression, optional)", "ref_regex"),
    select("Then", "method", METHODS, "webhook"),
    field("Webhook or Slack URL", "url", { type: "url", placeholder: "https://example.com/hook" }),
    h("label", {}, "Webhook body template (JSON with ${path} placeholders, optional)",
      h("textarea", { name: "template", rows: 3, class: "mono" })),
    field("E-mail address", "email", { type: "email" }),
    select("Notify", "target_kind", TARGET_KINDS, "user"),
    field("User, team or organization name", "target_name"),
  ], "Create notification", async (values) => {
    const body = {
      event: values.get("event"),
      method: values.get("method"),
      config: configFrom(values),
      eventConfig: eventConfigFrom(values),
    };
    if (values.get("title").trim()) body.title = values.get("title").trim();
    await post(`repository/${path}/notification/`, body);
    flash("Notification created.");
    create.reset();
    await load();
  });

  const authorize = form("inline", [field("E-mail address to authorize", "address", { type: "email", required: true })],
    "Send confirmation", async (values) => {
      const address = values.get("address").trim();
      const record = await post(`repository/${path}/authorizedemail/${encodeURIComponent(address)}`);
      flash(record.confirmed ? `${address} is already authorized.` : `A confirmation link was sent to ${address}.`);
    });

  return h("div", {}, list,
    h("h2", {}, "Create a notification"), create,
    h("h2", {}, "E-mail addresses"),
    h("p", { class: "muted" }, "An address receives e-mail notifications once it follows the confirmation link sent to it."),
    authorize);
}
