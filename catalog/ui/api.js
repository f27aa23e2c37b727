// Calls to the control plane's API. People sign in with password + TOTP code; the server
// answers with an HTTP-only, SameSite=Strict session cookie that the browser sends with
// every same-origin call. No credential is ever visible to (or kept by) these scripts.

/** A non-2xx answer: the status and the API's `error` message. */
export class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/**
 * method + path (+ body) -> parsed JSON (null for 204), or throws ApiError. The body is sent
 * as JSON, or as it is (a string) when `contentType` is given.
 */
export async function api(method, path, body, contentType) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  const payload = body === undefined ? undefined : contentType ? body : JSON.stringify(body);
  let resp;
  try {
    resp = await fetch(path, { method, headers, credentials: "same-origin", body: payload });
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
  if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || text || resp.statusText, resp.headers.get("Retry-After"));
  return data;
}
