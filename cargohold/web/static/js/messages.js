// The global message banner: what superusers post for every visitor (GET /api/v1/messages).
// Messages are shown as text, never as HTML, so a message cannot inject markup or scripts.

import { get } from "./api.js";
import { h, replace } from "./dom.js";

const SEVERITY_LABELS = { info: "Information", warning: "Warning", error: "Error" };

export function severityLabel(severity) {
  return SEVERITY_LABELS[severity] || severity;
}

export async function renderMessageBanner() {
  const banner = document.getElementById("messages");
  let messages = [];
  try {
    messages = (await get("messages")).messages || [];
  } catch {
    // The banner is an extra: a failure to load it must not break the page.
  }
  replace(banner, messages.map((message) => h("div",
    { class: `message-banner ${message.severity}`, "data-uuid": message.uuid },
    h("strong", {}, `${severityLabel(message.severity)}: `), message.content)));
}
