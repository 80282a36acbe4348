// The ticket kiosk: choose a service (and a priority group), take a number; or check in
// a booked appointment by its code (typed on the on-screen keypad, or read by a barcode
// scanner, which types it and presses Enter).
// State comes from the /kiosk snapshot and its change batches (docs/protocol.md 8.1).
import { currentLang, deviceToken, el, follow, minutes, setLang, startClock, t, tokenRefusal } from "/static/motcua.js";

const BACK_AFTER_TICKET_S = 20;
const BACK_AFTER_UNPRINTED_S = 60; // time to photograph or write down the number
const BACK_AFTER_ERROR_S = 15;
// Nobody has touched the screen for this long: English or a chosen priority is not kept
// for the next citizen (back to Vietnamese and the start).
const IDLE_RESET_S = 45;
const PRINT_GRACE_MS = 3000; // after the job's deadline, before saying it did not print

const data = JSON.parse(document.getElementById("kiosk-data").textContent);
const screen = document.getElementById("screen");
const offlineNote = document.getElementById("offline");

const state = {
  centre: null,
  services: [], // snapshot order; each {code, name, agency, waiting, estimated_wait_s, open}
  online: false,
  view: "services", // services | priority | booked | phone | issuing | ticket | error | setup
  priority: null,
  ticket: null, // the acknowledgement of the last issue
  printing: null, // null (no printer) | "pending" | "printed" | "failed"
  error: null,
  code: "", // the digits being typed on the keypad (a booking's code, a phone number)
  phoneLeft: null, // the last digits of the number left for the ticket on screen
};
const CODE_DIGITS = 8;
const PHONE_DIGITS = 10;
let countdown = null;
let printTimer = null;
// Print results heard for recent tickets, in case one arrives before its acknowledgement.
const printResults = new Map();

function priorityLabel(code) {
  const p = data.priorities.find((x) => x.code === code);
  return p ? (document.documentElement.lang === "en" ? p.en : p.vi) : code;
}

// A name from the configuration in the page's language: its English when there is one.
function named(thing, field = "name") {
  return (currentLang() === "en" && thing?.[`${field}_en`]) || thing?.[field] || "";
}

function showCentre() {
  document.getElementById("centre").textContent = named(state.centre);
}

function show(view, extra = {}) {
  clearInterval(countdown);
  clearTimeout(printTimer);
  countdown = null;
  Object.assign(state, { view }, extra);
  render();
}

// Back to the start for the next citizen, in Vietnamese.
function reset() {
  state.priority = null;
  state.code = "";
  state.phoneLeft = null;
  state.ticket = null;
  state.printing = null;
  state.error = null;
  setLang("vi");
  showCentre();
  show("services");
}

function autoBack(seconds, node) {
  let left = seconds;
  node.textContent = t("back_in", { s: left });
  countdown = setInterval(() => {
    left -= 1;
    if (left <= 0) reset();
    else node.textContent = t("back_in", { s: left });
  }, 1000);
}

// ---- a service's own hours and priority groups ------------------------------------------
// A service with opening hours of its own (the snapshot's `opening`: its next opening
// times, ISO in the centre's time zone) takes tickets only within them: outside, its card
// says when it opens. `priorities`: the groups it accepts (null: every group).
function hoursNow(s) {
  if (!s.opening) return { open: true };
  const now = Date.now();
  if (s.opening.some(([a, b]) => Date.parse(a) <= now && now < Date.parse(b))) return { open: true };
  const next = s.opening.find(([a]) => Date.parse(a) > now);
  return { open: false, next: next ? next[0] : null };
}

// "07:30 hôm nay", "07:30 thứ Năm, 10/12": the ISO time's own (the centre's) clock.
function opensText(iso) {
  const day = iso.slice(0, 10);
  const zone = state.centre?.timezone || "Asia/Ho_Chi_Minh";
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
  const tomorrow = new Date(Date.parse(`${today}T00:00:00Z`) + 86400000).toISOString().slice(0, 10);
  const weekday = new Date(`${day}T00:00:00Z`).getUTCDay();
  const words = day === today ? t("day_today") : day === tomorrow ? t("day_tomorrow")
    : t("day_on", { weekday: t(`weekday_${weekday}`), date: `${day.slice(8, 10)}/${day.slice(5, 7)}` });
  return t("opens_at", { time: iso.slice(11, 16), day: words });
}

const accepts = (s, group) => !s.priorities || s.priorities.includes(group);

// The groups offered on the priority screen: those some service within its hours takes.
function offeredPriorities() {
  const now = state.services.filter((s) => hoursNow(s).open);
  return data.priorities.filter((p) => now.some((s) => accepts(s, p.code)));
}

// ---- screens -------------------------------------------------------------------------
function serviceButton(s) {
  const hours = hoursNow(s);
  if (!hours.open) return closedByHours(s, hours.next);
  if (state.priority && !accepts(s, state.priority)) return notForPriority(s);
  const usable = s.open && state.online;
  const only = s.priorities && !state.priority
    ? el("span", { "data-testid": "priorities" },
      t("priority_only", { groups: s.priorities.map(priorityLabel).join(", ") }))
    : null;
  // A service whose counters are all on a break still takes tickets: they are served
  // after the break, and the card says so.
  const meta = s.open
    ? [only,
        el("span", { "data-testid": "waiting" },
          s.waiting > 0 ? t("waiting", { n: s.waiting }) : t("nobody_waiting")),
        s.on_break ? el("span", { class: "k-break", "data-testid": "on-break" }, t("on_break")) : null,
        s.waiting > 0 ? el("span", {}, t("wait_about", { m: minutes(s.estimated_wait_s) })) : null,
      ]
    : [only, el("span", {}, t("closed"))];
  return el(
    "button",
    {
      type: "button",
      class: "k-service" + (s.open ? "" : " closed"),
      disabled: !usable,
      "data-service": s.code,
      onclick: () => issue(s),
    },
    el("span", { class: "k-service-name" }, named(s)),
    el("span", { class: "k-service-meta" }, meta),
  );
}

// Shown, not tappable, with when it opens (big: the citizen comes back then).
function closedByHours(s, next) {
  return el("button", { type: "button", class: "k-service closed k-off-hours", disabled: true,
    "data-service": s.code, "data-testid": "off-hours" },
  el("span", { class: "k-service-name" }, named(s)),
  el("span", { class: "k-service-meta" },
    el("span", {}, t("hours_closed")),
    el("span", { class: "k-opens", "data-testid": "opens" }, next ? opensText(next) : t("opens_none"))));
}

function notForPriority(s) {
  return el("button", { type: "button", class: "k-service closed", disabled: true,
    "data-service": s.code, "data-testid": "not-for-priority" },
  el("span", { class: "k-service-name" }, named(s)),
  el("span", { class: "k-service-meta" }, el("span", {}, t("priority_not_here"))));
}

function servicesView() {
  const groups = new Map();
  for (const s of state.services) {
    const agency = named(s, "agency");
    if (!groups.has(agency)) groups.set(agency, []);
    groups.get(agency).push(s);
  }
  const parts = [el("h1", { class: "k-title" }, t("choose"))];
  if (state.priority) {
    parts.push(
      el("div", { class: "k-chosen", "data-testid": "priority-chosen" },
        el("span", {}, t("priority_chosen", { group: priorityLabel(state.priority) })),
        el("button", { type: "button", class: "k-small", onclick: () => show("services", { priority: null }) },
          t("priority_cancel"))),
    );
  }
  if (!state.online) parts.push(el("p", { class: "k-note warn" }, t("offline")));
  if (state.centre && state.services.length === 0) parts.push(el("p", { class: "k-note" }, t("no_services")));
  for (const [agency, services] of groups) {
    parts.push(
      el("section", { class: "k-agency" },
        agency ? el("h2", {}, agency) : null,
        el("div", { class: "k-grid" }, services.map(serviceButton))),
    );
  }
  if (!state.priority) {
    parts.push(
      el("div", { class: "k-more" },
        offeredPriorities().length ? el("button", { type: "button", class: "k-priority-open", "data-testid": "priority-open",
          onclick: () => show("priority") }, t("priority_open")) : null,
        el("button", { type: "button", class: "k-priority-open k-booked-open", "data-testid": "booked-open",
          onclick: () => show("booked", { code: "" }) }, t("booked_open"))),
    );
  }
  return parts;
}

// Digits on an on-screen keypad (nothing needs a keyboard): a booking's code (8 digits,
// shown in two groups of four) or a phone number (10, shown 4-3-3).
const KEYPADS = {
  booked: { digits: CODE_DIGITS, groups: [4, 4], title: "booked_title", hint: "booked_hint",
    submit: "booked_take", action: () => checkIn(), back: () => reset() },
  phone: { digits: PHONE_DIGITS, groups: [4, 3, 3], title: "phone_title", hint: "phone_hint",
    submit: "phone_send", action: () => leavePhone(), back: () => show("ticket") },
};

function typeDigit(digit) {
  if (state.code.length < KEYPADS[state.view].digits) state.code += digit;
  showCode();
}

function showCode() {
  const pad = KEYPADS[state.view];
  const box = document.getElementById("code");
  if (!pad || !box) return;
  const shown = state.code.padEnd(pad.digits, "·");
  let at = 0;
  box.textContent = pad.groups.map((n) => shown.slice(at, (at += n))).join(" ");
  document.getElementById("take").disabled = state.code.length !== pad.digits || !state.online;
}

function keypadView() {
  const pad = KEYPADS[state.view];
  const key = (label, action, extra = {}) =>
    el("button", { type: "button", class: "k-key", onclick: action, ...extra }, label);
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9"].map((d) =>
    key(d, () => typeDigit(d), { "data-key": d }));
  keys.push(
    key(t("booked_delete"), () => { state.code = state.code.slice(0, -1); showCode(); },
      { class: "k-key k-key-small", "data-key": "delete" }),
    key("0", () => typeDigit("0"), { "data-key": "0" }),
    key(t(pad.submit), pad.action, { class: "k-key k-key-take", id: "take", "data-testid": "take" }),
  );
  const view = [
    el("h1", { class: "k-title" }, t(pad.title)),
    el("div", { class: "k-code", id: "code", "data-testid": "code" }),
    el("div", { class: "k-keypad" }, keys),
    el("p", { class: "k-note" }, t(pad.hint)),
    el("button", { type: "button", class: "k-done", onclick: pad.back }, t("back")),
  ];
  queueMicrotask(showCode);
  return view;
}

function priorityView() {
  return [
    el("h1", { class: "k-title" }, t("priority_title")),
    el("p", { class: "k-note" }, t("priority_hint")),
    el("div", { class: "k-choices" },
      offeredPriorities().map((p) =>
        el("button", { type: "button", class: "k-choice", "data-priority": p.code,
          onclick: () => show("services", { priority: p.code }) }, priorityLabel(p.code))),
      el("button", { type: "button", class: "k-choice plain",
        onclick: () => show("services", { priority: null }) }, t("priority_none"))),
  ];
}

function printText() {
  if (state.printing === "pending") return t("printing");
  if (state.printing === "printed") return t("take_ticket");
  if (state.printing === "failed") return t("print_failed");
  return t("watch_board");
}

// The printer's answer for the ticket on screen: say it, and leave an unprinted ticket
// up long enough to be photographed.
function printed(result) {
  if (state.view !== "ticket" || state.printing !== "pending") return;
  clearTimeout(printTimer);
  state.printing = result === "printed" ? "printed" : "failed";
  const line = document.getElementById("print-state");
  line.textContent = printText();
  line.className = "k-instruction " + state.printing;
  if (state.printing === "failed") {
    clearInterval(countdown);
    autoBack(BACK_AFTER_UNPRINTED_S, document.getElementById("back-in"));
  }
}

function ticketView() {
  const a = state.ticket;
  const [key, query] = a.status_url.split("/t/").pop().split("?");
  const service = state.services.find((s) => s.code === a.ticket.service.code);
  const back = el("p", { class: "k-note", id: "back-in" });
  const wait = a.ahead > 0 ? t("about_minutes", { m: minutes(a.estimated_wait_s) }) : t("soon");
  const booked = a.appointment;
  const view = [
    el("div", { class: "k-ticket", "data-testid": "ticket" },
      el("div", { class: "k-ticket-label" }, t("your_number")),
      el("div", { class: "k-number", "data-testid": "number" }, a.ticket.number),
      el("div", { class: "k-ticket-service" }, service ? named(service) : a.ticket.service.name),
      booked ? el("div", { class: "k-ticket-priority", "data-testid": "booked" },
        booked.late ? t("booked_late") : t("booked_ticket", { time: a.ticket.appointment.slice(11, 16) })) : null,
      state.phoneLeft ? el("p", { class: "k-ticket-priority", "data-testid": "phone-left" },
        t("phone_done", { tail: state.phoneLeft })) : null,
      a.ticket.priority ? el("div", { class: "k-ticket-priority" },
        t("priority_chosen", { group: priorityLabel(a.ticket.priority) })) : null,
      el("dl", { class: "k-facts" },
        el("dt", {}, t("ahead")), el("dd", { "data-testid": "ahead" }, a.ahead),
        el("dt", {}, t("estimated_wait")), el("dd", { "data-testid": "wait" }, wait)),
      service?.on_break ? el("p", { class: "k-break-note", "data-testid": "on-break" }, t("on_break_ticket")) : null,
      el("div", { class: "k-qr" },
        el("img", { src: `/t/${encodeURIComponent(key)}/qr.svg${query ? `?${query}` : ""}`, alt: "",
          width: 240, height: 240,
          "data-testid": "qr" }),
        el("p", {}, t("scan"))),
      el("p", { class: "k-instruction " + (state.printing || ""), id: "print-state",
        "data-testid": "print-state" }, printText())),
    booked || state.phoneLeft ? null
      : el("button", { type: "button", class: "k-priority-open k-booked-open", "data-testid": "phone-open",
        onclick: () => show("phone", { code: "" }) }, t("phone_open")),
    el("button", { type: "button", class: "k-done", onclick: reset }, t("done")),
    back,
  ];
  autoBack(BACK_AFTER_TICKET_S, back);
  return view;
}

function messageView(text, { setup = false, hint = "setup_hint" } = {}) {
  const back = el("p", { class: "k-note" });
  const view = [el("p", { class: "k-message", "data-testid": "message" }, text)];
  if (setup) {
    view.push(el("p", { class: "k-note", "data-testid": "hint" }, t(hint)));
  } else {
    view.push(el("button", { type: "button", class: "k-done", onclick: reset }, t("back")), back);
    autoBack(BACK_AFTER_ERROR_S, back);
  }
  return view;
}

function render() {
  let content;
  if (state.view === "setup" && state.refused) {
    const { revoked, kept } = state.refused;
    content = messageView(t(revoked ? "token_revoked" : "token_wrong"), {
      setup: true, hint: revoked ? "token_revoked_hint" : kept ? "token_kept" : "token_wrong_hint" });
  } else if (state.view === "setup") content = messageView(t("setup_needed"), { setup: true });
  else if (state.view === "priority") content = priorityView();
  else if (state.view in KEYPADS) content = keypadView();
  else if (state.view === "issuing") content = [el("p", { class: "k-message" }, t("issuing"))];
  else if (state.view === "ticket") content = ticketView();
  else if (state.view === "error") content = messageView(state.error);
  else content = servicesView();
  screen.replaceChildren(...content.flat().filter(Boolean));
  screen.dataset.view = state.view;
  idleCheck(false);
  offlineNote.hidden = state.online || state.view === "setup";
}

// ---- issuing -------------------------------------------------------------------------
function refusalText(error) {
  if (error?.code === "conflict") return t("error_closed");
  if (error?.code === "rate_limited") return t("error_busy");
  return t("error_generic");
}

let link = null;

async function issue(service) {
  // One touch, one ticket; not outside its hours, nor with a group it does not accept.
  if (state.view !== "services" || !service.open || !hoursNow(service).open) return;
  if (state.priority && !accepts(service, state.priority)) return;
  // A service with hours or groups of its own: the server's words say when it opens or
  // which groups it takes (in this language), should the clock or a change beat the screen.
  const own = (error) => ((service.opening || service.priorities) && error?.message) || null;
  await take("issue", { service: service.code, priority: state.priority, lang: currentLang() }, own);
}

async function checkIn() {
  if (state.view !== "booked" || state.code.length !== CODE_DIGITS) return;
  // The server says why a code is refused (too early: when to come back), in this language.
  await take("check_in", { code: state.code, lang: currentLang() }, (error) => error?.message);
}

async function leavePhone() {
  if (state.view !== "phone" || state.code.length !== PHONE_DIGITS) return;
  const ticket = state.ticket;
  const phone = state.code;
  try {
    const answer = await link.request("notify_me",
      { ticket_id: ticket.ticket.id, phone, lang: currentLang() });
    if (answer?.ok) show("ticket", { phoneLeft: answer.phone });
    else show("error", { error: answer?.error?.message || t("error_generic") });
  } catch {
    show("error", { error: t("error_no_answer") });
  }
}

// Type a booking code with a scanner (or a keyboard): digits then Enter, from the start
// screen or the keypad's.
document.addEventListener("keydown", (event) => {
  if (!["services", "booked", "phone"].includes(state.view) || event.ctrlKey || event.altKey) return;
  if (/^[0-9]$/.test(event.key)) {
    if (state.view === "services") show("booked", { code: "" });
    typeDigit(event.key);
    event.preventDefault();
  } else if (event.key === "Enter" && state.view in KEYPADS) {
    KEYPADS[state.view].action();
    event.preventDefault();
  } else if (event.key === "Backspace" && state.view in KEYPADS) {
    state.code = state.code.slice(0, -1);
    showCode();
  }
});

async function take(event, payload, explain = refusalText) {
  show("issuing");
  try {
    const answer = await link.request(event, payload);
    if (answer?.ok) {
      show("ticket", { ticket: answer, printing: answer.print ? "pending" : null });
      if (answer.print) {
        const known = printResults.get(answer.ticket.id);
        if (known) printed(known);
        else {
          const wait = Date.parse(answer.print.deadline) - Date.parse(answer.ticket.issued_at);
          printTimer = setTimeout(() => printed("failed"), wait + PRINT_GRACE_MS);
        }
      }
    }
    else show("error", { error: explain(answer?.error) || refusalText(answer?.error) });
  } catch {
    show("error", { error: t("error_no_answer") });
  }
}

// ---- idle ----------------------------------------------------------------------------
// On the services and priority screens, a kiosk left in English, with a priority chosen
// or on the priority question goes back to the start after IDLE_RESET_S without a touch.
// (The ticket and error screens count down by themselves.)
let idleTimer = null;
function idleCheck(touched) {
  const changed = document.documentElement.lang !== "vi" || state.priority !== null;
  if (!((state.view === "services" && changed) || ["priority", "booked", "phone"].includes(state.view))) {
    clearTimeout(idleTimer);
    idleTimer = null;
  } else if (touched || idleTimer === null) {
    // A touch starts the wait again; a redraw from the server's news does not.
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      idleTimer = null;
      reset();
    }, IDLE_RESET_S * 1000);
  }
}
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => idleCheck(true), true);
}

// A service with hours of its own opens and closes by the clock: the start screen is
// drawn again each half minute while one is shown.
setInterval(() => {
  if (state.view === "services" && state.services.some((s) => s.opening)) render();
}, 30000);

// ---- start ---------------------------------------------------------------------------
for (const button of document.querySelectorAll(".k-lang")) {
  button.addEventListener("click", () => {
    setLang(button.dataset.lang);
    showCentre();
    render();
  });
}

// A service added, changed or retired by an admin (docs/protocol.md 8.1): replaced where it
// was, added at the end (the page groups by agency), dropped when no longer offered.
function serviceChanged(service) {
  const { active, ...shown } = service;
  const at = state.services.findIndex((s) => s.code === shown.code);
  if (!active) {
    if (at >= 0) state.services.splice(at, 1);
  } else if (at >= 0) {
    state.services[at] = shown;
  } else {
    state.services.push(shown);
  }
}

const token = deviceToken("kiosk");
if (!token) {
  show("setup");
} else {
  link = follow({
    namespace: "/kiosk",
    auth: () => ({ token }),
    snapshotEvent: "services",
    resyncOn: ["configured"], // a service_changed is applied below
    handlers: {
      snapshot(s) {
        const first = state.centre === null;
        state.centre = s.centre;
        state.services = s.services;
        showCentre();
        if (first) startClock(document.getElementById("clock"), s.centre.timezone);
        if (state.view === "setup") state.view = "services";
        if (state.view === "services") render();
      },
      batch(events, services) {
        for (const e of events) {
          if (e.kind === "service_changed") serviceChanged(e.service);
          if (e.kind !== "printed") continue;
          printResults.set(e.ticket.id, e.state);
          if (printResults.size > 50) printResults.delete(printResults.keys().next().value);
          if (state.ticket?.ticket.id === e.ticket.id) printed(e.state);
        }
        for (const summary of services) {
          const s = state.services.find((x) => x.code === summary.code);
          if (s) Object.assign(s, summary);
        }
        const offered = events.some((e) => e.kind === "service_changed");
        if (state.view === "services" && (services.length || offered)) render();
      },
      online(up) {
        state.online = up;
        if (state.view === "services" || state.view === "setup") render();
        else offlineNote.hidden = up;
      },
      refused(error) {
        show("setup", { refused: tokenRefusal(error) });
      },
    },
  });
  render();
}
