// A ticket's status page, live: follows /ticket with the ticket's key (docs/protocol.md
// 8.6). Each batch says something about this ticket or its queue moved; the page then
// asks for its snapshot again (at most every 2 s), which has the exact position.
import { currentLang, el, follow, minutes, t } from "/static/motcua.js";

const key = decodeURIComponent(location.pathname.split("/t/")[1] || "");
const $ = (id) => document.querySelector(`[data-testid=${id}]`);
const RESYNC_MS = 2000;
let pending = null;

function show(s) {
  const tk = s.ticket;
  const status = $("status");
  status.textContent =
    tk.status === "called" ? t("called_to", { n: tk.counter }) : t(`status_${tk.status}`);
  status.classList.toggle("called", tk.status === "called");
  $("service").textContent = (currentLang() === "en" && s.service_en?.name) || tk.service.name;
  document.getElementById("position").hidden = s.ahead === null;
  if (s.ahead !== null) {
    $("ahead").textContent = s.ahead;
    const m = minutes(s.estimated_wait_s);
    $("wait").textContent = s.ahead > 0 && m > 0 ? t("minutes", { m }) : t("soon");
  }
  $("on-break").hidden = !s.on_break;
  $("updated").textContent = t("updated", { time: s.checked_at.slice(11, 16) });
  showRating(s.rating);
  alertHolder(s);
}

// ---- telling the holder while the page is open: vibration and a notification ---------
// Once when few are ahead (the centre's notify_ahead), once at each call. Notifications
// need the holder's permission: asked only when they tap the button, never on load.
const alerted = new Set();
function alertHolder(s) {
  const tk = s.ticket;
  let what = null;
  if (tk.status === "called") what = [`called:${tk.called_at}`, t("called_to", { n: tk.counter })];
  else if (s.ahead !== null && s.ahead <= s.notify_ahead && ["waiting", "transferred"].includes(tk.status)) {
    what = ["near", t("near", { n: s.ahead })];
  }
  const ask = $("notify-ask");
  ask.hidden = !("Notification" in window) || Notification.permission !== "default"
    || !["waiting", "transferred"].includes(tk.status);
  if (!what || alerted.has(what[0])) return;
  alerted.add(what[0]);
  // Browsers let a page vibrate only once its holder has touched it.
  if (navigator.userActivation?.hasBeenActive ?? true) navigator.vibrate?.([300, 150, 300]);
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(`${tk.number}: ${what[1]}`, { tag: `motcua-${tk.id}` });
  }
  $("alerted").textContent = what[1];
  $("alerted").hidden = false;
}
$("notify-ask").addEventListener("click", async () => {
  await Notification.requestPermission();
  $("notify-ask").hidden = true;
});

// ---- rating the visit here (docs/protocol.md 8.6), when the tablet did not get it ----
const box = document.getElementById("rating");
let rating = null; // "open" while the form is up, "rated" once thanked

function face(score) {
  return document.getElementById("faces").content.querySelector(`[data-face="${score}"]`).cloneNode(true);
}

function reasonLabel(reason) {
  const key = `reason:${reason}`;
  return t(key) === key ? reason : t(key);
}

function showRating(r) {
  const state = r?.state === "open" || r?.state === "rated" ? r.state : null;
  if (state === rating) return; // keep a form being filled in
  rating = state;
  box.hidden = state === null;
  if (state === "rated") box.replaceChildren(el("p", { class: "done", "data-testid": "rated" }, t("thanks")));
  if (state === "open") box.replaceChildren(...choices(r));
}

function choices(r) {
  return [
    el("h2", {}, t("rate_question")),
    el("div", { class: "levels" }, [3, 2, 1].map((score) =>
      el("button", { type: "button", class: "level", "data-score": score,
        onclick: () => (score === 1 ? box.replaceChildren(...reasons(r)) : send({ score })) },
        face(score), el("span", {}, t(`level_${score}`))))),
  ];
}

function reasons(r) {
  const boxes = r.reasons.map((reason) =>
    el("label", {}, el("input", { type: "checkbox", value: reason }), el("span", {}, reasonLabel(reason))));
  const comment = el("textarea", { maxlength: r.comment_max_len, "data-testid": "comment" });
  return [
    el("h2", {}, t("reasons_title")),
    el("div", { class: "reasons" }, boxes),
    el("label", {}, el("h2", {}, t("comment_title")), comment),
    el("button", { type: "button", class: "send", onclick: () => send({
      score: 1,
      reasons: [...box.querySelectorAll("input:checked")].map((i) => i.value),
      comment: comment.value.trim() || null,
    }) }, t("send")),
    el("p", { class: "error", id: "rate-error", role: "alert" }),
  ];
}

async function send(payload) {
  for (const b of box.querySelectorAll("button")) b.disabled = true;
  let answer = null;
  try {
    answer = await link.request("rate", payload, { giveUpMs: 15000 });
  } catch {
    answer = null;
  }
  if (answer?.ok || answer?.error?.code === "already_rated") {
    rating = "rated";
    box.replaceChildren(el("p", { class: "done", "data-testid": "rated" }, t("thanks")));
    return;
  }
  for (const b of box.querySelectorAll("button")) b.disabled = false;
  let error = document.getElementById("rate-error");
  if (!error) {
    error = el("p", { class: "error", id: "rate-error", role: "alert" });
    box.append(error);
  }
  error.textContent = answer?.error?.message || t("rate_failed");
}

const link = follow({
  namespace: "/ticket",
  auth: () => ({ key }),
  snapshotEvent: "ticket_state",
  handlers: {
    snapshot: show,
    batch() {
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        link.sync();
      }, RESYNC_MS);
    },
    online(up) {
      document.getElementById("offline").hidden = up;
    },
  },
});
