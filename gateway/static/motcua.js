// What every motcua page shares: its words, its device token, following the server's
// state by protocol v2 (docs/protocol.md, section 6.4) and sending operations that are
// never carried out twice (section 4, request_id).
import { io } from "/static/vendor/socket.io/socket.io.esm.min.js";

// ---- words -------------------------------------------------------------------------
// The page renders {"vi": {...}, "en": {...}} into <script id="strings">.
const strings = JSON.parse(document.getElementById("strings").textContent);
let lang = document.documentElement.lang === "en" ? "en" : "vi";

export function t(key, vars = {}) {
  const text = strings[lang]?.[key] ?? strings.vi[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

export function currentLang() {
  return lang;
}

// Switch language without a reload: every element with data-t="key" is rewritten.
export function setLang(next) {
  lang = next === "en" ? "en" : "vi";
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
}

// ---- small helpers -----------------------------------------------------------------
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

// Minutes a citizen reads: rounded up, never "0" while someone is still ahead.
export function minutes(seconds) {
  return Math.max(0, Math.ceil((seconds || 0) / 60));
}

// crypto.randomUUID needs a secure context; a centre's LAN page is plain http.
export function newRequestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A device page is opened once as /role/?token=...: drop the token from the URL (and so
// from the history and from whatever is shown on screen), and keep it once the server
// has accepted it (the first snapshot): a mistyped token never replaces a good one.
let offered = null; // {key, value} of a token from the address, not yet accepted

export function deviceToken(role) {
  const key = `motcua.${role}.token`;
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    offered = { key, value: given };
    return given;
  }
  return localStorage.getItem(key);
}

// A JSON request to the server's HTTP API: the bearer token (a staff session's or a
// device's), the page's language (errors come back in it), and the answer whatever the
// status; an answer that is not JSON (a proxy's error page) becomes a refusal in words.
export async function api(method, path, { token = null, body = null } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const sep = path.includes("?") ? "&" : "?";
  const lang = currentLang() === "en" ? `${sep}lang=en` : "";
  const response = await fetch(path + lang, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    answer = { ok: false, error: { message: t("server_trouble") } };
  }
  return { status: response.status, answer };
}

// Ends a staff session on the server (the page is logged out whatever it answers).
export function endSession(token) {
  return api("POST", "/api/v1/auth/logout", { token }).catch(() => null);
}

// Why a device page was refused, for its words: "wrong" (the token it used is not a
// device's of this kind), with `kept` when a token saved before stays for the next start.
// `revoked` when an admin revoked the device (the server's error says so).
export function tokenRefusal(error = null) {
  const kept = offered !== null && localStorage.getItem(offered.key) !== null;
  return { wrong: true, kept, revoked: error?.reason === "device_revoked" };
}

// ---- following state ---------------------------------------------------------------
// The changes after which a page takes a new snapshot instead of applying the batch
// (docs/protocol.md 6.4): the centre reprovisioned, a counter's or a service's entry
// changed. A page that applies one itself (the kiosk, `service_changed`) passes its own.
export const RESYNC_KINDS = ["configured", "counter_changed", "service_changed"];

// Calls handlers.snapshot(s) with each snapshot and handlers.batch(events, services) with
// each batch's news; handlers.online(bool) when the link comes and goes; handlers.refused
// (error) when the server refuses the connection (a bad token: nothing will change until
// someone fixes it, so it retries slowly; a revoked device's error has reason
// "device_revoked").
export function follow({ namespace, auth, snapshotEvent, handlers, resyncOn = RESYNC_KINDS }) {
  const socket = io(namespace, {
    transports: ["websocket"],
    // Read at every (re)connection: socket.io-client hands auth functions a callback.
    auth: (give) => give({ ...auth(), lang: currentLang() }),
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  let last = null; // seq of the state shown; null while waiting for a snapshot
  let buffer = [];
  let closed = false; // the page let go of this link: no retrying
  const retry = (ms) => setTimeout(() => closed || socket.connect(), ms);

  function sync() {
    last = null;
    buffer = [];
    socket.emit("sync", null, (answer) => {
      if (answer && answer.ok === false) setTimeout(sync, 1000);
    });
  }

  function apply(batch) {
    if (batch.seq <= last) return;
    if (batch.after > last) return sync();
    const news = batch.events.filter((e) => e.seq > last);
    if (news.some((e) => resyncOn.includes(e.kind))) return sync();
    last = batch.seq;
    handlers.batch?.(news, batch.services || []);
  }

  socket.on(snapshotEvent, (snapshot) => {
    if (snapshot.protocol !== 2) {
      console.error("motcua: unexpected protocol", snapshot.protocol);
      return;
    }
    last = snapshot.seq;
    if (offered) {
      localStorage.setItem(offered.key, offered.value); // accepted: keep it
      offered = null;
    }
    handlers.snapshot(snapshot);
    const pending = buffer;
    buffer = [];
    for (const batch of pending) if (last !== null) apply(batch);
  });
  socket.on("changes", (batch) => {
    if (last === null) buffer.push(batch);
    else apply(batch);
  });
  socket.on("connect", () => {
    last = null;
    buffer = [];
    handlers.online?.(true);
  });
  socket.on("disconnect", (reason) => {
    handlers.online?.(false);
    // Closed by the server (a clerk's session ended): connect again to hear why.
    if (reason === "io server disconnect") retry(1000);
  });
  // A refusal by the server does not reconnect by itself (socket.io-client leaves it to
  // us); a lost network does, and says nothing here but the "disconnect" above.
  socket.on("connect_error", (err) => {
    handlers.online?.(false);
    if (socket.active) return;
    const code = err?.data?.code;
    if (code === "unauthorized" || code === "forbidden" || code === "not_found") {
      handlers.refused?.(err.data);
      retry(30000);
    } else {
      retry(2000);
    }
  });
  return {
    socket,
    sync,
    close() {
      closed = true;
      socket.disconnect();
    },
    request: (event, payload, options) => request(socket, event, payload, options),
  };
}

// Send an operation and wait for its answer. The same request_id goes with every retry,
// so an operation whose answer was lost (timeout, reconnection) is never done twice.
// Resolves with the answer ({ok: true, ...} or {ok: false, error}); rejects only after
// `giveUpMs` without any answer.
export function request(socket, event, payload, { timeoutMs = 6000, giveUpMs = 60000 } = {}) {
  // A request_id given in the payload is kept (an operation saved to be sent later).
  const body = { ...payload, request_id: payload.request_id ?? newRequestId() };
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      socket.off("connect", attempt);
      fn(value);
    };
    const deadline = setTimeout(() => finish(reject, new Error("no answer")), giveUpMs);
    function attempt() {
      if (done) return;
      if (!socket.connected) {
        socket.once("connect", attempt);
        return;
      }
      socket.timeout(timeoutMs).emit(event, body, (err, answer) => {
        if (done) return;
        if (err) attempt();
        else if (answer?.ok === false && answer.error?.code === "unavailable") {
          setTimeout(attempt, 1000);
        } else finish(resolve, answer);
      });
    }
    attempt();
  });
}

// A clock in the centre's time zone, whatever the device's own zone is set to.
export function startClock(node, timeZone) {
  const format = new Intl.DateTimeFormat("vi-VN", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
  });
  const tick = () => {
    node.textContent = format.format(new Date());
  };
  tick();
  return setInterval(tick, 15000);
}

// The staff login form of the clerk's, the monitor's and the reports' pages (classes
// `<prefix>-login`, `-primary`, `-error`): username and password, a refusal in the
// server's words; `loggedIn(token)` once the server accepts them.
export function staffLogin(prefix, loggedIn) {
  const error = el("p", { class: `${prefix}-error`, role: "alert", "data-testid": "login-error" });
  const form = el(
    "form",
    { class: `${prefix}-login`, "data-testid": "login" },
    el("h1", {}, t("login_title")),
    el("label", {}, t("username"), el("input", { name: "username", autocomplete: "username", required: true })),
    el("label", {}, t("password"),
      el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { type: "submit", class: `${prefix}-primary` }, t("login")),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    error.textContent = "";
    try {
      const { status, answer } = await api("POST", "/api/v1/auth/login", {
        body: { username: form.username.value.trim(), password: form.password.value },
      });
      if (status === 200) await loggedIn(answer.token);
      else error.textContent = answer?.error?.message || t("server_trouble");
    } catch {
      error.textContent = t("server_unreachable");
    } finally {
      button.disabled = false;
    }
  });
  setTimeout(() => form.username.focus(), 0);
  return form;
}
