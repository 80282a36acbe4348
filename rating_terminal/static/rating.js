// The rating tablet at a counter: shows the clerk and the number being served, asks for
// a rating when a visit finishes (the `finished` event, or `awaiting_rating` in the
// snapshot), and sends it; a rating given while the link is down waits on the tablet
// (localStorage) and goes when it returns. docs/protocol.md 8.4 and 10.
import { deviceToken, el, follow, newRequestId, setLang, t, tokenRefusal } from "/static/motcua.js";
import { keyboard } from "/rating/static/keyboard.js";

const THANKS_S = 6;
const MESSAGE_S = 10;
const OUTBOX = "motcua.rating.outbox"; // ratings not yet acknowledged
const ANSWERED = "motcua.rating.answered"; // visits answered or let go: never asked again
const ASKING = new Set(["question", "reasons", "comment"]);

const screen = document.getElementById("screen");
const offlineNote = document.getElementById("offline");
const counterName = document.getElementById("counter");

const state = {
  snap: null, // the rating_state, kept up to date by the batches
  online: false,
  view: "idle", // idle | setup | question | reasons | comment | thanks | saved | late
  asking: null, // {ticket: {id, number, service}, staff} the visit being rated
  reasons: new Set(),
  comment: "",
  photo: null, // data: URL of the clerk's photo, or null
  photoOf: undefined, // the clerk the photo is of
};
let timer = null;
let deadline = 0;
let link = null;
const token = deviceToken("rating");

// ---- what the tablet remembers ------------------------------------------------------
function load(key) {
  try {
    return JSON.parse(localStorage.getItem(key)) || [];
  } catch {
    return [];
  }
}
function store(key, value) {
  localStorage.setItem(key, JSON.stringify(value));
}
function answered(ticketId) {
  return load(ANSWERED).includes(ticketId) || load(OUTBOX).some((r) => r.ticket_id === ticketId);
}
function letGo(ticketId) {
  store(ANSWERED, [...load(ANSWERED).filter((id) => id !== ticketId), ticketId].slice(-50));
}

// ---- screens -------------------------------------------------------------------------
function show(view, seconds = 0, then = idle) {
  clearInterval(timer);
  timer = null;
  state.view = view;
  render();
  if (seconds > 0) {
    deadline = Date.now() + seconds * 1000;
    timer = setInterval(() => {
      const left = Math.ceil((deadline - Date.now()) / 1000);
      const node = document.getElementById("back-in");
      if (left <= 0) then();
      else if (node) node.textContent = t("back_in", { s: left });
    }, 250);
  }
}

// No answer in time: back to idle, nothing recorded, the visit not asked about again.
function giveUp() {
  if (state.asking) letGo(state.asking.ticket.id);
  idle();
}

function idle() {
  state.asking = null;
  state.reasons = new Set();
  state.comment = "";
  setLang("vi");
  show(state.snap || !token ? "idle" : "setup");
}

function timeoutS() {
  return state.snap?.rating?.timeout_s || 30;
}

// Ask about a visit; a newer finish replaces a request still on screen.
function ask(request) {
  if (!request || answered(request.ticket.id)) return;
  if (state.asking) letGo(state.asking.ticket.id);
  state.asking = request;
  state.reasons = new Set();
  state.comment = "";
  show("question", timeoutS(), giveUp);
}

// Every touch while asking gives the citizen the full time again.
document.addEventListener("pointerdown", () => {
  if (ASKING.has(state.view)) deadline = Date.now() + timeoutS() * 1000;
});

function face(score) {
  return document.getElementById(`face-${score}`).content.cloneNode(true);
}

function reasonLabel(reason) {
  const key = `reason:${reason}`;
  const text = t(key);
  return text === key ? reason : text;
}

function countdown() {
  return el("p", { class: "r-countdown", id: "back-in" }, t("back_in", { s: timeoutS() }));
}

function idleView() {
  const s = state.snap;
  if (!s) return [];
  const staff = s.counter.status !== "closed" ? s.staff : null;
  const parts = [];
  if (staff) {
    parts.push(
      state.photo
        ? el("img", { class: "r-photo", src: state.photo, alt: "", "data-testid": "photo" })
        : el("div", { class: "r-photo r-initials", "aria-hidden": "true" },
            staff.full_name.trim().split(/\s+/).pop()?.[0] || ""),
      el("div", { class: "r-who" },
        el("div", { class: "r-label" }, t("clerk")),
        el("div", { class: "r-clerk", "data-testid": "clerk" }, staff.full_name)),
    );
  }
  if (s.counter.status === "closed") {
    parts.push(el("div", { class: "r-status", "data-testid": "status" }, t("counter_closed")));
  } else if (s.counter.status === "paused") {
    parts.push(el("div", { class: "r-status", "data-testid": "status" },
      t("counter_paused", { reason: s.counter.pause_reason || "" })));
  } else if (s.current) {
    parts.push(el("div", { class: "r-now" },
      el("div", { class: "r-label" }, t("serving")),
      el("div", { class: "r-number", "data-testid": "serving" }, s.current.number),
      el("div", { class: "r-service" }, s.current.service.name)));
  } else {
    parts.push(el("p", { class: "r-note", "data-testid": "serving" }, t("nobody_serving")));
  }
  return [el("div", { class: "r-idle", "data-testid": "idle" }, parts)];
}

function questionView() {
  const levels = [3, 2, 1].map((score) =>
    el("button", { type: "button", class: "r-level", "data-score": score, onclick: () => choose(score) },
      face(score), el("span", {}, t(`level_${score}`))));
  return [
    el("h1", { class: "r-question", "data-testid": "question" }, t("question")),
    el("p", { class: "r-ticket" }, t("ticket", { number: state.asking.ticket.number })),
    el("div", { class: "r-levels" }, levels),
    countdown(),
  ];
}

function reasonsView() {
  const buttons = (state.snap?.rating?.reasons || []).map((reason) =>
    el("button", {
      type: "button", class: "r-reason", "data-reason": reason,
      "aria-pressed": state.reasons.has(reason) ? "true" : "false",
      onclick: (e) => {
        if (state.reasons.has(reason)) state.reasons.delete(reason);
        else state.reasons.add(reason);
        e.currentTarget.setAttribute("aria-pressed", state.reasons.has(reason) ? "true" : "false");
      },
    }, reasonLabel(reason)));
  return [
    el("h1", { class: "r-title", "data-testid": "reasons-title" }, t("reasons_title")),
    el("p", { class: "r-note" }, t("reasons_hint")),
    el("div", { class: "r-reasons" }, buttons),
    el("div", { class: "r-actions" },
      el("button", { type: "button", class: "r-button plain", onclick: () => show("question", timeoutS(), giveUp) }, t("back")),
      el("button", { type: "button", class: "r-button", "data-testid": "next", onclick: () => show("comment", timeoutS(), giveUp) }, t("next"))),
    countdown(),
  ];
}

function commentView() {
  const max = state.snap?.rating?.comment_max_len || 200;
  const box = el("div", { class: "r-comment", "data-testid": "comment", "data-placeholder": t("comment_placeholder") },
    state.comment);
  const left = el("p", { class: "r-left" }, t("comment_left", { n: max - [...state.comment].length }));
  const keys = el("div", { class: "kb", "data-testid": "keyboard" });
  keyboard(keys, {
    el,
    maxLength: max,
    getText: () => state.comment,
    onText: (text) => {
      state.comment = text;
      box.textContent = text;
      left.textContent = t("comment_left", { n: max - [...text].length });
    },
    words: { space: t("kb_space"), delete: t("kb_delete"), tone: t("kb_tone"), hint: t("kb_tone_hint") },
  });
  return [
    el("h1", { class: "r-title" }, t("comment_title")),
    box,
    left,
    keys,
    el("div", { class: "r-actions" },
      el("button", { type: "button", class: "r-button plain", "data-testid": "skip", onclick: () => send(1, false) }, t("skip_comment")),
      el("button", { type: "button", class: "r-button", "data-testid": "send", onclick: () => send(1, true) }, t("send"))),
    countdown(),
  ];
}

function thanksView() {
  const parts = [face(3), el("p", { class: "r-big", "data-testid": "thanks" }, t("thanks"))];
  if (state.view === "saved") parts.push(el("p", { class: "r-saved", "data-testid": "saved" }, t("saved_offline")));
  if (state.view === "late") parts.splice(1, 1, el("p", { class: "r-big", "data-testid": "late" }, t("error_late")));
  return [el("div", { class: "r-thanks" }, parts)];
}

let refused = null; // why the server refused this tablet's token, once it has

function setupView() {
  const hint = refused
    ? refused.revoked ? "token_revoked_hint" : refused.kept ? "token_kept" : "token_wrong_hint"
    : "setup_hint";
  const message = refused ? (refused.revoked ? "token_revoked" : "token_wrong") : "setup_needed";
  return [
    el("p", { class: "r-big", "data-testid": "message" }, t(message)),
    el("p", { class: "r-note", "data-testid": "hint" }, t(hint)),
  ];
}

function render() {
  const views = { idle: idleView, question: questionView, reasons: reasonsView, comment: commentView,
    thanks: thanksView, saved: thanksView, late: thanksView, setup: setupView };
  screen.replaceChildren(...(views[state.view] || idleView)().flat().filter(Boolean));
  screen.dataset.view = state.view;
  counterName.textContent = state.snap?.counter.name || "";
  offlineNote.hidden = state.online || state.view === "setup";
}

// ---- answering -----------------------------------------------------------------------
function choose(score) {
  if (state.view !== "question") return;
  if (score === 1) show("reasons", timeoutS(), giveUp);
  else send(score, false);
}

// The rating goes to the outbox first, then to the server: a tablet that loses the link,
// or is switched off, still delivers it, and its request_id makes a repeat harmless.
function send(score, withComment) {
  if (!state.asking) return;
  const rating = { ticket_id: state.asking.ticket.id, score, request_id: newRequestId() };
  if (score === 1) {
    rating.reasons = [...state.reasons];
    const comment = state.comment.trim();
    if (withComment && comment) rating.comment = comment;
  }
  store(OUTBOX, [...load(OUTBOX).filter((r) => r.ticket_id !== rating.ticket_id), rating]);
  letGo(rating.ticket_id);
  state.asking = { ...state.asking, sent: rating.request_id };
  show(state.online ? "thanks" : "saved", state.online ? THANKS_S : MESSAGE_S);
  flush();
}

const inFlight = new Set();
function flush() {
  if (!link || !state.online) return;
  for (const rating of load(OUTBOX)) {
    if (inFlight.has(rating.request_id)) continue;
    inFlight.add(rating.request_id);
    link.request("rate", rating).then(
      (answer) => {
        inFlight.delete(rating.request_id);
        const code = answer?.error?.code;
        if (code === "rate_limited") return; // kept: sent again at the next connection
        store(OUTBOX, load(OUTBOX).filter((r) => r.request_id !== rating.request_id));
        // A refusal the citizen should hear of (too late, not this counter's visit).
        if (!answer?.ok && code !== "already_rated" && state.asking?.sent === rating.request_id
            && state.view === "thanks") {
          show("late", MESSAGE_S);
        }
      },
      () => inFlight.delete(rating.request_id), // no answer: kept for the next connection
    );
  }
}

// ---- following the counter -------------------------------------------------------------
async function fetchPhoto(staff) {
  const name = staff?.full_name ?? null;
  if (name === state.photoOf) return;
  state.photoOf = name;
  state.photo = null;
  if (!name) return;
  try {
    const r = await fetch("/rating/photo", { headers: { Authorization: `Bearer ${token}` } });
    if (r.status !== 200 || state.photoOf !== name) return;
    const blob = await r.blob();
    state.photo = await new Promise((resolve) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.readAsDataURL(blob);
    });
    if (state.view === "idle") render();
  } catch {
    state.photoOf = undefined; // try again with the next snapshot
  }
}

function applyEvent(e) {
  const s = state.snap;
  const me = s.counter;
  if (e.kind.startsWith("counter_")) {
    if (e.counter.number === me.number) {
      Object.assign(me, e.counter);
      s.staff = e.staff;
      fetchPhoto(e.staff);
    }
    return;
  }
  if (e.kind === "rated") {
    if (s.awaiting_rating?.ticket.id === e.ticket.id) s.awaiting_rating = null;
    // Rated elsewhere (the ticket's status page) while the tablet still asks: done.
    if (state.asking?.ticket.id === e.ticket.id && ASKING.has(state.view)) {
      letGo(e.ticket.id);
      show("thanks", THANKS_S);
    }
    return;
  }
  const ticket = e.ticket;
  if (!ticket || ticket.counter !== me.number) return;
  if (ticket.status === "called" || ticket.status === "serving") s.current = ticket;
  else if (s.current?.id === ticket.id) s.current = null;
  if (e.kind === "finished") {
    const request = { ticket: { id: ticket.id, number: ticket.number, service: ticket.service },
      staff: e.staff, counter: { number: me.number } };
    s.awaiting_rating = request;
    ask(request);
  }
}

for (const button of document.querySelectorAll(".r-lang")) {
  button.addEventListener("click", () => {
    setLang(button.dataset.lang);
    render();
  });
}

if (!token) {
  show("setup");
} else {
  link = follow({
    namespace: "/rating",
    auth: () => ({ token }),
    snapshotEvent: "rating_state",
    handlers: {
      snapshot(s) {
        state.snap = s;
        fetchPhoto(s.counter.status !== "closed" ? s.staff : null);
        const awaiting = s.awaiting_rating;
        if (awaiting && !answered(awaiting.ticket.id) && state.asking?.ticket.id !== awaiting.ticket.id) {
          ask(awaiting);
        }
        else if (!awaiting && ASKING.has(state.view)) idle();
        else if (state.view === "setup") idle();
        else if (state.view === "idle") render();
        else counterName.textContent = s.counter.name;
      },
      batch(events) {
        for (const e of events) applyEvent(e);
        if (state.view === "idle") render();
      },
      online(up) {
        state.online = up;
        offlineNote.hidden = up || state.view === "setup";
        if (up) flush();
      },
      refused(error) {
        refused = tokenRefusal(error);
        show("setup");
      },
    },
  });
  render();
}
