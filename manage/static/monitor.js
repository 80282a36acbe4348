// The manager's live monitor: log in, then every queue and counter of the centre, live.
// State: the /manage snapshot (monitor_state) and its batches, applied as docs/protocol.md
// section 8.7 says (harness/replica.py ManagerReplica is the reference). Today's figures
// (served, mean waits) are read again after the changes that move them.
import { RESYNC_KINDS, api as callApi, currentLang, el, endSession, follow, minutes, t, staffLogin } from "/static/motcua.js";

const app = document.getElementById("app");
const data = JSON.parse(document.getElementById("monitor-data").textContent);
const TOKEN = "motcua.manage.session";
const CENTRE = "motcua.manage.centre";
const WAITING = ["waiting", "transferred"];
const AT_COUNTER = ["called", "serving"];
const FIGURES_AFTER = ["called", "finished", "no_show", "cancelled", "transferred"];
const FIGURES_EVERY_MS = 60000;
const FIGURES_GAP_MS = 2000; // at most one read of the figures this often

// `/manage/?centre=CODE` (the province's overview links each centre so) watches that one.
const asked = new URLSearchParams(location.search).get("centre");
if (asked) sessionStorage.setItem(CENTRE, asked);

const state = {
  token: sessionStorage.getItem(TOKEN),
  centre: sessionStorage.getItem(CENTRE),
  snap: null,
  online: false,
  refusal: null, // the server's refusal (an account that may not see the monitor)
  message: null, // {text, kind}
  dialog: null, // {kind: "cancel" | "move" | "close", ticket | counter}
  busy: false,
  centres: [], // the centres the account works for (GET /api/v1/centre), to pick one
};
let link = null;
let figuresTimer = null;
let figuresAt = 0;
let devicesTimer = null;

// ---- HTTP ----------------------------------------------------------------------------
function forget() {
  sessionStorage.removeItem(TOKEN);
  Object.assign(state, { token: null, snap: null, refusal: null });
  if (link) link.close();
  link = null;
}

// ---- screens -------------------------------------------------------------------------
function render() {
  let view;
  if (!state.token) view = loginView();
  else if (state.refusal) view = refusedView();
  else if (!state.snap) view = [header(), el("p", { class: "m-note" }, t("loading"))];
  else view = monitorView();
  app.replaceChildren(...[view].flat().filter(Boolean));
  app.dataset.view = !state.token ? "login" : state.snap ? "monitor" : "waiting";
  document.getElementById("offline").hidden = !state.token || state.online || !!state.refusal;
  if (state.dialog) app.append(dialogView());
}

function loginView() {
  const form = staffLogin("m", async (token) => {
    state.token = token;
    sessionStorage.setItem(TOKEN, token);
    connect();
    loadCentres();
    render();
  });
  return [el("header", { class: "m-head" }, el("div", { class: "m-centre" }, data.title)), form];
}

function refusedView() {
  return [header(), el("p", { class: "m-error m-refused", role: "alert", "data-testid": "refused" },
    state.refusal.message)];
}

// An account working for several centres (a province's staff) picks the one to watch.
async function loadCentres() {
  try {
    const { status, answer } = await callApi("GET", "/api/v1/centre", { token: state.token });
    if (status === 200) {
      state.centres = answer.centres || [];
      render();
    }
  } catch {
    // no list: the account's own centre is watched
  }
}

function chooseCentre(code) {
  state.centre = code;
  sessionStorage.setItem(CENTRE, code);
  state.snap = null;
  state.refusal = null;
  connect();
  render();
}

function header() {
  const c = state.snap?.centre;
  const others = state.centres.length > 1
    ? el("select", { class: "m-centres", "data-testid": "centres", "aria-label": t("centre"),
      onchange: (e) => chooseCentre(e.target.value) },
    state.centres.map((x) => el("option", { value: x.code, selected: x.code === (c?.code ?? state.centre) }, x.name)))
    : null;
  // Several centres: the province's overview, every centre's figures on one page.
  const province = state.centres.length > 1
    ? el("a", { class: "m-link", href: "/manage/province", "data-testid": "province-link" }, t("province"))
    : null;
  return el("header", { class: "m-head" },
    el("div", { class: "m-centre" }, c ? english(c.name, c.name_en) : data.title),
    others,
    province,
    el("div", { class: "m-title" }, t("title")),
    el("div", { class: "m-clock", "data-testid": "clock" }, c ? clock(c.timezone) : ""),
    el("button", { type: "button", class: "m-link", onclick: logout }, t("logout")));
}

// A name in English where one is configured and the page is in English.
function english(vi, en) {
  return currentLang() === "en" && en ? en : vi;
}

function clock(timeZone) {
  return new Intl.DateTimeFormat("vi-VN", { timeZone, hour: "2-digit", minute: "2-digit" }).format(new Date());
}

function since(iso) {
  return iso ? Math.max(0, (Date.now() - Date.parse(iso)) / 1000) : 0;
}

// An estimate, rounded up (as citizens read it).
function mins(seconds) {
  return seconds === null || seconds === undefined ? t("none") : t("minutes_n", { m: minutes(seconds) });
}

// Time gone by (a wait so far, a visit so far), in whole minutes: "under a minute" first.
function elapsed(seconds) {
  if (seconds === null || seconds === undefined) return t("none");
  return seconds < 60 ? t("under_a_minute") : t("minutes_n", { m: Math.floor(seconds / 60) });
}

// The longest wait now of each service: its oldest ticket still waiting.
function longestWaits() {
  const out = {};
  for (const k of state.snap.queue) if (!(k.service.code in out)) out[k.service.code] = since(k.issued_at);
  return out;
}

function monitorView() {
  const snap = state.snap;
  const target = snap.centre.target_wait_s;
  const longest = longestWaits();
  const figures = snap.figures;
  const open = {};
  const paused = {};
  for (const c of snap.counters) {
    for (const code of c.services) {
      if (c.status === "open") open[code] = (open[code] || 0) + 1;
      if (c.status === "paused") paused[code] = (paused[code] || 0) + 1;
    }
  }
  const services = el("section", { class: "m-panel" },
    el("h2", {}, t("services"), el("small", {}, t("target_note", { m: minutes(target) }))),
    el("table", { class: "m-table", "data-testid": "services" },
      el("thead", {}, el("tr", {},
        [t("service"), t("waiting"), t("longest"), t("estimate"), t("counters_open"), t("served_today"), t("mean_wait")]
          .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, snap.services.map((s) => {
        const wait = longest[s.code] || 0;
        const over = wait > target;
        const f = figures.services[s.code] || {};
        return el("tr", { class: over ? "over" : "", "data-service": s.code },
          el("th", { scope: "row" }, english(s.name, s.name_en), el("small", {}, english(s.agency, s.agency_en))),
          el("td", { class: "num", "data-col": "waiting" }, s.waiting),
          el("td", { class: "num", "data-col": "longest" },
            s.waiting ? elapsed(wait) : t("none"),
            over ? el("strong", { class: "m-over", "data-testid": "over-target" }, t("over_target", { m: minutes(target) })) : null),
          el("td", { class: "num", "data-col": "estimate" }, s.waiting ? mins(s.estimated_wait_s) : t("none")),
          el("td", { class: "num", "data-col": "open" }, open[s.code] || 0,
            paused[s.code] ? el("small", {}, t("on_break_n", { n: paused[s.code] })) : null),
          el("td", { class: "num", "data-col": "served" }, f.served ?? 0),
          el("td", { class: "num", "data-col": "mean" }, elapsed(f.mean_wait_s)));
      }))));

  const counters = el("section", { class: "m-panel" },
    el("h2", {}, t("counters")),
    el("table", { class: "m-table", "data-testid": "counters" },
      el("thead", {}, el("tr", {},
        [t("counter"), t("status"), t("clerk"), t("current"), t("served_today"), ""]
          .map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, snap.counters.map((c) => {
        const k = c.current;
        const status = c.status === "paused" && c.pause_reason
          ? t("status_paused_because", { reason: c.pause_reason }) : t("status_" + c.status);
        return el("tr", { class: c.status, "data-counter": c.number },
          el("th", { scope: "row" }, c.name),
          el("td", { "data-col": "status" }, el("span", { class: `m-pill ${c.status}` }, status)),
          el("td", { "data-col": "clerk" }, c.clerk || t("none")),
          el("td", { "data-col": "current" }, k
            ? t(k.status === "serving" ? "ticket_serving" : "ticket_called",
              { number: k.number, for: elapsed(since(k.status === "serving" ? k.started_at : k.called_at)) })
            : t("none")),
          el("td", { class: "num", "data-col": "served" }, figures.counters[String(c.number)] ?? 0),
          el("td", {}, snap.actions.close_counter.counter.includes(c.status)
            ? el("button", { type: "button", class: "m-act", "data-action": "close",
              disabled: state.busy || !state.online, onclick: () => openDialog({ kind: "close", counter: c }) }, t("action_close"))
            : null));
      }))));

  const queue = el("section", { class: "m-panel m-queue" },
    el("h2", {}, t("queue_title", { n: snap.queue.length })),
    snap.queue.length
      ? el("ol", { "data-testid": "queue" }, snap.queue.map((k) =>
        el("li", { class: k.priority ? "priority" : "", "data-ticket": k.number },
          el("span", { class: "m-q-number" }, k.number),
          el("span", { class: "m-q-service" }, k.service.name,
            k.target_counter ? el("em", {}, " ", t("sent_to", { n: k.target_counter })) : null),
          el("span", { class: "m-q-waited" }, elapsed(since(k.issued_at))),
          el("button", { type: "button", class: "m-act", "data-action": "move", disabled: state.busy || !state.online,
            onclick: () => openDialog({ kind: "move", ticket: k }) }, t("action_move")),
          el("button", { type: "button", class: "m-act m-danger", "data-action": "cancel", disabled: state.busy || !state.online,
            onclick: () => openDialog({ kind: "cancel", ticket: k }) }, t("action_cancel")))))
      : el("p", { class: "m-note" }, t("queue_empty")));

  const alerts = (snap.device_alerts || []).length
    ? el("div", { class: "m-alerts", role: "status", "data-testid": "alerts" },
      el("strong", {}, t("alerts"), ": "),
      snap.device_alerts.map((a) => el("span", {}, `${a.device.name}: ${t("alert_" + a.alert)}`)))
    : null;
  const devices = el("section", { class: "m-panel" },
    el("h2", {}, t("devices")),
    el("table", { class: "m-table", "data-testid": "devices" },
      el("thead", {}, el("tr", {},
        [t("device"), t("connection"), t("alert"), ""].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, (snap.devices || []).map((d) => el("tr", { "data-device": d.device.name },
        el("th", { scope: "row" }, d.device.name, el("small", {}, t("kind_" + d.device.kind))),
        el("td", { "data-col": "presence" },
          d.online || d.last_seen
            ? el("span", { class: `m-pill ${d.online ? "open" : "gone"}` }, t(d.online ? "online" : "offline"))
            : el("span", { class: "m-pill" }, t("never_seen")),
          !d.online && d.last_seen ? el("small", {}, t("last_seen", { ago: elapsed(since(d.last_seen)) })) : null),
        el("td", { "data-col": "alert" },
          d.alert ? el("strong", { class: "m-alert" }, t("alert_" + d.alert)) : null,
          d.paper ? el("small", { "data-col": "paper" }, paper(d)) : (d.alert ? null : t("none")),
          d.acknowledged ? el("small", {}, t("acknowledged_by", { name: d.acknowledged.by || "" })) : null),
        el("td", {}, d.alert && !d.acknowledged
          ? el("button", { type: "button", class: "m-act", "data-action": "acknowledge", disabled: state.busy || !state.online,
            onclick: () => send("acknowledge", { device: d.device.id }, t("done_acknowledged", { name: d.device.name })) },
          t("action_acknowledge"))
          : null))))));
  const message = state.message ? el("p", { class: `m-message ${state.message.kind}`, role: "status",
    "data-testid": "message" }, state.message.text) : null;
  return [header(), alerts,
    el("main", { class: "m-main" }, el("div", { class: "m-left" }, message, services, counters, devices), queue)];
}

// A kiosk printed by an agent: its paper as the agent last read it.
function paper(d) {
  return d.paper ? t("paper_" + d.paper) : t("none");
}

// ---- actions -------------------------------------------------------------------------
function openDialog(dialog) {
  state.dialog = dialog;
  state.message = null;
  render();
}

function closeDialog() {
  state.dialog = null;
  render();
}

function dialogView() {
  const d = state.dialog;
  const buttons = (...extra) => el("div", { class: "m-dialog-buttons" },
    el("button", { type: "button", onclick: closeDialog }, t("back")), ...extra);
  let body;
  if (d.kind === "cancel") {
    body = [el("p", {}, t("cancel_confirm", { number: d.ticket.number })),
      buttons(el("button", { type: "button", class: "m-primary", "data-testid": "confirm",
        onclick: () => send("cancel", { ticket_id: d.ticket.id }, t("done_cancelled", { number: d.ticket.number })) },
      t("yes")))];
  } else if (d.kind === "close") {
    body = [el("p", {}, t("close_confirm", { name: d.counter.name })),
      buttons(el("button", { type: "button", class: "m-primary", "data-testid": "confirm",
        onclick: () => send("close_counter", { counter: d.counter.number }, t("done_closed", { name: d.counter.name })) },
      t("yes")))];
  } else {
    const k = d.ticket;
    const done = t("done_moved", { number: k.number });
    body = [el("h2", {}, t("move_title", { number: k.number })),
      el("h3", {}, t("to_service")),
      el("div", { class: "m-choices" }, state.snap.services
        .filter((s) => s.code !== k.service.code || k.target_counter)
        .map((s) => el("button", { type: "button", "data-to-service": s.code,
          onclick: () => send("move", { ticket_id: k.id, service: s.code }, done) }, s.name))),
      el("h3", {}, t("to_counter")),
      el("div", { class: "m-choices" }, state.snap.counters
        .filter((c) => c.number !== k.target_counter)
        .map((c) => el("button", { type: "button", "data-to-counter": c.number, disabled: c.status === "closed",
          onclick: () => send("move", { ticket_id: k.id, counter: c.number }, done) },
        c.name, c.status === "closed" ? el("small", {}, ` (${t("status_closed")})`) : null))),
      buttons()];
  }
  return el("div", { class: "m-overlay" }, el("div", { class: "m-dialog", role: "dialog", "aria-modal": "true" }, body));
}

async function send(event, payload, doneText) {
  if (!link || state.busy) return;
  state.busy = true;
  state.dialog = null;
  render();
  try {
    const answer = await link.request(event, payload);
    state.message = answer?.ok
      ? { text: doneText, kind: "ok" }
      : { text: answer?.error?.message || t("server_trouble"), kind: "error" };
  } catch {
    state.message = { text: t("no_answer"), kind: "error" };
  } finally {
    state.busy = false;
    render();
  }
}

// ---- following the centre ------------------------------------------------------------
function applyTicket(k) {
  const snap = state.snap;
  for (const c of snap.counters) {
    if (AT_COUNTER.includes(k.status) && k.counter === c.number) c.current = k;
    else if (c.current && c.current.id === k.id) c.current = null;
  }
  const queue = snap.queue.filter((q) => q.id !== k.id);
  if (WAITING.includes(k.status)) {
    queue.push(k);
    queue.sort((a, b) => a.issued_at.localeCompare(b.issued_at) || a.id - b.id);
  }
  snap.queue = queue;
}

function applyEvent(e) {
  const snap = state.snap;
  if (e.kind.startsWith("counter_")) {
    const c = snap.counters.find((x) => x.number === e.counter.number);
    if (c) {
      Object.assign(c, e.counter);
      c.clerk = e.staff && c.status !== "closed" ? e.staff.full_name : null;
    }
  } else if (e.kind === "printed") {
    const d = (snap.devices || []).find((x) => x.device.id === e.kiosk);
    if (d && e.printer) d.paper = e.printer.paper;
  } else if (e.kind === "device_alert") {
    const d = (snap.devices || []).find((x) => x.device.id === e.device.id);
    if (d) Object.assign(d, { alert: e.alert, since: e.since, acknowledged: e.acknowledged || null });
    const alerts = (snap.device_alerts || []).filter((a) => a.device.id !== e.device.id);
    if (e.alert) alerts.push({ device: e.device, alert: e.alert, since: e.since });
    snap.device_alerts = alerts.sort((a, b) => a.device.id - b.device.id);
  } else if (e.ticket && e.ticket.status) {
    applyTicket(e.ticket);
  }
}

function applyService(summary) {
  const s = state.snap.services.find((x) => x.code === summary.code);
  if (s) Object.assign(s, summary);
}

// Today's figures: read again a moment after the changes that move them, and every minute.
function refreshFigures() {
  clearTimeout(figuresTimer);
  figuresTimer = null;
  if (!link?.socket.connected || !state.snap) return;
  figuresAt = Date.now();
  link.socket.timeout(10000).emit("figures", {}, (err, answer) => {
    if (err || !answer?.ok || !state.snap) return;
    const { ok, ...figures } = answer;
    state.snap.figures = figures;
    if (!state.dialog) render();
  });
}

// The devices' presence is read: every presence interval, and after a device's alert.
function refreshDevices() {
  if (!link?.socket.connected || !state.snap) return;
  link.socket.timeout(10000).emit("devices", {}, (err, answer) => {
    if (err || !answer?.ok || !state.snap) return;
    state.snap.devices = answer.devices;
    if (!state.dialog) render();
  });
}

function figuresSoon() {
  if (figuresTimer) return;
  figuresTimer = setTimeout(refreshFigures, Math.max(300, FIGURES_GAP_MS - (Date.now() - figuresAt)));
}

function connect() {
  if (link) link.close();
  link = follow({
    namespace: "/manage",
    auth: () => ({ token: state.token, ...(state.centre ? { centre: state.centre } : {}) }),
    snapshotEvent: "monitor_state",
    // An entry of the configuration changed: the monitor shows them all (counters,
    // services, devices, clerks), so it takes a new snapshot.
    resyncOn: [...RESYNC_KINDS, "device_changed", "device_revoked", "staff_changed", "sessions_ended"],
    handlers: {
      snapshot(s) {
        state.snap = s;
        clearInterval(devicesTimer);
        devicesTimer = setInterval(refreshDevices, Math.max(5, s.presence_s) * 1000);
        state.refusal = null;
        figuresAt = Date.now();
        if (!state.dialog) render();
      },
      batch(events, services) {
        for (const e of events) applyEvent(e);
        for (const s of services) applyService(s);
        if (events.some((e) => FIGURES_AFTER.includes(e.kind))) figuresSoon();
        if (events.some((e) => e.kind === "device_alert")) refreshDevices();
        if (!state.dialog) render();
      },
      online(up) {
        state.online = up;
        if (!state.dialog) render(); // actions wait for the link
        else document.getElementById("offline").hidden = !state.token || up || !!state.refusal;
      },
      refused(error) {
        if (error.code === "unauthorized") {
          forget();
        } else {
          state.refusal = error; // a clerk's account, or no role in this centre
          if (link) link.close();
          link = null;
        }
        render();
      },
    },
  });
}

async function logout() {
  await endSession(state.token);
  forget();
  render();
}

// Waits grow with the clock: the tables are drawn again every few seconds.
setInterval(() => {
  if (state.snap && !state.dialog) render();
}, 5000);
setInterval(refreshFigures, FIGURES_EVERY_MS);
if (state.token) {
  connect();
  loadCentres();
}
render();
