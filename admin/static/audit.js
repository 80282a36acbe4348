// The audit page (/admin/audit): who changed what and when in the centre, newest first,
// from GET /api/v1/admin/audit (docs/admin.md) with the session's Bearer token. What a
// change held before and after is shown as text, never as markup.
import { api as callApi, el, t } from "/static/motcua.js";
import { TOKEN, adminCentre, adminLogin, administered, chooseCentre as pickCentre, endSession } from "./account.js";

const app = document.getElementById("app");
const data = JSON.parse(document.getElementById("admin-data").textContent);

const state = {
  token: sessionStorage.getItem(TOKEN),
  centre: null,
  refused: null,
  filters: { actor: "", kind: "configured", from: "", to: "" },
  rows: [],
  next: null, // the seq to ask before, for older rows
  zone: null,
  error: null,
  loaded: false,
};

function forget() {
  sessionStorage.removeItem(TOKEN);
  Object.assign(state, { token: null, centre: null, refused: null, rows: [], loaded: false });
}

function render() {
  let view;
  if (!state.token) view = loginView();
  else if (state.refused) view = [header(), el("main", { class: "a-main" }, el("p", { class: "a-refused", role: "alert", "data-testid": "refused" }, state.refused))];
  else view = [header(), el("main", { class: "a-main" }, filters(), results())];
  app.replaceChildren(...[view].flat().filter(Boolean));
  app.dataset.view = !state.token ? "login" : state.refused ? "refused" : "audit";
}

function loginView() {
  return adminLogin(t("audit_title"), async (token) => {
    state.token = token;
    await load();
  });
}

function header() {
  const centres = administered(state.centre);
  return el("header", { class: "a-head" },
    el("div", { class: "a-centre" }, `${t("audit_title")} · ${state.centre?.centre.name || ""}`),
    centres.length > 1
      ? el("select", { "aria-label": t("centre"), "data-testid": "centre", onchange: (e) => chooseCentre(e.target.value) },
        centres.map((c) => el("option", { value: c.code, selected: c.code === state.centre.centre.code }, c.name)))
      : null,
    el("a", { class: "a-link", href: "/admin/" }, t("back")),
    el("button", { type: "button", class: "a-link", onclick: logout }, t("logout")));
}

function filters() {
  const f = state.filters;
  const form = el("form", { class: "a-filters", "data-testid": "filters" },
    el("label", {}, t("who"), el("input", { name: "actor", value: f.actor, autocomplete: "off" })),
    el("label", {}, t("what"), el("select", { name: "kind" },
      el("option", { value: "", selected: f.kind === "" }, t("kind_any")),
      data.audit_kinds.map((k) => el("option", { value: k, selected: f.kind === k }, t(`kind_${k}`))))),
    el("label", {}, t("from"), el("input", { type: "date", name: "from", value: f.from })),
    el("label", {}, t("to"), el("input", { type: "date", name: "to", value: f.to })),
    el("button", { type: "submit", class: "a-primary" }, t("show")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    for (const name of ["actor", "kind", "from", "to"]) state.filters[name] = form.elements[name].value.trim();
    show(false);
  });
  return form;
}

// "2026-12-07T15:10:03+07:00" (the centre's time, from the server) as 07/12/2026 15:10:03.
function when(iso) {
  const [day, time] = iso.split("T");
  const [y, m, d] = day.split("-");
  return `${d}/${m}/${y} ${time.slice(0, 8)}`;
}

function shown(value) {
  if (value === null || value === undefined) return "";
  return JSON.stringify(value, null, 1);
}

// An entry key by key, one line each; a key whose value differs from `other` is marked.
function entryLines(value, other) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return el("pre", {}, shown(value));
  const same = (k) => other && JSON.stringify(other[k]) === JSON.stringify(value[k]);
  return el("pre", {}, Object.keys(value).sort().map((k) =>
    el("span", { class: other && !same(k) ? "a-changed" : null, "data-key": k }, `${k}: ${JSON.stringify(value[k])}\n`)));
}

function words(family, name) {
  const key = `${family}_${name}`;
  const text = t(key);
  return text === key ? name : text;
}

function kindName(kind) {
  const key = `kind_${kind}`;
  const text = t(key);
  return text === key ? kind : text;
}

function results() {
  const out = [];
  if (state.error) out.push(el("p", { class: "a-error a-general", role: "alert", "data-testid": "error" }, state.error));
  if (state.zone) out.push(el("p", { class: "a-note" }, t("times_in", { zone: state.zone })));
  if (!state.loaded) out.push(el("p", { class: "a-note" }, t("loading")));
  else if (!state.rows.length) out.push(el("p", { class: "a-note", "data-testid": "empty" }, t("no_rows")));
  else {
    out.push(el("table", { class: "a-table a-audit", "data-testid": "audit" },
      el("thead", {}, el("tr", {}, ["col_when", "col_who", "col_what", "col_entry", "col_before", "col_after"].map((h) => el("th", {}, t(h))))),
      el("tbody", {}, state.rows.map((r) => {
        const d = r.details || {};
        const configured = r.kind === "configured" && "entity" in d;
        const op = `${words("op", d.op)}${d.service ? ` ${d.service}` : ""}`; // an agency's new name
        const entry = configured ? `${words("entity", d.entity)} ${d.key ?? ""} (${op})` : "";
        const rest = configured ? d.after : d;
        return el("tr", { "data-seq": r.seq },
          el("td", { class: "a-when" }, when(r.at)),
          el("td", {}, r.who),
          el("td", {}, kindName(r.kind)),
          el("td", {}, entry),
          el("td", {}, configured && d.before ? entryLines(d.before, d.after || {}) : ""),
          el("td", {}, rest ? entryLines(rest, configured ? d.before : null) : ""));
      }))));
    if (state.next !== null) {
      out.push(el("button", { type: "button", class: "a-plain a-more", "data-testid": "more", onclick: () => show(true) }, t("more")));
    }
  }
  return out;
}

async function show(more) {
  const f = state.filters;
  const q = new URLSearchParams({ limit: "50" });
  for (const [name, value] of Object.entries(f)) if (value) q.set(name, value);
  if (more && state.next !== null) q.set("before", String(state.next));
  if (state.centre?.centre.code) q.set("centre", state.centre.centre.code);
  state.error = null;
  try {
    const { status, answer } = await callApi("GET", `/api/v1/admin/audit?${q}`, { token: state.token });
    if (status === 401) forget();
    else if (status === 403) state.refused = t("refused");
    else if (status !== 200) state.error = answer.error?.message || t("server_trouble");
    else {
      state.rows = more ? [...state.rows, ...answer.rows] : answer.rows;
      state.next = answer.next;
      state.zone = answer.timezone;
    }
  } catch {
    state.error = t("server_unreachable");
  }
  state.loaded = true;
  render();
}

async function load() {
  const got = await adminCentre(state.token);
  if (got.moveTo) return chooseCentre(got.moveTo);
  if (got.forget) forget();
  state.refused = got.refused || null;
  state.centre = got.centre || null;
  render();
  if (got.centre) await show(false);
}

function chooseCentre(code) {
  pickCentre(code);
  Object.assign(state, { centre: null, rows: [], next: null, loaded: false });
  render();
  load();
}

async function logout() {
  const token = state.token;
  forget();
  render();
  await endSession(token);
}

render();
if (state.token) load();
