// Shared by the dashboard pages: tokens and the login dialog, JSON fetches that log in on 401, the realtime client,
// the connection status in the header, and small formatting helpers. Plain ES module, no build step.

const tokenKey = "iotrealtime.token";

/** The stored token, or null when none or expired. */
export function currentToken() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(tokenKey) ?? "null");
    if (!stored?.token) return null;
    if (stored.expiresAt && Date.parse(stored.expiresAt) <= Date.now()) return null;
    return stored.token;
  } catch {
    return null;
  }
}

// Realtime clients of this page: a new token reaches them, so their next (re)connection uses it.
const realtimeClients = new Set();
let renewTimer = null;

function storeToken(answer) {
  sessionStorage.setItem(tokenKey, JSON.stringify({ token: answer.token, expiresAt: answer.expiresAt ?? null }));
  for (const client of realtimeClients) client.token = answer.token;
  scheduleRenewal(answer.expiresAt);
}

/**
 * Tokens are short-lived (15 min by default) and an open stream outlives them; a reconnect after expiry would be
 * refused. So a minute before expiry (a quarter of the lifetime for shorter ones) the sign-in dialog asks again.
 */
function scheduleRenewal(expiresAt) {
  clearTimeout(renewTimer);
  const expires = Date.parse(expiresAt ?? "");
  if (!Number.isFinite(expires) || realtimeClients.size === 0) return;
  const left = expires - Date.now();
  const lead = Math.min(60_000, left / 4);
  renewTimer = setTimeout(() => login("Your session is about to expire; sign in again to stay connected."), Math.max(0, left - lead));
}

export function forgetToken() {
  sessionStorage.removeItem(tokenKey);
}

let pendingLogin = null;

/** Shows the login dialog until POST /api/token accepts the credentials; resolves with the token. */
export function login(reason) {
  pendingLogin ??= showLoginDialog(reason).finally(() => { pendingLogin = null; });
  return pendingLogin;
}

function showLoginDialog(reason) {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.id = "login";
    dialog.setAttribute("aria-labelledby", "login-title");
    dialog.innerHTML = `
      <form method="dialog" novalidate>
        <h2 id="login-title">Sign in</h2>
        <p class="muted" id="login-reason"></p>
        <label>User name <input name="username" autocomplete="username" required></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
        <p class="error" role="alert" aria-live="assertive"></p>
        <button type="submit">Sign in</button>
      </form>`;
    dialog.querySelector("#login-reason").textContent = reason ?? "This server needs a user name and password.";
    const form = dialog.querySelector("form");
    const error = dialog.querySelector(".error");
    // Escape must not leave the page without a token.
    dialog.addEventListener("cancel", (e) => e.preventDefault());
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.textContent = "";
      const body = { username: form.username.value, password: form.password.value };
      try {
        const response = await fetch("/api/token", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        if (!response.ok) {
          error.textContent = response.status === 401 || response.status === 403
            ? "Wrong user name or password."
            : `The server refused: HTTP ${response.status} ${await errorText(response)}`;
          return;
        }
        const answer = await response.json();
        storeToken(answer);
        dialog.close();
        dialog.remove();
        resolve(answer.token);
      } catch (err) {
        error.textContent = `Cannot reach the server: ${err.message}`;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    form.username.focus();
  });
}

async function errorText(response) {
  try {
    const text = await response.text();
    try {
      return JSON.parse(text).error ?? text;
    } catch {
      return text;
    }
  } catch {
    return "";
  }
}

/** An HTTP error with the status, so callers can tell 404 (feature not configured) from the rest. */
export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** fetch() with the bearer token; on 401 asks for credentials and tries again. Throws HttpError on other failures. */
export async function authFetch(url, init = {}) {
  for (;;) {
    const token = currentToken();
    const headers = new Headers(init.headers ?? {});
    if (token) headers.set("Authorization", `Bearer ${token}`);
    const response = await fetch(url, { ...init, headers });
    if (response.status === 401) {
      forgetToken();
      await login(token ? "Your session has expired; sign in again." : undefined);
      continue;
    }
    if (!response.ok) throw new HttpError(response.status, `${url}: HTTP ${response.status} ${await errorText(response)}`);
    return response;
  }
}

export async function getJson(url) {
  return (await authFetch(url)).json();
}

/** GET that answers null on 404 (an optional endpoint), the JSON otherwise. */
export async function getOptionalJson(url) {
  try {
    return await getJson(url);
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return null;
    throw err;
  }
}

/** The page's query parameters. */
export const query = new URLSearchParams(location.search);

/**
 * The realtime client (/js/iotrealtime.js), after making sure the server lets us in (a 401 on /api/fleet opens the
 * login dialog). ?transport=sse|ws|auto on the page's URL picks the transport.
 */
export async function connectRealtime() {
  await authFetch("/api/fleet");
  const { IotRealtimeClient } = await import("/js/iotrealtime.js");
  const transport = query.get("transport") ?? "auto";
  const client = new IotRealtimeClient({ baseUrl: "", token: currentToken(), transport });
  realtimeClients.add(client);
  try {
    scheduleRenewal(JSON.parse(sessionStorage.getItem(tokenKey) ?? "null")?.expiresAt);
  } catch {
    // nothing stored: no token needed
  }
  const pill = document.getElementById("transport");
  const show = (name) => {
    if (!pill) return;
    pill.textContent = name ? `live via ${name === "ws" ? "WebSocket" : "SSE"}` : "connecting…";
    pill.className = `pill ${name ? "ok" : "warn"}`;
  };
  show(client.transport);
  client.addEventListener("transport", (e) => show(e.detail));
  return client;
}

/** Shows a message in the page's #notice element (kind: "", "bad" or "ok"); null hides it. */
export function notice(text, kind = "") {
  const el = document.getElementById("notice");
  if (!el) return;
  el.className = `notice ${kind}`;
  el.textContent = text ?? "";
  el.classList.toggle("hidden", !text);
}

/** Payload text of a realtime message (base64 payloads are shown as such, marked). */
export function payloadText(msg) {
  return msg.enc === "base64" ? `base64:${msg.data}` : (msg.data ?? "");
}

export function formatTime(iso) {
  const d = iso ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleTimeString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

export function formatRate(perSecond) {
  if (!Number.isFinite(perSecond)) return "–";
  return perSecond >= 100 ? Math.round(perSecond).toLocaleString() : perSecond.toFixed(1);
}

/** Messages per second over a sliding window of the last few seconds, for counts the page sees itself. */
export class RateMeter {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    this.events = [];
  }

  add(count = 1) {
    this.events.push([performance.now(), count]);
  }

  perSecond() {
    const now = performance.now();
    while (this.events.length && now - this.events[0][0] > this.windowMs) this.events.shift();
    const total = this.events.reduce((sum, [, n]) => sum + n, 0);
    return total / (this.windowMs / 1000);
  }
}

/**
 * Runs fn once per animation frame while work is queued: pages queue incoming messages and draw them in one batch,
 * so hundreds of messages per second cost one layout per frame. Hidden tabs get no frames; a timer keeps the
 * bounded buffers draining there.
 */
export function frameScheduler(fn) {
  let scheduled = false;
  const run = () => {
    scheduled = false;
    fn();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    if (document.visibilityState === "hidden") setTimeout(run, 250);
    else requestAnimationFrame(run);
  };
}
