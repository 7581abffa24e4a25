// The REST API with the browser session: JSON in and out, CSRF header on writes.

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/**
 * Call /api/v1/… and return {status, ok, data, headers}; never throws on an HTTP error
 * (the API's errors are {"error", "detail", "fields"}). Network failures throw.
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = cookie("csrftoken");
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path.startsWith("/") ? path : `/api/v1/${path}`, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return { status: response.status, ok: response.ok, data, headers: response.headers };
}

/** Like api(), but a network failure comes back as an error result, shown like any other. */
export async function apiOrOffline(method, path, body) {
  try {
    return await api(method, path, body);
  } catch {
    return { status: 0, ok: false, data: { detail: "Cannot reach the server; try again." }, headers: null };
  }
}

/** The human message of an API error response. */
export function errorMessage(result, fallback = "Something went wrong; try again.") {
  const data = result && result.data;
  if (data && data.fields) {
    const first = Object.values(data.fields)[0];
    if (first && first.length) return String(first[0]);
  }
  return (data && data.detail) || fallback;
}

export const roomPath = (code, rest = "") => `/api/v1/rooms/${encodeURIComponent(code)}/${rest}`;
