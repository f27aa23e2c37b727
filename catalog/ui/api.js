// Calls to the control plane's API with the token the user signed in with. The token is
// kept in sessionStorage: it lives as long as the tab and is never sent anywhere else.

const KEY = "weir.token";

/** A non-2xx answer: the status and the API's `error` message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

/** method + path (+ JSON body) -> parsed JSON (null for 204), or throws ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `the control plane did not answer (${e.message})`);
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || text || resp.statusText);
  return data;
}
