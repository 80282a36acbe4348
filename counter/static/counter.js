// The clerk's page: log in, take a counter, then serve the queue all day.
// State: the /counter snapshot (counter_state) and its batches, applied as
// docs/protocol.md section 8.2 says (harness/replica.py CounterReplica is the reference).
import { api as callApi, currentLang, el, follow, minutes, t, staffLogin } from "/static/motcua.js";

const app = document.getElementById("app");
const data = JSON.parse(document.getElementById("counter-data").textContent);
const TOKEN = "motcua.counter.session";
const COUNTER = "motcua.counter.number";
const CENTRE = "motcua.counter.centre"; // the centre chosen, for an account in several
const WAITING = ["waiting", "transferred"];
const DAY_REFRESH_MS = 60000;

const state = {
  token: sessionStorage.getItem(TOKEN),
  centre: null, // GET /api/v1/centre
  number: Number(sessionStorage.getItem(COUNTER)) || null,
  snap: null, // counter_state, kept up to date
  online: false,
  busy: false, // an operation is in flight: every action button is disabled
  message: null, // {text, kind}
  day: null, // my_day
  dialog: null, // "finish" | "transfer" | "pause"
  codes: [], // dossier codes typed or scanned for the finish dialog
  thenCall: false, // the finish dialog was opened by "call next": call once finished
};
let link = null;
let ticking = null;

// ---- HTTP ----------------------------------------------------------------------------
function api(method, path, body) {
  return callApi(method, path, { token: state.token, body });
}

function forget() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(COUNTER);
  sessionStorage.removeItem(CENTRE);
  Object.assign(state, { token: null, number: null, snap: null, centre: null, day: null });
  if (link) link.close();
  link = null;
}

// ---- screens -------------------------------------------------------------------------
function render() {
  clearInterval(ticking);
  let view;
  if (!state.token) view = loginView();
  else if (!state.number) view = chooseView();
  else view = workView();
  app.replaceChildren(...[view].flat().filter(Boolean));
  app.dataset.view = !state.token ? "login" : !state.number ? "choose" : "work";
  document.getElementById("offline").hidden = !state.number || state.online;
  if (state.number) ticking = setInterval(tick, 1000);
}

function loginView() {
  const form = staffLogin("c", async (token) => {
    state.token = token;
    sessionStorage.setItem(TOKEN, token);
    await loadCentre();
  });
  return [el("header", { class: "c-head" }, el("div", { class: "c-centre" }, data.title)), form];
}

async function loadCentre() {
  const code = sessionStorage.getItem(CENTRE);
  const query = code ? `?centre=${encodeURIComponent(code)}` : "";
  const { status, answer } = await api("GET", "/api/v1/centre" + query);
  if (status === 401) {
    forget();
  } else if (status === 200) {
    state.centre = answer;
    if (state.number) connect();
  } else {
    state.message = { text: answer.error?.message || t("server_trouble"), kind: "error" };
  }
  render();
}

function chooseView() {
  if (!state.centre) return el("p", { class: "c-note" }, t("loading"));
  const mine = state.centre.counters.filter((c) => c.allowed);
  // An account working for several centres (a clerk lent to a commune office) picks one.
  const centres = state.centre.centres || [];
  return [
    header(),
    el("main", { class: "c-choose" },
      centres.length > 1 ? el("div", { class: "c-centres", "data-testid": "centres" },
        centres.map((c) => el("button", {
          type: "button",
          class: "c-link",
          "aria-pressed": String(c.code === state.centre.centre.code),
          onclick: () => chooseCentre(c.code),
        }, c.name))) : null,
      el("h1", {}, t("choose_counter")),
      el("div", { class: "c-counters" },
        mine.map((c) =>
          el("button", {
            type: "button",
            class: "c-counter-choice",
            "data-counter": c.number,
            onclick: () => take(c.number),
          },
          el("strong", {}, c.name),
          el("span", {}, c.clerk ? t("held_by", { name: c.clerk }) : t("status_" + c.status))))),
      mine.length ? null : el("p", { class: "c-note" }, t("no_counter"))),
  ];
}

function chooseCentre(code) {
  sessionStorage.setItem(CENTRE, code);
  state.centre = null;
  render();
  loadCentre();
}

function take(number) {
  state.number = number;
  sessionStorage.setItem(COUNTER, String(number));
  connect();
  render();
}

function header() {
  const c = state.snap?.counter;
  return el("header", { class: "c-head" },
    el("div", { class: "c-centre" }, state.centre?.centre.name || ""),
    c ? el("div", { class: "c-where" },
      el("strong", { "data-testid": "counter-name" }, c.name),
      el("span", { class: `c-pill ${c.status}`, "data-testid": "counter-status" },
        c.status === "paused" ? t("status_paused_because", { reason: c.pause_reason || "" }) : t("status_" + c.status))) : null,
    el("div", { class: "c-who" },
      el("span", {}, state.centre?.staff.full_name || ""),
      state.number ? el("button", { type: "button", class: "c-link", onclick: leaveCounter }, t("change_counter")) : null,
      el("button", { type: "button", class: "c-link", onclick: logout }, t("logout"))));
}

// The action buttons and their shortcut keys (shown on the buttons). When each may be
// pressed comes from the server: the snapshot's `actions`, core/lifecycle.py's tables as
// data (the server checks again and says why when it refuses). The pause button resumes
// a paused counter.
const ACTIONS = [
  { id: "call_next", key: "G" },
  { id: "recall", key: "L" },
  { id: "start", key: "B" },
  { id: "finish", key: "H" },
  { id: "no_show", key: "V" },
  { id: "transfer", key: "C" },
  { id: "pause", key: "T" },
  { id: "close", key: null },
];

function eventOf(id, counter) {
  return id === "pause" && counter.status === "paused" ? "resume" : id;
}

function allowed(event) {
  const rule = state.snap?.actions?.[event];
  const snap = state.snap;
  if (!rule || !rule.counter.includes(snap.counter.status)) return false;
  if (!rule.ticket.includes(snap.current ? snap.current.status : null)) return false;
  // An action that must wait (a no-show, while the citizen walks over).
  return !rule.after || waitLeft(rule.after) <= 0;
}

function waitLeft(after) {
  const since = state.snap.current?.[after.time];
  return since ? after.seconds - (Date.now() - Date.parse(since)) / 1000 : 0;
}

function actionLabel(a, counter) {
  if (a.id === "pause" && counter.status === "paused") return t("resume");
  return t("action_" + a.id);
}

function workView() {
  const snap = state.snap;
  if (!snap) return [header(), el("p", { class: "c-note" }, t("loading"))];
  const counter = snap.counter;
  const current = snap.current;
  const buttons = ACTIONS.map((a) =>
    el("button", {
      type: "button",
      class: `c-action c-${a.id}`,
      "data-action": a.id,
      disabled: state.busy || !state.online || !allowed(eventOf(a.id, counter)),
      onclick: () => act(a.id),
    },
    el("span", { class: "c-action-label" }, actionLabel(a, counter)),
    a.key ? el("kbd", {}, a.key) : null));
  return [
    header(),
    alertsView(),
    el("main", { class: "c-work" },
      el("section", { class: "c-left" },
        currentView(current),
        el("div", { class: "c-actions" }, buttons),
        el("p", {
          class: `c-message ${state.message?.kind || ""}`,
          role: "status",
          "data-testid": "message",
        }, state.message?.text || "")),
      el("section", { class: "c-right" }, queueView(snap), dayView())),
    dialogView(),
  ];
}

function alertsView() {
  const alerts = state.snap.device_alerts || [];
  if (!alerts.length) return null;
  return el("div", { class: "c-alerts", role: "alert", "data-testid": "alerts" },
    alerts.map((a) => el("p", {}, `${a.device.name}: ${t("alert_" + a.alert)}`)));
}

function since(iso) {
  return iso ? Math.max(0, (Date.now() - Date.parse(iso)) / 1000) : 0;
}

function clock(seconds) {
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function currentView(k) {
  if (!k) return el("div", { class: "c-current empty", "data-testid": "current" }, t("no_current"));
  const waited = (Date.parse(k.called_at) - Date.parse(k.issued_at)) / 1000;
  return el("div", { class: `c-current ${k.status}`, "data-testid": "current" },
    el("div", { class: "c-current-number", "data-testid": "current-number" }, k.number),
    el("div", { class: "c-current-service" }, k.service.name),
    k.priority ? el("div", { class: "c-priority" }, "★ " + priorityName(k.priority)) : null,
    el("div", { class: "c-current-status", "data-testid": "current-status" }, t("ticket_" + k.status)),
    el("dl", {},
      el("dt", {}, t("waited")), el("dd", {}, t("minutes_n", { m: minutes(waited) })),
      el("dt", {}, k.status === "serving" ? t("served_for") : t("called_for")),
      el("dd", { id: "elapsed" }, clock(since(k.started_at || k.called_at)))));
}

function tick() {
  const k = state.snap?.current;
  // A button that was waiting (a no-show) becomes pressable.
  const waiting = document.querySelector("[data-action=no_show]");
  if (waiting && waiting.disabled !== (state.busy || !state.online || !allowed("no_show"))) render();
  const node = document.getElementById("elapsed");
  if (k && node) node.textContent = clock(since(k.started_at || k.called_at));
  for (const row of document.querySelectorAll("[data-issued]")) {
    row.textContent = t("minutes_n", { m: minutes(since(row.dataset.issued)) });
  }
}

function priorityName(code) {
  const p = data.priorities[code];
  return p ? p[currentLang() === "en" ? 1 : 0] : code;
}

function queueView(snap) {
  const rows = snap.queue.map((k) =>
    el("li", { "data-ticket": k.number, class: k.priority ? "priority" : "" },
      el("span", { class: "c-q-number" }, k.number),
      el("span", { class: "c-q-service" }, k.service.name,
        k.priority ? el("em", {}, " ★ " + priorityName(k.priority)) : null,
        k.target_counter ? el("em", {}, " " + t("sent_here")) : null),
      el("span", { class: "c-q-waited", "data-issued": k.issued_at }, t("minutes_n", { m: minutes(since(k.issued_at)) })),
      el("button", {
        type: "button",
        class: "c-q-call",
        disabled: state.busy || !state.online || !allowed("call"),
        onclick: () => send("call", { ticket_id: k.id }),
      }, t("call_this"))));
  return el("div", { class: "c-queue" },
    el("h2", {}, t("queue_title", { n: snap.queue.length })),
    rows.length ? el("ol", { "data-testid": "queue" }, rows) : el("p", { class: "c-note" }, t("queue_empty")));
}

function dayView() {
  const d = state.day;
  return el("div", { class: "c-day", "data-testid": "day" },
    el("h2", {}, t("today")),
    d ? el("dl", {},
      el("dt", {}, t("served")), el("dd", { "data-testid": "served" }, d.served),
      el("dt", {}, t("average")), el("dd", {}, d.average_service_s === null ? "–" : t("minutes_n", { m: minutes(d.average_service_s) }))) : el("p", { class: "c-note" }, "…"),
    d ? ratingsView(d.ratings) : null);
}

// Ratings up to yesterday, once there are enough: never today's, so that no count moves
// right after a visit and no citizen's rating can be told (docs/protocol.md 8.2).
function ratingsView(r) {
  return el("div", { class: "c-ratings", "data-testid": "ratings" },
    el("h3", {}, t("ratings_title")),
    r.levels ? el("dl", {},
      el("dt", {}, t("rating_3")), el("dd", {}, r.levels["3"]),
      el("dt", {}, t("rating_2")), el("dd", {}, r.levels["2"]),
      el("dt", {}, t("rating_1")), el("dd", {}, r.levels["1"]))
      : el("p", { class: "c-note" }, t("ratings_hidden", { n: r.at_least })));
}

// ---- dialogs -------------------------------------------------------------------------
function dialogView() {
  if (!state.dialog) return null;
  const body = { finish: finishDialog, transfer: transferDialog, pause: pauseDialog }[state.dialog]();
  return el("div", { class: "c-overlay" },
    el("div", { class: "c-dialog", role: "dialog", "aria-modal": "true", "data-testid": "dialog-" + state.dialog }, body));
}

function closeDialog() {
  state.dialog = null;
  state.codes = [];
  state.thenCall = false;
  render();
}

function finishDialog() {
  const k = state.snap.current;
  const input = el("input", { name: "dossier", autocomplete: "off", placeholder: t("dossier_hint"), "data-testid": "dossier-input" });
  const chips = el("ul", { class: "c-chips", "data-testid": "dossiers" },
    state.codes.map((code, i) =>
      el("li", {}, code, el("button", { type: "button", "aria-label": t("remove"), onclick: () => { state.codes.splice(i, 1); render(); } }, "×"))));
  // A scanner types the code and Enter, like a keyboard: Enter adds the code.
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const code = input.value.trim();
      if (code && !state.codes.includes(code)) state.codes.push(code);
      input.value = "";
      render();
      document.querySelector("[data-testid=dossier-input]")?.focus();
    } else if (e.key === "Escape") closeDialog();
  });
  setTimeout(() => document.querySelector("[data-testid=dossier-input]")?.focus(), 0);
  const outcomes = el("fieldset", { class: "c-outcomes" },
    el("legend", {}, t("outcome")),
    data.outcomes.map((o, i) =>
      el("label", {}, el("input", { type: "radio", name: "outcome", value: o, checked: i === 0 }), t("outcome_" + o))));
  const confirm = () => {
    const pending = input.value.trim();
    if (pending && !state.codes.includes(pending)) state.codes.push(pending);
    const outcome = document.querySelector("input[name=outcome]:checked")?.value || null;
    const dossiers = [...state.codes];
    const thenCall = state.thenCall;
    closeDialog();
    send("finish", { ticket_id: k.id, dossiers, outcome }).then((ok) => {
      if (ok && thenCall) send("call_next", {});
    });
  };
  return [
    el("h2", {}, t(state.thenCall ? "finish_then_call_title" : "finish_title", { number: k.number })),
    el("label", {}, t("dossiers"), input),
    chips,
    outcomes,
    el("div", { class: "c-dialog-buttons" },
      el("button", { type: "button", class: "c-primary", "data-testid": "confirm", onclick: confirm }, t("action_finish")),
      el("button", { type: "button", onclick: closeDialog }, t("cancel"))),
  ];
}

// The transfer dialog shows the counters as they are now: the centre is read again.
async function openTransfer() {
  await loadCentre();
  state.dialog = "transfer";
  render();
}

function transferDialog() {
  const k = state.snap.current;
  const here = state.snap.counter.number;
  // A service is served when a counter serving it is open or paused (a break ends).
  const served = new Set(state.centre.counters.filter((c) => c.status !== "closed").flatMap((c) => c.services));
  const toService = (s) => {
    if (!served.has(s.code) && !confirm(t("transfer_unserved", { service: s.name }))) return;
    closeDialog();
    send("transfer", { ticket_id: k.id, service: s.code });
  };
  return [
    el("h2", {}, t("transfer_title", { number: k.number })),
    el("h3", {}, t("to_service")),
    el("div", { class: "c-choices" },
      state.centre.services.filter((s) => s.code !== k.service.code).map((s) =>
        el("button", { type: "button", "data-service": s.code, class: served.has(s.code) ? "" : "c-unserved",
          onclick: () => toService(s) },
        s.name, served.has(s.code) ? null : el("small", {}, " " + t("no_counter_open"))))),
    el("h3", {}, t("to_counter")),
    el("div", { class: "c-choices" },
      state.centre.counters.filter((c) => c.number !== here).map((c) =>
        el("button", { type: "button", "data-counter": c.number, disabled: c.status === "closed",
          onclick: () => { closeDialog(); send("transfer", { ticket_id: k.id, counter: c.number }); } },
        c.name, c.status === "closed" ? el("small", {}, " " + t("counter_closed_now")) : null))),
    el("div", { class: "c-dialog-buttons" }, el("button", { type: "button", onclick: closeDialog }, t("cancel"))),
  ];
}

function pauseDialog() {
  const other = el("input", { name: "reason", maxlength: 200, placeholder: t("other_reason"), "data-testid": "reason-input" });
  const pause = (reason) => {
    if (!reason) return;
    closeDialog();
    send("pause", { reason });
  };
  other.addEventListener("keydown", (e) => {
    if (e.key === "Enter") pause(other.value.trim());
    else if (e.key === "Escape") closeDialog();
  });
  return [
    el("h2", {}, t("pause_title")),
    el("div", { class: "c-choices" },
      data.pause_reasons.map((r) => el("button", { type: "button", onclick: () => pause(t(r)) }, t(r)))),
    other,
    el("div", { class: "c-dialog-buttons" },
      el("button", { type: "button", class: "c-primary", onclick: () => pause(other.value.trim()) }, t("action_pause")),
      el("button", { type: "button", onclick: closeDialog }, t("cancel"))),
  ];
}

// ---- operations ----------------------------------------------------------------------
function act(id) {
  const snap = state.snap;
  if (!snap || state.busy || state.dialog) return;
  const k = snap.current;
  if (id === "call_next" && k?.status === "serving") {
    // The visit being served is finished first, with its outcome and dossiers (the
    // centre's figures depend on them), then the next number is called.
    state.thenCall = true;
    state.dialog = "finish";
    render();
    return;
  }
  if (!allowed(eventOf(id, snap.counter))) return;
  if (id === "finish") {
    state.dialog = id;
    render();
  } else if (id === "transfer") {
    openTransfer();
  } else if (id === "pause") {
    if (snap.counter.status === "paused") send("resume", {});
    else {
      state.dialog = "pause";
      render();
    }
  } else if (id === "close") {
    if (confirm(t("close_confirm"))) send("close", {});
  } else if (id === "call_next") send("call_next", {});
  else send(id, { ticket_id: k.id });
}

async function send(event, payload) {
  state.busy = true;
  state.message = null;
  render();
  let ok = false;
  try {
    const answer = await link.request(event, payload);
    ok = !!answer?.ok;
    if (ok) {
      state.message = { text: doneText(event, answer), kind: "ok" };
      applyAnswer(answer);
      if (event === "finish" || event === "call_next") refreshDay();
    } else {
      state.message = { text: answer?.error?.message || t("server_trouble"), kind: "error" };
    }
  } catch {
    state.message = { text: t("no_answer"), kind: "error" };
  } finally {
    state.busy = false;
    render();
  }
  return ok;
}

// An acknowledgement carries the ticket or counter as it now is; the batch with the same
// change may come before or after it (docs/protocol.md 6.4), so both are applied.
function applyAnswer(answer) {
  if (answer.ticket) applyTicket(answer.ticket);
  if (answer.counter && answer.counter.number === state.snap.counter.number) {
    Object.assign(state.snap.counter, answer.counter);
  }
}

// What happened, said after each operation.
function doneText(event, answer) {
  const k = answer.ticket;
  if (event === "call_next" || event === "call") return t("done_called", { number: k.number });
  if (event === "finish") return t("done_finished", { number: k.number });
  if (event === "no_show") return t("done_no_show", { number: k.number });
  if (event === "transfer") {
    return k.target_counter
      ? t("done_sent_counter", { number: k.number, counter: k.target_counter })
      : t("done_sent_service", { number: k.number, service: k.service.name });
  }
  if (event === "pause") return t("done_paused");
  if (event === "resume") return t("done_resumed");
  if (event === "close") return t("done_closed");
  return "";
}

// ---- following the counter -----------------------------------------------------------
function applyTicket(k) {
  const snap = state.snap;
  const me = snap.counter;
  if (["called", "serving"].includes(k.status) && k.counter === me.number) snap.current = k;
  else if (snap.current && snap.current.id === k.id) snap.current = null;
  const queue = snap.queue.filter((q) => q.id !== k.id);
  if (
    WAITING.includes(k.status) &&
    (k.target_counter === me.number || (k.target_counter === null && me.services.includes(k.service.code)))
  ) {
    queue.push(k);
    queue.sort((a, b) => a.issued_at.localeCompare(b.issued_at) || a.id - b.id);
  }
  snap.queue = queue;
}

function applyEvent(e) {
  const snap = state.snap;
  if (e.kind.startsWith("counter_")) {
    if (e.counter.number === snap.counter.number) {
      snap.counter.status = e.counter.status;
      snap.counter.pause_reason = e.counter.pause_reason;
    }
  } else if (e.kind === "device_alert") {
    const alerts = (snap.device_alerts || []).filter((a) => a.device.id !== e.device.id);
    if (e.alert) alerts.push({ device: e.device, alert: e.alert, since: e.since });
    snap.device_alerts = alerts.sort((a, b) => a.device.id - b.device.id);
  } else if (e.ticket) {
    applyTicket(e.ticket);
  }
}

// Today's figures: a read, asked again after each finish and rating, and every minute.
function refreshDay() {
  if (!link?.socket.connected) return;
  link.socket.timeout(10000).emit("my_day", {}, (err, answer) => {
    if (err || !answer?.ok) return; // the figures wait for the next refresh
    state.day = answer;
    if (!state.dialog) render();
  });
}

function connect() {
  if (link) link.close();
  const number = state.number;
  link = follow({
    namespace: "/counter",
    auth: () => ({ token: state.token, counter: number, centre: state.centre?.centre.code }),
    snapshotEvent: "counter_state",
    handlers: {
      snapshot(s) {
        state.snap = s;
        if (!state.dialog) render();
        refreshDay();
      },
      batch(events) {
        for (const e of events) applyEvent(e);
        if (!state.dialog) render();
      },
      online(up) {
        state.online = up;
        if (!state.dialog) render();
        else document.getElementById("offline").hidden = up;
      },
      refused(error) {
        if (error.code === "unauthorized") {
          forget();
        } else {
          state.number = null;
          sessionStorage.removeItem(COUNTER);
          state.message = { text: error.message, kind: "error" };
          if (link) link.close();
          link = null;
        }
        loadCentre();
      },
    },
  });
}

// A citizen called or being served must not be left at a counter nobody works at.
function stillServing() {
  const k = state.snap?.current;
  if (!k) return false;
  state.message = { text: t("still_serving", { number: k.number }), kind: "error" };
  render();
  return true;
}

async function leaveCounter() {
  if (stillServing()) return;
  if (link && state.snap && state.snap.counter.status !== "closed") await send("close", {});
  if (link) link.close();
  link = null;
  state.number = null;
  state.snap = null;
  sessionStorage.removeItem(COUNTER);
  loadCentre();
}

async function logout() {
  if (stillServing()) return;
  // Logging out closes the counter: kiosks stop counting on it, the tablet stops showing
  // the clerk. A counter already closed, or no connection, is logged out all the same.
  if (link && state.snap && state.snap.counter.status !== "closed") {
    await send("close", {});
  }
  try {
    await api("POST", "/api/v1/auth/logout");
  } finally {
    forget();
    render();
  }
}

// ---- keyboard ------------------------------------------------------------------------
document.addEventListener("keydown", (e) => {
  if (!state.snap || state.dialog || e.ctrlKey || e.altKey || e.metaKey) return;
  if (["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName)) return;
  const a = ACTIONS.find((x) => x.key && x.key === e.key.toUpperCase());
  if (a) {
    e.preventDefault();
    act(a.id);
  }
});

// Closing the tab with a citizen at the counter: the browser asks first.
window.addEventListener("beforeunload", (e) => {
  if (state.snap?.current) e.preventDefault();
});

setInterval(refreshDay, DAY_REFRESH_MS);
if (state.token) loadCentre();
else render();
