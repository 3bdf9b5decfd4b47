// Talks to /api/v1 exactly as any other client would: same session cookie, same CSRF rules.

let csrfToken = null;

export class ApiFailure extends Error {
  constructor(status, body) {
    super(describeError(status, body));
    this.status = status;
    this.body = body;
  }
}

// Quay's error bodies come in several shapes; turn each into words.
export function describeError(status, body) {
  if (body && typeof body === "object") {
    if (typeof body.message === "string" && body.message) return body.message;
    if (body.message && typeof body.message === "object") {
      return Object.entries(body.message).map(([k, v]) => `${k}: ${v}`).join("; ");
    }
    const text = body.error_message || body.detail || body.error_description || body.title || body.error;
    if (text) return String(text);
  }
  if (typeof body === "string" && body) return body;
  if (status === 401) return "You need to sign in for this.";
  if (status === 403) return "You are not allowed to do this.";
  if (status === 404) return "Not found.";
  return `The server answered with status ${status}.`;
}

export async function ensureCsrf() {
  if (csrfToken) return csrfToken;
  const response = await fetch("/csrf_token", { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } });
  const body = await response.json();
  csrfToken = body.csrf_token;
  return csrfToken;
}

export function forgetCsrf() {
  csrfToken = null;
}

export async function api(method, path, body) {
  const headers = { "X-Requested-With": "XMLHttpRequest", Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = await ensureCsrf();
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
  }
  const url = path.startsWith("/") ? path : `/api/v1/${path}`;
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new ApiFailure(0, { message: `The server could not be reached (${error.message}).` });
  }
  const next = response.headers.get("X-Next-CSRF-Token");
  if (next) csrfToken = next;
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body ?? {});
export const del = (path) => api("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
