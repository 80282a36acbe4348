// The centre's reports (/manage/reports): log in as a manager, choose a range of days,
// read the summary and the breakdowns, download them as CSV or XLSX. Every figure comes
// from /api/v1/reports/… (docs/reports.md) with the session's token.
import { api as callApi, currentLang, el, endSession, t, staffLogin } from "/static/motcua.js";

const app = document.getElementById("app");
const data = JSON.parse(document.getElementById("reports-data").textContent);
const TOKEN = "motcua.manage.session";
const CENTRE = "motcua.manage.centre"; // the centre chosen, for an account in several
// The breakdown table's columns (the downloads have them all).
const BRIEF = [
  ["tickets", "issued"], ["tickets", "served"], ["tickets", "no_show"], ["tickets", "cancelled"],
  ["tickets", "transferred"], ["wait_s", "mean"], ["wait_s", "p90"],
  ["wait_s", "within_target_share"], ["service_s", "mean"], ["ratings", "total"],
  ["ratings", "satisfied_share"], ["ratings", "very_satisfied_share"],
  ["dossiers", "received"], ["dossiers", "in_person"], ["dossiers", "online"], ["dossiers", "post"],
  ["dossiers", "returned"], ["dossiers", "returned_late"], ["dossiers", "overdue_now"],
  ["dossiers", "on_time_share"],
];

const state = {
  token: sessionStorage.getItem(TOKEN),
  centre: null, // GET /api/v1/centre
  from: null,
  to: null,
  summary: null,
  by: "service",
  staffing: null, // GET /api/v1/reports/staffing
  weekday: 0,
  weeks: 8,
  breakdown: null,
  error: null,
  busy: false,
};

function api(method, path, body) {
  return callApi(method, path, { token: state.token, body });
}

function forget() {
  sessionStorage.removeItem(TOKEN);
  Object.assign(state, { token: null, centre: null, summary: null, breakdown: null });
}

// ---- numbers as people read them ------------------------------------------------------
function locale() {
  return currentLang() === "en" ? "en-GB" : "vi-VN";
}

function count(n) {
  return n === null || n === undefined ? "" : new Intl.NumberFormat(locale()).format(n);
}

function percent(x) {
  if (x === null || x === undefined) return "";
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(x);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const whole = Math.round(seconds);
  return t("minutes_seconds", { m: Math.floor(whole / 60), s: whole % 60 });
}

function day(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Intl.DateTimeFormat(locale(), { dateStyle: "long", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
}

// A download's heading; durations are shown here in minutes and seconds, not "(giây)".
function heading(family, key) {
  return t(`col_${family}_${key}`).replace(/\s*\((giây|s)\)$/, "");
}

function cell(key, value) {
  if (key.endsWith("_share")) return percent(value);
  if (["mean", "median", "p90", "target"].includes(key)) return duration(value);
  return count(value);
}

// ---- charts ---------------------------------------------------------------------------
// Chart.js from the app's static files (gateway/static/vendor/chart.js, no CDN). Each
// chart sits beside the table it draws: the table is what a screen reader reads, the
// canvas has a label saying what it shows. A render makes its charts' canvases; once
// they are on the page they are drawn, and the previous render's charts destroyed.
let drawn = [];
let pending = [];

// Fixed colours, not the centre's brand (which may be red, the colour of "late" and
// "dissatisfied" here): blue for the main series, grey beside it, green good, red bad.
const COLOURS = {
  main: "#2f6db5",
  muted: "#9aa3af",
  good: "#1e7b34",
  warn: "#b45f06",
  bad: "#b3261e",
};

function chart(id, label, config) {
  const canvas = el("canvas", { role: "img", "aria-label": label, "data-chart": id });
  pending.push([canvas, config]);
  return el("figure", { class: "r-chart" }, canvas);
}

function drawCharts() {
  for (const c of drawn) c.destroy();
  drawn = [];
  const Chart = window.Chart;
  if (Chart) {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 13;
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.locale = locale();
    Chart.defaults.datasets.bar.maxBarThickness = 56;
    drawn = pending.map(([canvas, config]) => new Chart(canvas, config));
  }
  pending = [];
}

function axis(title, extra = {}) {
  return { beginAtZero: true, title: { display: true, text: title }, ...extra };
}

// A breakdown's rows: tickets issued and served as bars, the mean wait (minutes) as a
// line on its own axis; a dossier field's rows: received and returned late.
function breakdownChart(b) {
  const labels = b.rows.map((r) => r.label);
  let datasets;
  let scales;
  if (b.rows[0].tickets) {
    datasets = [
      { type: "bar", label: heading("tickets", "issued"), data: b.rows.map((r) => r.tickets.issued),
        backgroundColor: COLOURS.muted, yAxisID: "y" },
      { type: "bar", label: heading("tickets", "served"), data: b.rows.map((r) => r.tickets.served),
        backgroundColor: COLOURS.main, yAxisID: "y" },
      { type: "line", label: t("chart_mean_wait"),
        data: b.rows.map((r) => (r.wait_s.mean === null ? null : Math.round(r.wait_s.mean / 6) / 10)),
        borderColor: COLOURS.warn, backgroundColor: COLOURS.warn, yAxisID: "minutes", spanGaps: true },
    ];
    scales = {
      y: axis(t("chart_tickets_axis"), { ticks: { precision: 0 } }),
      minutes: axis(t("chart_minutes_axis"), { position: "right", grid: { drawOnChartArea: false } }),
    };
  } else {
    datasets = [
      { label: heading("dossiers", "received"), data: b.rows.map((r) => r.dossiers.received),
        backgroundColor: COLOURS.main },
      { label: heading("dossiers", "returned_late"), data: b.rows.map((r) => r.dossiers.returned_late),
        backgroundColor: COLOURS.bad },
    ];
    scales = { y: axis(t("chart_dossiers_axis"), { ticks: { precision: 0 } }) };
  }
  return chart(`breakdown-${b.by}`, t("chart_breakdown", { by: t(`by_${b.by}`).toLowerCase() }),
    { type: "bar", data: { labels, datasets }, options: { scales } });
}

function ratingsChart(r) {
  const levels = ["very_satisfied", "satisfied", "dissatisfied"];
  return chart("ratings", t("chart_ratings"), {
    type: "doughnut",
    data: {
      labels: levels.map((k) => t(`col_ratings_${k}`)),
      datasets: [{ data: levels.map((k) => r[k]), backgroundColor: [COLOURS.good, COLOURS.main, COLOURS.bad] }],
    },
    options: { plugins: { legend: { position: "bottom" } } },
  });
}

function dossiersChart(d) {
  const channels = ["in_person", "online", "post"];
  return chart("dossiers", t("chart_dossiers"), {
    type: "bar",
    data: {
      labels: [...channels, "returned"].map((k) => t(`chart_${k}`)),
      datasets: [
        { label: heading("dossiers", "received"), data: [...channels.map((k) => d[k]), null],
          backgroundColor: COLOURS.main, stack: "a" },
        { label: heading("dossiers", "returned_on_time"), data: [null, null, null, d.returned_on_time],
          backgroundColor: COLOURS.good, stack: "a" },
        { label: heading("dossiers", "returned_late"), data: [null, null, null, d.returned_late],
          backgroundColor: COLOURS.bad, stack: "a" },
      ],
    },
    options: {
      indexAxis: "y",
      plugins: { legend: { position: "bottom" } },
      scales: { y: { stacked: true }, x: axis(t("chart_dossiers_axis"), { stacked: true, ticks: { precision: 0 } }) },
    },
  });
}

// The staffing advice, one small chart a service: counters needed (bars) against
// counters open (a stepped line), hour by hour.
function staffingCharts(a) {
  const services = [...new Map(a.rows.map((r) => [r.service, r.service_name])).entries()];
  return el("div", { class: "r-charts" }, services.map(([code, name]) => {
    const rows = a.rows.filter((r) => r.service === code);
    return chart(`staffing-${code}`, t("chart_staffing", { service: name }), {
      type: "bar",
      data: {
        labels: rows.map((r) => `${String(r.hour).padStart(2, "0")}:00`),
        datasets: [
          { type: "bar", label: t("staffing_needed"), data: rows.map((r) => r.needed),
            backgroundColor: rows.map((r) => (r.needed > r.open + 0.5 ? COLOURS.warn : COLOURS.main)) },
          { type: "line", label: t("staffing_open"), data: rows.map((r) => r.open), stepped: "middle",
            borderColor: COLOURS.good, backgroundColor: COLOURS.good, pointRadius: 0 },
        ],
      },
      options: {
        plugins: { title: { display: true, text: name } },
        scales: { y: axis(t("chart_counters_axis"), { ticks: { precision: 0 } }) },
      },
    });
  }));
}

// ---- the range ------------------------------------------------------------------------
function today() {
  const zone = state.centre?.centre.timezone;
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
}

function month(offset) {
  const [y, m] = today().split("-").map(Number);
  const first = new Date(Date.UTC(y, m - 1 + offset, 1));
  const last = offset === 0 ? today() : new Date(Date.UTC(y, m + offset, 0)).toISOString().slice(0, 10);
  return [first.toISOString().slice(0, 10), last];
}

function query(extra = "") {
  const code = state.centre?.centre.code;
  const centre = code ? `&centre=${encodeURIComponent(code)}` : "";
  return `from=${state.from}&to=${state.to}${centre}${extra}`;
}

// ---- screens --------------------------------------------------------------------------
function render() {
  let view;
  if (!state.token) view = loginView();
  else if (!state.centre) view = [el("p", { class: "r-note" }, t("loading"))];
  else view = reportView();
  app.replaceChildren(...[view].flat().filter(Boolean));
  app.dataset.view = !state.token ? "login" : "report";
  drawCharts();
}

function loginView() {
  const form = staffLogin("r", async (token) => {
    state.token = token;
    sessionStorage.setItem(TOKEN, token);
    await loadCentre();
  });
  return [el("header", { class: "r-head" }, el("div", { class: "r-centre" }, t("title"))), form];
}

async function loadCentre() {
  const code = sessionStorage.getItem(CENTRE);
  const { status, answer } = await api("GET", "/api/v1/centre" + (code ? `?centre=${encodeURIComponent(code)}` : ""));
  if (status === 401) {
    forget();
    render();
    return;
  }
  if (status !== 200) {
    state.error = answer.error?.message || t("server_trouble");
    state.centre = { centre: { code: code || "", name: "" }, centres: [] };
    render();
    return;
  }
  state.centre = answer;
  if (!state.from) [state.from, state.to] = month(0);
  render();
  await show();
}

async function logout() {
  // Forgotten here first: the page is logged out even if the server is slow to hear it.
  const token = state.token;
  forget();
  render();
  await endSession(token);
}

function header() {
  const centres = (state.centre.centres || []).filter((c) => c.role !== "clerk");
  return el("header", { class: "r-head" },
    el("div", { class: "r-centre" }, `${t("title")} · ${state.centre.centre.name}`),
    centres.length > 1
      ? el("select", {
        "aria-label": t("centre"),
        "data-testid": "centre",
        onchange: (e) => chooseCentre(e.target.value),
      }, centres.map((c) => el("option", { value: c.code, selected: c.code === state.centre.centre.code }, c.name)))
      : null,
    el("button", { type: "button", class: "r-link", onclick: logout }, t("logout")));
}

function chooseCentre(code) {
  sessionStorage.setItem(CENTRE, code);
  Object.assign(state, { centre: null, summary: null, breakdown: null });
  render();
  loadCentre();
}

function rangeForm() {
  // What is typed is kept in the state at once: a screen drawn again keeps it.
  const from = el("input", {
    type: "date", name: "from", value: state.from, required: true, oninput: (e) => { state.from = e.target.value; },
  });
  const to = el("input", {
    type: "date", name: "to", value: state.to, required: true, oninput: (e) => { state.to = e.target.value; },
  });
  const form = el("form", { class: "r-range", "data-testid": "range" },
    el("label", {}, t("from"), from),
    el("label", {}, t("to"), to),
    el("button", { type: "submit", class: "r-primary", disabled: state.busy }, t("show")),
    el("button", { type: "button", class: "r-plain", onclick: () => pick(month(0)) }, t("this_month")),
    el("button", { type: "button", class: "r-plain", onclick: () => pick(month(-1)) }, t("last_month")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    pick([from.value, to.value]);
  });
  return form;
}

function pick([from, to]) {
  state.from = from;
  state.to = to;
  show();
}

function reportView() {
  const s = state.summary;
  return [
    header(),
    el("main", { class: "r-main" },
      rangeForm(),
      state.error ? el("p", { class: "r-error", role: "alert", "data-testid": "report-error" }, state.error) : null,
      s ? summaryView(s) : null,
      s ? indexView(s) : null,
      s ? commentsView(s.comments) : null,
      s ? breakdownView() : null,
      s ? staffingView() : null),
  ];
}

function downloads(path) {
  return el("div", { class: "r-downloads" },
    el("button", { type: "button", class: "r-plain", "data-download": "csv", onclick: () => download(path, "csv") },
      t("download_csv")),
    el("button", { type: "button", class: "r-plain", "data-download": "xlsx", onclick: () => download(path, "xlsx") },
      t("download_xlsx")));
}

function figures(title, family, values, keys) {
  return el("section", { class: "r-card", "data-family": family },
    el("h2", {}, title),
    el("dl", {}, keys.flatMap((key) => [
      el("dt", {}, t(`col_${family}_${key}`)),
      el("dd", { "data-figure": `${family}.${key}` }, cell(key, values[key])),
    ])));
}

function withChart(card, figure) {
  card.append(figure);
  return card;
}

function summaryView(s) {
  const times = el("section", { class: "r-card", "data-family": "times" },
    el("h2", {}, t("waits")),
    el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}), ["mean", "median", "p90"].map((k) => el("th", {}, t(k))))),
      el("tbody", {},
        [["wait", s.wait_s], ["service", s.service_s]].map(([name, v]) =>
          el("tr", {}, el("th", {}, t(name)), ["mean", "median", "p90"].map((k) => el("td", {}, duration(v[k]))))))),
    el("p", {}, t("within_target", { m: Math.round(s.wait_s.target / 60) }), ": ",
      el("strong", { "data-figure": "wait_s.within_target_share" }, percent(s.wait_s.within_target_share))));
  const reasons = Object.entries(s.ratings.reasons);
  const ratings = figures(t("ratings"), "ratings", s.ratings,
    ["very_satisfied", "satisfied", "dissatisfied", "total", "satisfied_share", "very_satisfied_share"]);
  ratings.append(ratingsChart(s.ratings), el("h3", {}, t("reasons")),
    reasons.length
      ? el("ul", { class: "r-reasons" }, reasons.map(([reason, n]) => el("li", {}, `${reason}: ${count(n)}`)))
      : el("p", { class: "r-note" }, t("no_reasons")));
  return el("div", { class: "r-summary", "data-testid": "summary" },
    el("div", { class: "r-title" }, el("h1", {}, `${day(s.from)} – ${day(s.to)}`), downloads("summary?")),
    el("div", { class: "r-cards" },
      figures(t("tickets"), "tickets", s.tickets, ["issued", "served", "no_show", "cancelled", "transferred"]),
      times,
      ratings,
      withChart(figures(t("dossiers"), "dossiers", s.dossiers,
        ["received", "in_person", "online", "post", "returned", "returned_on_time", "returned_late",
          "overdue_now", "on_time_share"]), dossiersChart(s.dossiers))),
    el("p", { class: "r-note" }, t("share_note")));
}

function indexView(s) {
  return el("section", { class: "r-index", "data-testid": "index" },
    el("h2", {}, t("index_title")),
    el("ul", {},
      el("li", {}, t("index_on_time", { on_time: count(s.dossiers.returned_on_time), returned: count(s.dossiers.returned) }),
        " = ", el("strong", {}, percent(s.dossiers.on_time_share))),
      el("li", {}, t("index_satisfied", {
        satisfied: count(s.ratings.very_satisfied + s.ratings.satisfied), total: count(s.ratings.total),
      }), " = ", el("strong", {}, percent(s.ratings.satisfied_share)))));
}

const LEVELS = { 3: "col_ratings_very_satisfied", 2: "col_ratings_satisfied", 1: "col_ratings_dissatisfied" };

// The citizens' words, as text (never markup: el() makes text nodes).
function commentsView(c) {
  return el("section", { class: "r-comments", "data-testid": "comments" },
    el("h2", {}, t("comments_title")),
    c.total
      ? el("p", { class: "r-note" }, t("comments_count", { shown: count(c.shown.length), total: count(c.total) }))
      : el("p", { class: "r-note" }, t("no_comments")),
    el("ul", {}, c.shown.map((x) => el("li", {},
      el("span", { class: "r-when" }, x.at.slice(0, 16).replace("T", " ")),
      el("span", { class: `r-level r-level-${x.score}` }, t(LEVELS[x.score])),
      el("span", { class: "r-where" }, [x.service, x.counter].filter(Boolean).join(" · ")),
      el("q", {}, x.text)))));
}

function breakdownView() {
  const b = state.breakdown;
  const tabs = el("div", { class: "r-tabs", role: "tablist" },
    data.breakdowns.map((by) => el("button", {
      type: "button",
      role: "tab",
      "aria-selected": String(by === state.by),
      "data-by": by,
      onclick: () => chooseBreakdown(by),
    }, t(`by_${by}`))));
  let table = el("p", { class: "r-note" }, t("loading"));
  if (b && b.by === state.by) {
    const first = b.rows[0];
    const columns = first ? BRIEF.filter(([family]) => first[family] !== null) : [];
    table = b.rows.length
      ? [breakdownChart(b), el("div", { class: "r-scroll" }, el("table", { class: "r-table", "data-testid": "breakdown" },
        el("thead", {}, el("tr", {}, el("th", {}, t(`by_${b.by}`)),
          columns.map(([family, key]) => el("th", {}, heading(family, key))))),
        el("tbody", {}, b.rows.map((row) => el("tr", {},
          el("th", {}, row.label),
          columns.map(([family, key]) => el("td", {}, cell(key, row[family][key]))))))))]
      : el("p", { class: "r-note" }, t("no_rows"));
  }
  return el("section", { class: "r-breakdown" },
    el("div", { class: "r-title" }, el("h2", {}, t("breakdown")), downloads(`breakdown?by=${state.by}&`)),
    tabs,
    table);
}

function staffingView() {
  const weekday = el("select", {
    name: "weekday", "aria-label": t("staffing_weekday"), onchange: (e) => { state.weekday = Number(e.target.value); },
  },
    [0, 1, 2, 3, 4, 5, 6].map((d) => el("option", { value: d, selected: d === state.weekday }, t(`weekday_${d}`))));
  const weeks = el("input", {
    type: "number", name: "weeks", min: 1, max: 26, value: state.weeks,
    oninput: (e) => { state.weeks = Number(e.target.value) || 8; },
  });
  const form = el("form", { class: "r-range" },
    el("label", {}, t("staffing_weekday"), weekday),
    el("label", {}, t("staffing_weeks"), weeks),
    el("button", { type: "submit", class: "r-plain" }, t("staffing_show")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    state.weekday = Number(weekday.value);
    state.weeks = Number(weeks.value) || 8;
    loadStaffing();
  });
  const a = state.staffing;
  let body = null;
  if (a) {
    body = [
      el("p", { class: "r-note", "data-testid": "staffing-model" }, t("staffing_model", {
        weeks: a.weeks, weekday: t(`weekday_${a.weekday}`).toLowerCase(), until: day(a.until),
        level: percent(a.level), minutes: Math.round(a.target_wait_s / 60),
      })),
      a.rows.length ? staffingCharts(a) : null,
      a.rows.length
        ? el("div", { class: "r-scroll" }, el("table", { class: "r-table", "data-testid": "staffing" },
          el("thead", {}, el("tr", {}, ["service", "hour", "arrivals", "mean", "needed", "open"]
            .map((k) => el("th", {}, t(`staffing_${k}`))))),
          el("tbody", {}, a.rows.map((r) => el("tr", { class: r.needed > r.open + 0.5 ? "r-short" : null },
            el("th", {}, r.service_name),
            el("td", {}, `${String(r.hour).padStart(2, "0")}:00`),
            el("td", {}, count(r.arrivals)),
            el("td", {}, duration(r.mean_service_s)),
            el("td", {}, count(r.needed)),
            el("td", {}, count(r.open), r.needed > r.open + 0.5 ? el("span", { class: "r-flag" }, ` ${t("staffing_short")}`) : null))))))
        : el("p", { class: "r-note" }, t("staffing_none")),
    ];
  }
  return el("section", { class: "r-staffing" },
    el("div", { class: "r-title" }, el("h2", {}, t("staffing_title")),
      a ? el("div", { class: "r-downloads" },
        ["csv", "xlsx"].map((f) => el("button", {
          type: "button", class: "r-plain", "data-download": f, onclick: () => downloadStaffing(f),
        }, t(`download_${f}`)))) : null),
    form,
    body);
}

function staffingQuery(extra = "") {
  const code = state.centre?.centre.code;
  const centre = code ? `&centre=${encodeURIComponent(code)}` : "";
  return `weekday=${state.weekday}&weeks=${state.weeks}&until=${state.to}${centre}${extra}`;
}

async function loadStaffing() {
  const mine = generation;
  try {
    const { status, answer } = await api("GET", `/api/v1/reports/staffing?${staffingQuery()}`);
    if (mine !== generation) return;
    if (status === 200) state.staffing = answer;
    else state.error = answer.error?.message || t("server_trouble");
  } catch {
    state.error = t("server_unreachable");
  }
  render();
}

function downloadStaffing(format) {
  return fetchDownload(`/api/v1/reports/staffing?${staffingQuery(`&format=${format}`)}`, format);
}

async function chooseBreakdown(by) {
  state.by = by;
  render();
  await loadBreakdown();
}

// ---- asking the server ----------------------------------------------------------------
// Each range asked for is a new generation: answers to an older one are dropped.
let generation = 0;

async function show() {
  const mine = ++generation;
  state.busy = true;
  state.error = null;
  render();
  try {
    const { status, answer } = await api("GET", `/api/v1/reports/summary?${query()}`);
    if (mine !== generation) return;
    if (status === 401) {
      forget();
    } else if (status === 200) {
      state.summary = answer;
    } else {
      state.summary = null;
      state.error = answer.error?.message || t("server_trouble");
    }
  } catch {
    if (mine !== generation) return;
    state.error = t("server_unreachable");
  } finally {
    if (mine === generation) state.busy = false;
  }
  render();
  if (state.summary) await loadBreakdown();
  if (state.summary && mine === generation) await loadStaffing();
}

async function loadBreakdown() {
  const mine = generation;
  try {
    const { status, answer } = await api("GET", `/api/v1/reports/breakdown?by=${state.by}&${query()}`);
    if (mine !== generation) return;
    if (status === 200) state.breakdown = answer;
    else state.error = answer.error?.message || t("server_trouble");
  } catch {
    state.error = t("server_unreachable");
  }
  render();
}

function download(path, format) {
  return fetchDownload(`/api/v1/reports/${path}${query(`&format=${format}`)}`, format);
}

async function fetchDownload(address, format) {
  const lang = currentLang() === "en" ? "&lang=en" : "";
  try {
    const response = await fetch(address + lang, {
      headers: { Authorization: `Bearer ${state.token}` },
    });
    if (!response.ok) {
      const answer = await response.json().catch(() => ({}));
      state.error = answer.error?.message || t("server_trouble");
      render();
      return;
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1];
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: name || `bao-cao.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch {
    state.error = t("server_unreachable");
    render();
  }
}

render();
if (state.token) loadCentre();
