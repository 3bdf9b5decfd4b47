// Tag policies of an organization, a user or a repository: auto-prune and immutability.

import { del, get, post, put } from "../api.js";
import { actionButton, checkbox, errorBox, field, flash, form, h, replace, select, table } from "../dom.js";

const METHODS = [["number_of_tags", "Keep the newest N tags"], ["creation_date", "Remove tags older than"]];

const patternText = (policy) => policy.tagPattern
  ? `${policy.tagPatternMatches === false ? "not matching" : "matching"} ${policy.tagPattern}`
  : "all tags";

function describe(policy) {
  if (policy.method === "number_of_tags") return `Keep the newest ${policy.value} tags`;
  return `Remove tags older than ${policy.value}`;
}

function patternBody(values) {
  const pattern = values.get("tagPattern").trim();
  return pattern ? { tagPattern: pattern, tagPatternMatches: values.get("tagPatternMatches") !== "on" } : {};
}

// One list of policies with its form; `editing` holds the uuid the form saves to, if any.
function policySection(base, { title, empty, fields, body, label, summary }) {
  const list = h("div");
  let editing = null;
  const submit = form("stack", fields(), "Save policy", async (values, element) => {
    if (editing) await put(`${base}${editing}`, body(values));
    else await post(base, body(values));
    flash(editing ? "Policy updated." : "Policy created.");
    editing = null;
    element.reset();
    await load();
  });
  async function load() {
    try {
      const { policies } = await get(base);
      const rows = policies.map((policy) => [
        summary(policy),
        patternText(policy),
        h("span", {},
          actionButton("Edit", async () => {
            editing = policy.uuid;
            for (const [name, value] of Object.entries(policy)) {
              const input = submit.elements.namedItem(name);
              if (input && input.type !== "checkbox") input.value = value ?? "";
            }
            submit.elements.namedItem("tagPatternMatches").checked = policy.tagPatternMatches === false;
          }, { class: "secondary", "aria-label": `Edit ${label(policy)}` }), " ",
          actionButton("Delete", async () => {
            await del(`${base}${policy.uuid}`);
            flash("Policy deleted.");
            await load();
          }, { class: "secondary", "aria-label": `Delete ${label(policy)}`, "data-confirm": `Delete the policy ${label(policy)}?` })),
      ]);
      replace(list, table(["Rule", "Applies to", ""], rows, empty));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  return { element: h("div", {}, h("h2", {}, title), list, submit), load };
}

const patternFields = () => [
  field("Tag pattern (regular expression, optional for auto-prune)", "tagPattern", { maxlength: 256 }),
  checkbox("Apply to tags that do NOT match the pattern", "tagPatternMatches"),
];

// `autoprunePath` and `immutabilityPath` are API paths ending in "/"; either may be null.
export async function policiesTab(autoprunePath, immutabilityPath) {
  const sections = [];
  if (autoprunePath) {
    sections.push(policySection(autoprunePath, {
      title: "Auto-prune policies",
      empty: "No auto-prune policies.",
      fields: () => [
        select("Method", "method", METHODS, "number_of_tags"),
        field("Value (a number of tags, or a duration such as 7d or 2w)", "value", { required: true }),
        ...patternFields(),
      ],
      body: (values) => {
        const method = values.get("method");
        const raw = values.get("value").trim();
        const value = method === "number_of_tags" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
        return { method, value, ...patternBody(values) };
      },
      label: (policy) => `${describe(policy)} (${patternText(policy)})`,
      summary: describe,
    }));
  }
  if (immutabilityPath) {
    sections.push(policySection(immutabilityPath, {
      title: "Immutability policies",
      empty: "No immutability policies.",
      fields: patternFields,
      body: (values) => ({ tagPatternMatches: true, ...patternBody(values), tagPattern: values.get("tagPattern").trim() }),
      label: (policy) => `immutable ${patternText(policy)}`,
      summary: () => "Tags are immutable",
    }));
  }
  await Promise.all(sections.map((section) => section.load()));
  return h("div", {}, sections.map((section) => section.element));
}
