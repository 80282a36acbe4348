// The province's overview: every centre the account may watch, today's figures in one
// row each, read again every few seconds (GET /api/v1/province/overview: a few
// statements for all the centres). A row opens that centre's monitor.
import { api as callApi, currentLang, el, endSession, minutes, t, staffLogin } from "/static/motcua.js";

const app = document.getElementById("app");
const data = JSON.parse(document.getElementById("province-data").textContent);
const TOKEN = "motcua.manage.session"; // the monitor's and the reports' login, shared
const CENTRE = "motcua.manage.centre";

const state = {
  token: sessionStorage.getItem(TOKEN),
  overview: null,
  refusal: null,
  filter: "",
  onlyOver: false,
};
let timer = null;

async function load() {
  if (!state.token) return;
  try {
    const { status, answer } = await callApi("GET", "/api/v1/province/overview", { token: state.token });
    if (status === 200) {
      state.overview = answer;
      state.refusal = null;
    } else if (status === 401) {
      forget();
    } else {
      state.refusal = answer?.error?.message || t("refused");
    }
    document.getElementById("offline").hidden = true;
  } catch {
    document.getElementById("offline").hidden = !state.overview;
  }
  render();
}

function start() {
  clearInterval(timer);
  load();
  timer = setInterval(load, (data.every_s || 15) * 1000);
}

function forget() {
  sessionStorage.removeItem(TOKEN);
  Object.assign(state, { token: null, overview: null, refusal: null });
  clearInterval(timer);
}

async function logout() {
  await endSession(state.token);
  forget();
  render();
}

function english(vi, en) {
  return currentLang() === "en" && en ? en : vi;
}

function elapsed(seconds) {
  if (!seconds) return t("none");
  return seconds < 60 ? t("under_a_minute") : t("minutes_n", { m: Math.floor(seconds / 60) });
}

function header() {
  return el("header", { class: "m-head" },
    el("div", { class: "m-centre" }, t("title")),
    state.token ? el("button", { type: "button", class: "m-link", onclick: logout }, t("logout")) : null);
}

function matches(c) {
  if (state.onlyOver && !(c.waiting && c.over_target)) return false;
  if (!state.filter) return true;
  const plain = (s) => (s || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
  const want = plain(state.filter);
  return plain(c.name).includes(want) || plain(c.code).includes(want) || plain(c.name_en).includes(want);
}

function goTo(c) {
  sessionStorage.setItem(CENTRE, c.code);
}

function row(c) {
  const over = c.waiting && c.over_target;
  const link = el("a", {
    href: `/manage/?centre=${encodeURIComponent(c.code)}${currentLang() === "en" ? "&lang=en" : ""}`,
    title: t("monitor_link", { name: c.name }),
    onclick: () => goTo(c),
  }, english(c.name, c.name_en));
  return el("tr", { class: over ? "over" : "", "data-centre": c.code },
    el("th", { scope: "row" }, link, el("small", {}, c.code)),
    el("td", { class: "num", "data-col": "issued" }, c.issued),
    el("td", { class: "num", "data-col": "waiting" }, c.waiting),
    el("td", { class: "num", "data-col": "at_counter" }, c.at_counter),
    el("td", { class: "num", "data-col": "served" }, c.served),
    el("td", { class: "num", "data-col": "open" }, t("open_of", { open: c.counters_open, all: c.counters }),
      c.counters_paused ? el("small", {}, t("paused_n", { n: c.counters_paused })) : null),
    el("td", { class: "num", "data-col": "longest" }, c.waiting ? elapsed(c.longest_wait_s) : t("none"),
      over ? el("strong", { class: "m-over", "data-testid": "over-target" }, t("over_target", { m: minutes(c.target_wait_s) })) : null),
    el("td", { class: "num", "data-col": "alerts" }, c.alerts ? el("span", { class: "p-alert" }, c.alerts) : t("none")));
}

function totals(centres) {
  const sum = (k) => centres.reduce((n, c) => n + c[k], 0);
  const longest = Math.max(0, ...centres.filter((c) => c.waiting).map((c) => c.longest_wait_s));
  return el("tr", { class: "p-total", "data-testid": "total" },
    el("th", { scope: "row" }, t("total", { n: centres.length })),
    el("td", { class: "num" }, sum("issued")),
    el("td", { class: "num" }, sum("waiting")),
    el("td", { class: "num" }, sum("at_counter")),
    el("td", { class: "num" }, sum("served")),
    el("td", { class: "num" }, t("open_of", { open: sum("counters_open"), all: sum("counters") })),
    el("td", { class: "num" }, elapsed(longest)),
    el("td", { class: "num" }, sum("alerts") || t("none")));
}

function overviewView() {
  const all = state.overview.centres;
  const shown = all.filter(matches);
  const at = new Date(state.overview.at);
  const time = new Intl.DateTimeFormat("vi-VN", {
    timeZone: state.overview.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).format(at);
  const filter = el("input", {
    type: "search", class: "p-filter", "data-testid": "filter", "aria-label": t("filter"),
    placeholder: t("filter_hint"), value: state.filter,
    oninput: (e) => { state.filter = e.target.value; renderKeepingFocus(); },
  });
  const onlyOver = el("label", { class: "p-check" },
    el("input", { type: "checkbox", checked: state.onlyOver, onchange: (e) => { state.onlyOver = e.target.checked; render(); } }),
    t("only_over"));
  return [header(), el("main", { class: "p-main" },
    el("div", { class: "p-tools" }, filter, onlyOver,
      el("span", { class: "m-note", "data-testid": "updated" }, t("updated", { time, s: state.overview.every_s }))),
    el("section", { class: "m-panel" },
      el("table", { class: "m-table p-table", "data-testid": "centres" },
        el("thead", {}, el("tr", {},
          [t("centre"), t("issued"), t("waiting"), t("at_counter"), t("served"), t("counters_open"), t("longest"), t("alerts")]
            .map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, totals(all), shown.map(row))),
      shown.length ? null : el("p", { class: "m-note" }, t("no_match"))))];
}

function renderKeepingFocus() {
  const at = document.activeElement?.selectionStart;
  render();
  const input = app.querySelector(".p-filter");
  input.focus();
  if (at !== undefined && at !== null) input.setSelectionRange(at, at);
}

function render() {
  let view;
  if (!state.token) {
    view = [header(), staffLogin("m", async (token) => {
      state.token = token;
      sessionStorage.setItem(TOKEN, token);
      start();
    })];
  } else if (state.refusal) {
    view = [header(), el("p", { class: "m-error m-refused", role: "alert", "data-testid": "refused" }, state.refusal)];
  } else if (!state.overview) {
    view = [header(), el("p", { class: "m-note" }, t("loading"))];
  } else {
    view = overviewView();
  }
  app.replaceChildren(...view.flat().filter(Boolean));
  app.dataset.view = !state.token ? "login" : state.overview ? "province" : "waiting";
}

render();
if (state.token) start();
