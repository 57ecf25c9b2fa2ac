// Calls to API v1 with the session cookie; state-changing calls carry the CSRF header.

let csrf = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body, options = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", keepalive: options.keepalive === true,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body, options) => call("POST", path, body === undefined ? {} : body, options);

export function query(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// Is the page logged in? Picks up the CSRF value of an existing session.
export async function resume() {
  csrf = (await get("/api/v1/session")).csrf;
  return csrf !== null;
}

export async function login(token) {
  csrf = (await call("POST", "/api/v1/login", { token })).csrf;
}

export async function logout() {
  await post("/api/v1/logout");
  csrf = null;
}

export function audioUrl(id) {
  return `/api/v1/tracks/${encodeURIComponent(id)}/audio`;
}
