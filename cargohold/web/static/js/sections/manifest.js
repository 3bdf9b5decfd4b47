// One manifest: for an index its platforms (each a link to the child manifest), for an image its
// layers with the commands that made them; labels, annotations, the pull-by-digest command and
// the OCI referrers (signatures, SBOMs, attestations) grouped by artifact type.

import { get } from "../api.js";
import { copyField, errorBox, formatBytes, formatDate, h, shortDigest, table } from "../dom.js";

function manifestLink(path, digest) {
  return h("a", { href: `#/repository/${path}?tab=manifest&digest=${digest}`, class: "mono", title: digest },
    shortDigest(digest));
}

function keyValueTable(pairs, empty) {
  return table(["Key", "Value"], pairs.map(([key, value]) => [h("span", { class: "mono" }, key), value]), empty);
}

function platformTable(path, index) {
  const rows = (index.manifests || []).map((child) => {
    const platform = child.platform || {};
    return [
      platform.os || "—",
      platform.architecture || "—",
      platform.variant || "",
      manifestLink(path, child.digest),
      formatBytes(child.size),
    ];
  });
  return table(["OS", "Architecture", "Variant", "Manifest", "Manifest size"], rows, "This index lists no manifests.");
}

function layerTable(layers) {
  const rows = layers.map((layer) => [
    String(layer.index + 1),
    formatBytes(layer.compressed_size),
    layer.command ? h("code", { class: "command" }, [].concat(layer.command).join(" ")) : h("span", { class: "muted" }, "unknown"),
    layer.created_datetime ? formatDate(layer.created_datetime) : "",
    h("span", { class: "mono", title: layer.blob_digest }, shortDigest(layer.blob_digest)),
  ]);
  return table(["#", "Size", "Created by", "Created", "Blob"], rows, "No layers.");
}

function referrerSection(path, referrers) {
  if (!referrers.length) return h("p", { class: "muted" }, "No signatures, SBOMs or other artifacts refer to this manifest.");
  const byType = new Map();
  for (const referrer of referrers) {
    const type = referrer.artifactType || "unknown artifact type";
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(referrer);
  }
  return [...byType.entries()].map(([type, items]) => h("section", { class: "referrers", "data-artifact-type": type },
    h("h3", {}, type),
    table(["Manifest", "Size", "Annotations"], items.map((item) => [
      manifestLink(path, item.digest),
      formatBytes(item.size),
      Object.entries(item.annotations || {}).map(([key, value]) => h("div", {}, h("span", { class: "mono" }, key), ": ", value)),
    ]))));
}

export async function manifestTab(path, digest) {
  let manifest;
  let labels;
  let referrers;
  const base = `repository/${path}/manifest/${digest}`;
  try {
    [manifest, labels, referrers] = await Promise.all([get(base), get(`${base}/labels`), get(`${base}/referrers`)]);
  } catch (error) {
    return errorBox(error);
  }
  let parsed = {};
  try { parsed = JSON.parse(manifest.manifest_data); } catch { /* shown raw below */ }
  const isIndex = manifest.is_manifest_list;
  const layers = manifest.layers || [];
  return h("div", { class: "manifest" },
    h("p", {}, isIndex ? "Multi-architecture index " : "Image manifest ", h("code", { class: "digest" }, manifest.digest)),
    h("div", { class: "card" }, copyField("Pull by digest", `podman pull ${location.host}/${path}@${manifest.digest}`)),
    isIndex ? [h("h2", {}, "Platforms"), platformTable(path, parsed)]
      : [h("h2", {}, "Layers"), h("p", { class: "muted" }, `${layers.length} layers, ${formatBytes(manifest.layers_compressed_size)} compressed`), layerTable(layers)],
    h("section", { class: "labels" }, h("h2", {}, "Labels"),
      keyValueTable((labels.labels || []).map((label) => [label.key, label.value]), "No labels.")),
    h("section", { class: "annotations" }, h("h2", {}, "Annotations"),
      keyValueTable(Object.entries(parsed.annotations || {}), "No annotations.")),
    h("h2", {}, "Referrers"),
    referrerSection(path, referrers.manifests || []),
    h("details", {}, h("summary", {}, "Manifest document"), h("pre", { class: "log" }, JSON.stringify(parsed, null, 2))));
}
