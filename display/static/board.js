// The display board: each counter's current number, the latest calls, the waiting counts,
// and every call announced aloud. State comes from the /display snapshot and its change
// batches (docs/protocol.md 8.3); announcements are WAV files the server assembles from
// its voice pack (GET /display/announce.wav), played one after another, never cut off.
import { deviceToken, el, follow, startClock, t, tokenRefusal } from "/static/motcua.js";

const HIGHLIGHT_MS = 8000; // a new call stands out this long
const GAP_MS = 600; // silence between two announcements (and between repeats)
const MAX_PLAY_MS = 30000; // an announcement that never says it ended is given up after this
const PLAY_TIMEOUT_MS = 10000; // a play() that neither starts nor fails (a stalled load)

const $ = (id) => document.getElementById(id);
const offlineNote = $("offline");

const state = {
  board: null, // the snapshot, kept up to date by the batches
  online: false,
  heard: 0, // the seq up to which calls are known (shown or announced)
  fresh: new Map(), // counter number -> time until which its call is highlighted
};

// ---- announcements -------------------------------------------------------------------
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Announcer {
  constructor() {
    this.queue = []; // calls waiting their turn: {number, counter, recall, seq}
    this.playing = null;
    this.log = []; // what was played: {number, counter, recall, url, started, ended, error}
    this.blocked = false;
    this.settings = { url: null, form: "digits", repeats: 1 };
  }

  configure({ url, form, repeats }) {
    this.settings = { url, form, repeats };
  }

  url(item) {
    const q = new URLSearchParams({ number: item.number, counter: item.counter, form: this.settings.form });
    return `${this.settings.url}&${q}`;
  }

  pending() {
    return this.queue.map((i) => ({ number: i.number, counter: i.counter, recall: i.recall }));
  }

  add(item) {
    if (!this.settings.url || this.settings.repeats < 1) return;
    // A recall pressed while the same call still waits its turn adds nothing.
    if (this.queue.some((i) => i.number === item.number && i.counter === item.counter)) return;
    this.queue.push({ ...item, done: 0 });
    this.pump();
  }

  // Keep only the calls `keep` approves (those still current after a reconnect).
  prune(keep) {
    this.queue = this.queue.filter(keep);
  }

  async pump() {
    if (this.playing || this.blocked) return;
    const item = this.queue.shift();
    if (!item) return;
    this.playing = item;
    try {
      while (item.done < this.settings.repeats) {
        await this.playOnce(item);
        item.done += 1;
        await sleep(GAP_MS);
      }
    } catch (err) {
      if (err?.name === "NotAllowedError") {
        // The browser refuses to play without a gesture: say so, keep the call.
        this.queue.unshift(item);
        this.playing = null;
        this.block();
        return;
      }
      console.warn("motcua: announcement not played", item.number, err?.message || err);
    }
    this.playing = null;
    this.pump();
  }

  async playOnce(item) {
    const url = this.url(item);
    const entry = { number: item.number, counter: item.counter, recall: item.recall, url,
      started: null, ended: null, error: null };
    const audio = new Audio();
    audio.preload = "auto";
    const finished = new Promise((resolve, reject) => {
      audio.onended = resolve;
      audio.onerror = () => reject(new Error(`audio ${url}: ${audio.error?.message || "failed"}`));
    });
    finished.catch(() => {}); // awaited below, or play() reports the failure first
    audio.src = url;
    let stall;
    try {
      await Promise.race([
        audio.play(),
        new Promise((_, reject) => {
          stall = setTimeout(() => reject(new Error("audio did not start")), PLAY_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      audio.removeAttribute("src");
      if (err?.name !== "NotAllowedError") this.log.push({ ...entry, error: String(err?.message || err) });
      throw err;
    } finally {
      clearTimeout(stall);
    }
    entry.started = performance.now();
    this.log.push(entry);
    await Promise.race([finished, sleep(MAX_PLAY_MS)]);
    entry.ended = performance.now();
  }

  block() {
    this.blocked = true;
    $("audio-blocked").hidden = false;
    const unblock = () => {
      for (const type of ["pointerdown", "keydown"]) document.removeEventListener(type, unblock, true);
      this.blocked = false;
      $("audio-blocked").hidden = true;
      this.pump();
    };
    for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, unblock, true);
  }
}

const announcer = new Announcer();
// For the tests and for a technician at the console: the queue and what was played.
window.motcuaBoard = { announcer, state };

// ---- the board ---------------------------------------------------------------------------
function serviceName(code) {
  return state.board.service_names?.[code] || code;
}

function isCurrent(board, call) {
  const c = board.counters.find((x) => x.number === call.counter);
  return Boolean(c?.current && c.current.number === call.number);
}

// What is being called now (the snapshot's `calling`): the newest recent call whose
// ticket is still its counter's current one. A no-show, a finish or a transfer ends it.
function nowCalling(board) {
  return board.recent_calls.find((call) =>
    isCurrent(board, { number: call.ticket.number, counter: call.counter.number })) || null;
}

function highlighted(number) {
  const until = state.fresh.get(number);
  return until !== undefined && until > Date.now();
}

function tile(c) {
  const status = c.status === "open" ? "open" : c.status === "paused" ? "paused" : "closed";
  const current = c.current;
  return el(
    "div",
    { class: `b-tile status-${status}${current && highlighted(c.number) ? " fresh" : ""}`,
      "data-counter": c.number, "data-testid": `counter-${c.number}` },
    el("div", { class: "b-tile-counter" }, c.name),
    el("div", { class: "b-tile-number", "data-testid": "number" }, current ? current.number : "—"),
    el("div", { class: "b-tile-service" },
      current ? serviceName(current.service) : t(`status_${status}`)),
  );
}

function latestView(board) {
  const call = board.calling;
  if (!call) {
    return [el("p", { class: "b-latest-none" }, t(board.recent_calls.length ? "none_calling" : "no_calls"))];
  }
  return [
    el("div", { class: "b-latest-label" }, t("now_calling")),
    el("div", { class: "b-latest-number", "data-testid": "latest-number" }, call.ticket.number),
    el("div", { class: "b-latest-counter" }, t("to_counter", { n: call.counter.number })),
    call.ticket.appointment
      ? el("div", { class: "b-appointment", "data-testid": "latest-appointment" }, t("appointment"))
      : null,
  ];
}

function callRow(call) {
  return el(
    "li",
    {},
    el("span", { class: "b-call-number" }, call.ticket.number),
    el("span", { class: "b-call-arrow", "aria-hidden": "true" }, "→"),
    el("span", { class: "b-call-counter" }, `${t("counter")} ${call.counter.number}`),
    call.recall ? el("span", { class: "b-call-recall" }, t("recall")) : null,
    call.ticket.appointment ? el("span", { class: "b-appointment" }, t("appointment")) : null,
  );
}

function waitingRow([code, n]) {
  return el(
    "li",
    { "data-service": code },
    el("span", { class: "b-waiting-name" }, serviceName(code)),
    el("span", { class: "b-waiting-count", "data-testid": "waiting-count" }, n),
  );
}

// The grid that gives the counters' numbers the largest type: a number is about half a
// tile high and at most 30% of its width wide (board.css).
function grid(n, width, height) {
  let best = { cols: 1, rows: 1, size: 0 };
  for (let cols = 1; cols <= Math.max(1, n); cols++) {
    const rows = Math.max(1, Math.ceil(n / cols));
    const size = Math.min((height / rows) * 0.52, (width / cols) * 0.32);
    if (size > best.size) best = { cols, rows, size };
  }
  return best;
}

function render() {
  const board = state.board;
  const message = $("message");
  if (!board) {
    message.hidden = false;
    offlineNote.hidden = true;
    return;
  }
  message.hidden = true;
  document.body.dataset.layout = board.board.layout;
  const counters = $("counters");
  const { cols, rows } = grid(board.counters.length, counters.clientWidth, counters.clientHeight);
  counters.style.setProperty("--cols", cols);
  counters.style.setProperty("--rows", rows);
  counters.replaceChildren(...board.counters.map(tile));
  const latest = $("latest");
  latest.replaceChildren(...latestView(board));
  latest.classList.toggle("fresh", Boolean(board.calling) && highlighted(board.calling.counter.number));
  // The calls before the one shown big (which is not repeated under it).
  const earlier = board.recent_calls.filter((call) => call.seq !== board.calling?.seq);
  $("calls").replaceChildren(
    ...(earlier.length ? earlier.map(callRow) : [el("li", { class: "b-none" }, t("no_earlier_calls"))]),
  );
  const waiting = Object.entries(board.waiting);
  $("waiting").replaceChildren(
    ...(waiting.length ? waiting.map(waitingRow) : [el("li", { class: "b-none" }, t("waiting_none"))]),
  );
  offlineNote.hidden = state.online;
}

// A call heard live: show it, make it stand out, announce it.
function called(event) {
  const board = state.board;
  const number = event.ticket.counter;
  const c = board.counters.find((x) => x.number === number);
  if (!c) return;
  c.current = { number: event.ticket.number, service: event.ticket.service.code };
  board.recent_calls = [event, ...board.recent_calls].slice(0, 10);
  board.calling = nowCalling(board);
  state.fresh.set(number, Date.now() + HIGHLIGHT_MS);
  setTimeout(render, HIGHLIGHT_MS + 50);
  announcer.add({ number: event.ticket.number, counter: number, recall: event.recall, seq: event.seq });
}

function apply(event) {
  const board = state.board;
  if (event.kind.startsWith("counter_")) {
    const c = board.counters.find((x) => x.number === event.counter.number);
    if (c) c.status = event.counter.status;
    return;
  }
  if (event.kind === "called") return called(event);
  if (!event.ticket) return;
  const c = board.counters.find((x) => x.number === event.ticket.counter);
  if (c && ["finished", "no_show", "transferred"].includes(event.kind)) {
    if (c.current && c.current.number === event.ticket.number) c.current = null;
    board.calling = nowCalling(board);
  }
}

function snapshot(s) {
  const first = state.board === null;
  state.board = s;
  announcer.configure(s.board.announce);
  $("centre").replaceChildren(el("span", {}, s.centre.name));
  fitCentreName();
  const notice = s.centre.notice || "";
  $("notice").textContent = notice;
  $("notice-bar").hidden = !notice;
  // Slow enough to read from afar, whatever the notice's length: about 9 characters a second.
  $("notice").style.setProperty("--duration", `${Math.max(20, Math.round(notice.length / 9 + 12))}s`);
  if (first) {
    startClock($("clock"), s.centre.timezone);
  } else {
    // Back after a gap or a reconnection: the calls missed meanwhile that are still
    // current are announced (the newest per counter), not a backlog of stale ones.
    const still = (i) => isCurrent(s, i);
    announcer.prune(still);
    const seen = new Set();
    const missed = [];
    for (const call of s.recent_calls) {
      const item = { number: call.ticket.number, counter: call.counter.number, recall: call.recall, seq: call.seq };
      if (call.seq <= state.heard || seen.has(item.counter)) continue;
      seen.add(item.counter);
      if (still(item)) missed.push(item);
    }
    for (const item of missed.reverse()) {
      state.fresh.set(item.counter, Date.now() + HIGHLIGHT_MS);
      announcer.add(item);
    }
    if (missed.length) setTimeout(render, HIGHLIGHT_MS + 50);
  }
  state.heard = s.seq;
  render();
}

// ---- start -------------------------------------------------------------------------------
function setup(refused = null) {
  state.board = null;
  $("message").textContent = t(refused ? (refused.revoked ? "token_revoked" : "token_wrong") : "setup_needed");
  const hint = refused
    ? refused.revoked ? "token_revoked_hint" : refused.kept ? "token_kept" : "token_wrong_hint"
    : "setup_hint";
  $("message").append(el("span", { class: "b-hint", "data-testid": "hint" }, t(hint)));
  $("message").hidden = false;
  $("board").hidden = true;
}

// The centre's name on one line, in the largest type that fits (down to a floor); a name
// too long for that goes onto two lines. Its line height leaves room for the marks above
// Vietnamese capitals (Ỉ, Ễ, Ẫ), which a tighter box would cut off (board.css).
const NAME_SIZES = [46, 42, 38, 34, 30];
const TWO_LINE_SIZES = [32, 29, 26, 23, 20];
function fitCentreName() {
  const node = $("centre");
  const text = node.firstElementChild;
  if (!text) return;
  node.classList.remove("two-lines");
  for (const size of NAME_SIZES) {
    node.style.fontSize = `${size}px`;
    if (text.getBoundingClientRect().width <= node.clientWidth) return;
  }
  node.classList.add("two-lines");
  for (const size of TWO_LINE_SIZES) {
    node.style.fontSize = `${size}px`;
    if (text.getClientRects().length <= 2) return;
  }
}

// Again when the bundled font has loaded (a fallback font measures narrower) and when the
// name's room changes (the clock beside it filled in, another screen).
document.fonts?.ready.then(fitCentreName);
new ResizeObserver(() => fitCentreName()).observe($("centre"));
addEventListener("resize", () => state.board && render());

const token = deviceToken("display");
if (!token) {
  setup();
} else {
  $("message").textContent = t("connecting");
  render();
  follow({
    namespace: "/display",
    auth: () => ({ token }),
    snapshotEvent: "snapshot",
    handlers: {
      snapshot(s) {
        $("board").hidden = false;
        snapshot(s);
      },
      batch(events, services) {
        for (const e of events) {
          apply(e);
          state.heard = Math.max(state.heard, e.seq);
        }
        for (const summary of services) {
          if (summary.code in state.board.waiting) state.board.waiting[summary.code] = summary.waiting;
        }
        render();
      },
      online(up) {
        state.online = up;
        if (state.board) offlineNote.hidden = up;
      },
      refused(error) {
        setup(tokenRefusal(error));
      },
    },
  });
}
