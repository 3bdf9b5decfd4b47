// A small, safe Markdown renderer for repository descriptions.
// It never parses HTML: the text becomes DOM nodes built one by one, so markup such as <script>
// stays text. Only a whitelist of Markdown constructs is recognised: headings, paragraphs,
// emphasis, inline and fenced code, lists, quotes, rules and links to http(s), mailto or
// in-page addresses.

import { h } from "./dom.js";

const SAFE_LINK = /^(https?:\/\/|mailto:|#|\/(?!\/))/i;
const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|_([^_\s][^_]*)_|\[([^\]]+)\]\(([^)\s]+)\)|<(https?:\/\/[^>\s]+)>/;

function link(text, href, whole) {
  // A link to another scheme (javascript:, data:) stays the text that was written.
  if (!SAFE_LINK.test(href)) return whole;
  const external = /^https?:/i.test(href);
  return h("a", { href, rel: external ? "nofollow noopener noreferrer" : null }, inline(text));
}

// Inline constructs, leftmost first; whatever does not match stays text.
export function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      nodes.push(rest);
      break;
    }
    if (match.index) nodes.push(rest.slice(0, match.index));
    const [whole, ticks, code, strong1, strong2, em1, em2, linkText, href, autolink] = match;
    if (ticks) nodes.push(h("code", {}, code.trim()));
    else if (strong1 || strong2) nodes.push(h("strong", {}, inline(strong1 || strong2)));
    else if (em1 || em2) nodes.push(h("em", {}, inline(em1 || em2)));
    else if (linkText) nodes.push(link(linkText, href, whole));
    else if (autolink) nodes.push(link(autolink, autolink, whole));
    rest = rest.slice(match.index + whole.length);
  }
  return nodes;
}

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
const FENCE = /^\s*(```|~~~)/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d+[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;

function startsBlock(line) {
  return HEADING.test(line) || FENCE.test(line) || BULLET.test(line) || NUMBERED.test(line)
    || QUOTE.test(line) || RULE.test(line);
}

function takeWhile(lines, start, test) {
  let end = start;
  while (end < lines.length && test(lines[end])) end += 1;
  return end;
}

// Headings render two levels down so that a description's "# Title" sits under the page's h1.
function heading(match) {
  const level = Math.min(match[1].length + 2, 6);
  return h(`h${level}`, {}, inline(match[2]));
}

export function renderMarkdown(source) {
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const fence = FENCE.exec(line);
    if (fence) {
      const end = takeWhile(lines, i + 1, (l) => !l.trim().startsWith(fence[1]));
      blocks.push(h("pre", { class: "md-code" }, h("code", {}, lines.slice(i + 1, end).join("\n"))));
      i = end + 1;
    } else if (HEADING.test(line)) {
      blocks.push(heading(HEADING.exec(line)));
      i += 1;
    } else if (RULE.test(line)) {
      blocks.push(h("hr"));
      i += 1;
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      const pattern = BULLET.test(line) ? BULLET : NUMBERED;
      const end = takeWhile(lines, i, (l) => pattern.test(l));
      const items = lines.slice(i, end).map((l) => h("li", {}, inline(pattern.exec(l)[1])));
      blocks.push(h(pattern === BULLET ? "ul" : "ol", {}, items));
      i = end;
    } else if (QUOTE.test(line)) {
      const end = takeWhile(lines, i, (l) => QUOTE.test(l));
      blocks.push(h("blockquote", {}, renderMarkdown(lines.slice(i, end).map((l) => QUOTE.exec(l)[1]).join("\n"))));
      i = end;
    } else {
      const end = takeWhile(lines, i, (l) => l.trim() && !startsBlock(l));
      blocks.push(h("p", {}, inline(lines.slice(i, Math.max(end, i + 1)).join(" "))));
      i = Math.max(end, i + 1);
    }
  }
  return h("div", { class: "markdown" }, blocks);
}
