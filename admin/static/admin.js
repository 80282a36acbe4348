// The centre's administration (/admin/): log in as an admin, then change the centre's
// settings, services, counters, staff and devices. Every entry comes from and goes to the
// admin API (/api/v1/admin/…, docs/admin.md) with the session's Bearer token; a refusal
// names its field and is shown beside it; a new password or token is shown once.
import { api as callApi, currentLang, el, t } from "/static/motcua.js";
import { TOKEN, adminCentre, adminLogin, administered, chooseCentre as pickCentre, endSession } from "./account.js";

const app = document.getElementById("app");
const data = JSON.parse(document.getElementById("admin-data").textContent);
const TABS = ["settings", "agencies", "services", "counters", "staff", "devices", "sessions"];
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const PAGES = { kiosk: "/kiosk/", display: "/display/", rating: "/rating/" };
const KEYS = { agencies: "code", services: "code", counters: "number", staff: "username", devices: "name" };

const state = {
  token: sessionStorage.getItem(TOKEN),
  centre: null, // GET /api/v1/centre
  config: null, // GET /api/v1/admin/config
  sessions: null, // GET /api/v1/admin/sessions, on the sessions tab
  refused: null, // the API's words when this account may not administer the centre
  tab: "services",
  editing: null, // {table, key (null: a new entry)}
  errors: {}, // field -> the API's refusal
  error: null, // a refusal naming no field of the form
  message: null,
  secret: null, // {title, value, link}: a new password or token, shown once
  draft: null, // what the form held when it was sent, shown again while refused
  busy: false,
};

function api(method, path, body) {
  const code = state.centre?.centre.code;
  const sep = path.includes("?") ? "&" : "?";
  const where = code ? `${sep}centre=${encodeURIComponent(code)}` : "";
  return callApi(method, path + where, { token: state.token, body });
}

function forget() {
  sessionStorage.removeItem(TOKEN);
  Object.assign(state, { token: null, centre: null, config: null, refused: null, secret: null });
}

// ---- the forms' fields ------------------------------------------------------------------
// type: text, area, int, float, bool, select (options), checks (options), lines, hours.
// A service's agency: the active ones, and the one it has (even retired), by code.
const agencies = (current) => state.config.agencies.filter((a) => a.active !== false || a.code === current)
  .map((a) => [a.code, `${a.code} · ${a.name}`]);
const agencyName = (code) => {
  const a = state.config.agencies.find((x) => x.code === code);
  return a ? (currentLang() === "en" && a.name_en) || a.name : code;
};
const services = () => state.config.services.filter((s) => s.active !== false)
  .map((s) => [s.code, `${s.code} · ${s.name}`]);
const counters = () => state.config.counters.filter((c) => c.active !== false)
  .map((c) => [c.number, c.name || String(c.number)]);
const kiosks = () => state.config.devices.filter((d) => d.kind === "kiosk" && d.active !== false).map((d) => [d.name, d.name]);
const priorityGroups = () => data.priorities.map((p) => [p.code, p[currentLang()] || p.vi]);
const roleName = (role) => data.roles[role]?.[currentLang()] || role;

const FORMS = {
  settings: [
    { name: "name", type: "text" }, { name: "name_en", type: "text" },
    { name: "timezone", type: "text" },
    { name: "notice", type: "area" }, { name: "ticket_footer", type: "area" },
    { name: "board_layout", type: "select", options: () => data.layouts.map((v) => [v, t(`layout_${v}`)]) },
    { name: "announce_form", type: "select", options: () => data.announce_forms.map((v) => [v, t(`form_${v}`)]) },
    { name: "announce_repeats", type: "int" },
    { name: "target_wait_s", type: "int" },
    { name: "rating_timeout_s", type: "int" },
    { name: "rating_reasons", type: "lines" },
    { name: "notify_ahead", type: "int" },
    { name: "slot_minutes", type: "select", options: () => data.slot_minutes.map((v) => [v, String(v)]) },
    { name: "booking_days", type: "int" },
    { name: "appointment_share", type: "float" },
    { name: "hours", type: "hours" },
    { name: "closed_days", type: "lines" },
  ],
  agencies: [
    { name: "code", type: "text", key: true }, { name: "name", type: "text" },
    { name: "name_en", type: "text" }, { name: "active", type: "bool" },
  ],
  services: [
    { name: "code", type: "text", key: true }, { name: "prefix", type: "text" },
    { name: "name", type: "text" }, { name: "name_en", type: "text" },
    { name: "agency", type: "select", options: agencies, note: "f_agency_note" },
    { name: "start", type: "int" }, { name: "service_minutes", type: "int" },
    { name: "appointments", type: "int" }, { name: "active", type: "bool" },
    // Its own hours (none: the centre's) and the priority groups it accepts (none: all).
    { name: "hours", type: "hours", label: "f_service_hours", hoursNote: "service_hours_note" },
    { name: "priorities", type: "checks", options: priorityGroups, note: "f_priorities_all" },
  ],
  counters: [
    { name: "number", type: "int", key: true }, { name: "name", type: "text" },
    { name: "services", type: "checks", options: services }, { name: "active", type: "bool" },
  ],
  staff: [
    { name: "username", type: "text", key: true }, { name: "full_name", type: "text", own: true },
    { name: "role", type: "select", options: () => Object.keys(data.roles).map((r) => [r, roleName(r)]) },
    { name: "counters", type: "checks", options: counters, note: "f_counters_any" },
  ],
  devices: [
    { name: "name", type: "text", key: true },
    { name: "kind", type: "select", options: () => data.kinds.map((k) => [k, t(`kind_${k}`)]) },
    { name: "counter", type: "select", options: () => [["", t("none")], ...counters()] },
    { name: "counters", type: "checks", options: counters, label: "f_device_counters" },
    { name: "kiosks", type: "checks", options: kiosks },
  ],
};
const NUMBERS = new Set(["number", "counter", "slot_minutes"]); // selects read back as numbers

function input(f, value) {
  const name = f.name;
  const common = { name, id: `f-${name}`, "aria-describedby": `e-${name}` };
  if (f.type === "area") return el("textarea", { ...common, rows: 2 }, value ?? "");
  if (f.type === "lines") return el("textarea", { ...common, rows: 3 }, (value || []).join("\n"));
  if (f.type === "bool") return el("input", { ...common, type: "checkbox", checked: value !== false });
  if (f.type === "select") {
    const options = f.options(value);
    return el("select", common, [
      ...(options.some(([v]) => String(v) === "") || ["role", "kind", "agency"].includes(f.name)
        ? [] : [el("option", { value: "" }, t("default"))]),
      ...options.map(([v, label]) => el("option", { value: v, selected: String(v) === String(value ?? "") }, label)),
    ]);
  }
  if (f.type === "checks") {
    const chosen = new Set((value || []).map(String));
    return el("div", { class: "a-checks", id: common.id, "data-field": name },
      f.options().map(([v, label]) => el("label", {},
        el("input", { type: "checkbox", name, value: v, checked: chosen.has(String(v)) }), label)));
  }
  if (f.type === "hours") {
    return el("div", { class: "a-days", id: common.id, "data-field": name },
      DAYS.map((d) => el("label", {}, t(`day_${d}`),
        el("input", { name: `hours-${d}`, value: (value?.[d] || []).join(", ") }))));
  }
  // Numbers as text: what is typed goes to the server as it is, which names a wrong one.
  return el("input", { ...common, inputmode: f.type === "text" ? null : "decimal", value: value ?? "" });
}

// What the form says, as the API's entry: an empty field is left out (its default); a
// number that is not one goes as typed, so that the server's refusal names it.
function read(form, f) {
  const node = form.elements[f.name];
  if (f.type === "bool") return node.checked;
  if (f.type === "checks") {
    const values = [...form.querySelectorAll(`input[name="${f.name}"]:checked`)].map((i) => i.value);
    return ["services", "kiosks", "priorities"].includes(f.name) ? values : values.map(Number);
  }
  if (f.type === "hours") {
    const hours = {};
    for (const d of DAYS) {
      const text = form.elements[`hours-${d}`].value.trim();
      if (text) hours[d] = text.split(",").map((s) => s.trim()).filter(Boolean);
    }
    return Object.keys(hours).length ? hours : undefined;
  }
  const text = node.value.trim();
  if (text === "") return undefined;
  if (f.type === "lines") return text.split("\n").map((s) => s.trim()).filter(Boolean);
  if (f.type === "int" || (f.type === "select" && NUMBERS.has(f.name))) {
    return /^-?\d+$/.test(text) ? Number(text) : text;
  }
  if (f.type === "float") {
    const n = text.replace(",", ".");
    return /^-?\d+(\.\d+)?$/.test(n) ? Number(n) : text;
  }
  return text;
}

function field(f, value, editing) {
  const label = t(f.label || `f_${f.name}`);
  const error = state.errors[f.name];
  const node = input(f, value);
  if (f.key && editing.key !== null) node.setAttribute("readonly", "");
  const group = f.type === "checks" || f.type === "hours"; // several inputs: a fieldset
  return el(group ? "fieldset" : "div", { class: `a-field a-${f.type}${error ? " a-bad" : ""}`, "data-field-box": f.name },
    group ? el("legend", {}, label) : el("label", { for: `f-${f.name}` }, label),
    node,
    f.note ? el("small", {}, t(f.note)) : null,
    f.type === "hours" ? el("small", {}, t(f.hoursNote || "hours_note")) : null,
    f.type === "lines" ? el("small", {}, t("lines_note")) : null,
    el("p", { class: "a-error", id: `e-${f.name}`, "data-error-for": f.name }, error || ""));
}

// ---- screens ----------------------------------------------------------------------------
function render() {
  let view;
  if (!state.token) view = loginView();
  else if (state.refused) view = [header(), el("main", { class: "a-main" }, refusedView())];
  else if (!state.config) view = [header(), el("p", { class: "a-note" }, t("loading"))];
  else view = [header(), el("main", { class: "a-main" }, tabs(), notices(), panel())];
  app.replaceChildren(...[view].flat().filter(Boolean));
  app.dataset.view = !state.token ? "login" : state.refused ? "refused" : "admin";
}

function loginView() {
  return adminLogin(t("title"), async (token) => {
    state.token = token;
    await load();
  });
}

function refusedView() {
  return el("p", { class: "a-refused", role: "alert", "data-testid": "refused" }, state.refused);
}

function header() {
  const centres = administered(state.centre);
  return el("header", { class: "a-head" },
    el("div", { class: "a-centre" }, `${t("title")} · ${state.centre?.centre.name || ""}`),
    centres.length > 1
      ? el("select", { "aria-label": t("centre"), "data-testid": "centre", onchange: (e) => chooseCentre(e.target.value) },
        centres.map((c) => el("option", { value: c.code, selected: c.code === state.centre.centre.code }, c.name)))
      : null,
    el("a", { class: "a-link", href: "/admin/audit" }, t("tab_audit")),
    el("button", { type: "button", class: "a-link", onclick: logout }, t("logout")));
}

function tabs() {
  return el("nav", { class: "a-tabs", role: "tablist" },
    TABS.map((tab) => el("button", {
      type: "button", role: "tab", "aria-selected": String(state.tab === tab), "data-tab": tab,
      onclick: () => { Object.assign(state, { tab, editing: null, draft: null, errors: {}, error: null, message: null, sessions: null }); render(); if (tab === "sessions") reload(); },
    }, t(`tab_${tab}`))),
    el("button", { type: "button", class: "a-plain a-export", onclick: exportFile }, t("export")));
}

function notices() {
  const out = [];
  if (state.secret) {
    out.push(el("section", { class: "a-secret", role: "alert", "data-testid": "secret" },
      el("h2", {}, state.secret.title),
      el("p", { class: "a-secret-value", "data-testid": "secret-value" }, state.secret.value),
      state.secret.link ? el("p", {}, `${t("device_link")}: `, el("code", { "data-testid": "secret-link" }, state.secret.link)) : null,
      el("p", {}, t("secret_once")),
      el("button", { type: "button", class: "a-primary", onclick: () => { state.secret = null; render(); } }, t("secret_done"))));
  }
  if (state.error) out.push(el("p", { class: "a-error a-general", role: "alert", "data-testid": "error" }, state.error));
  if (state.message) out.push(el("p", { class: "a-ok", role: "status", "data-testid": "message" }, state.message));
  return out;
}

function panel() {
  if (state.tab === "settings") return settingsView();
  if (state.tab === "sessions") return sessionsView();
  return el("section", { class: "a-panel", "data-testid": `panel-${state.tab}` },
    state.editing ? editor() : el("button", { type: "button", class: "a-primary", "data-testid": "add", onclick: () => edit(null) }, t("add")),
    listView());
}

function settingsView() {
  const entry = state.config.centre;
  const shown = state.draft || entry;
  const form = el("form", { class: "a-form a-settings", "data-testid": "form", novalidate: true },
    el("p", { class: "a-key" }, `${t("f_code")}: ${entry.code}`),
    FORMS.settings.map((f) => field(f, shown[f.name], { key: entry.code })),
    el("div", { class: "a-buttons" }, el("button", { type: "submit", class: "a-primary", disabled: state.busy }, t("save"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { ...entry };
    for (const f of FORMS.settings) {
      const value = read(form, f);
      if (value === undefined) delete body[f.name];
      else body[f.name] = value;
    }
    state.draft = body;
    save("PUT", "/api/v1/admin/centre", body);
  });
  return el("section", { class: "a-panel", "data-testid": "panel-settings" }, form);
}

function entryOf(table, key) {
  return state.config[table].find((e) => String(e[KEYS[table]]) === String(key));
}

function editor() {
  const { table, key } = state.editing;
  const entry = key === null ? { active: true } : entryOf(table, key) || {};
  const lent = table === "staff" && entry.home;
  const fields = FORMS[table].filter((f) => !(lent && f.own));
  const form = el("form", { class: "a-form", "data-testid": "form", novalidate: true },
    el("h2", {}, key === null ? t("add") : `${t("edit")}: ${key}`),
    lent ? el("p", { class: "a-note" }, t("lent_from", { home: entry.home })) : null,
    el("div", { class: "a-grid" }, fields.map((f) => field(f, (state.draft || entry)[f.name], state.editing))),
    table === "staff" && key !== null && !lent && entry.active !== false ? photoBox(entry) : null,
    el("div", { class: "a-buttons" },
      el("button", { type: "submit", class: "a-primary", disabled: state.busy }, t("save")),
      el("button", { type: "button", class: "a-plain", onclick: () => { Object.assign(state, { editing: null, draft: null, errors: {}, error: null }); render(); } }, t("cancel"))));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { ...entry };
    delete body.has_photo;
    for (const f of fields) {
      const value = read(form, f);
      if (value === undefined || (f.type === "checks" && value.length === 0 && !["services"].includes(f.name))) delete body[f.name];
      else body[f.name] = value;
    }
    if (body.active === true || table === "staff" || table === "devices") delete body.active;
    // An account brought back gets a new password (shown once), not its old one.
    const revived = table === "staff" && entry.active === false && !body.password;
    if (revived) body.password = randomText(9);
    state.draft = body;
    const name = body[KEYS[table]] ?? "";
    if (name === "") { // the key is the address: the server cannot be asked without it
      Object.assign(state, { errors: { [KEYS[table]]: t("required", { field: KEYS[table] }) }, message: null });
      render();
      return;
    }
    const address = `/api/v1/admin/${table}/${encodeURIComponent(String(name))}`;
    save("PUT", address, body, (answer) => {
      const password = answer.password || (revived ? body.password : null);
      if (password) state.secret = { title: t("secret_password", { name }), value: password };
      if (answer.token) state.secret = tokenSecret(body, answer.token);
    });
  });
  return form;
}

function tokenSecret(device, token) {
  const page = PAGES[device.kind];
  const link = page ? `${location.origin}${page}?token=${encodeURIComponent(token)}` : null;
  return { title: t("secret_token", { name: device.name }), value: token, link };
}

function photoBox(entry) {
  const file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", "data-testid": "photo-file" });
  file.addEventListener("change", () => file.files[0] && uploadPhoto(entry.username, file.files[0]));
  return el("div", { class: "a-photo", "data-field-box": "photo" },
    el("span", { class: "a-label" }, t("photo")),
    el("span", { "data-testid": "photo-state" }, entry.has_photo ? "✓" : t("photo_none")),
    el("label", { class: "a-plain" }, t("photo_choose"), file),
    entry.has_photo ? el("button", { type: "button", class: "a-plain", onclick: () => removePhoto(entry.username) }, t("photo_remove")) : null,
    el("small", {}, t("photo_note")),
    el("p", { class: "a-error", "data-error-for": "photo" }, state.errors.photo || ""));
}

// A phone's photo is several megabytes: made a 720-pixel JPEG here first (the server
// keeps 360 pixels), so that it fits the server's body limit.
async function shrink(blob) {
  try {
    const bitmap = await createImageBitmap(blob);
    const scale = Math.min(1, 720 / Math.max(bitmap.width, bitmap.height));
    const canvas = el("canvas", { width: Math.round(bitmap.width * scale), height: Math.round(bitmap.height * scale) });
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve) => canvas.toBlob((b) => resolve(b || blob), "image/jpeg", 0.9));
  } catch {
    return blob; // not a picture the browser reads: the server says so
  }
}

async function uploadPhoto(username, file) {
  const body = await shrink(file);
  const lang = currentLang() === "en" ? "&lang=en" : "";
  const code = encodeURIComponent(state.centre.centre.code);
  try {
    const response = await fetch(`/api/v1/admin/staff/${encodeURIComponent(username)}/photo?centre=${code}${lang}`, {
      method: "PUT", headers: { Authorization: `Bearer ${state.token}`, "Content-Type": body.type || file.type }, body,
    });
    const answer = await response.json().catch(() => ({ error: { message: t("server_trouble") } }));
    done(response.status, answer, () => { state.message = t("photo_saved"); }, true);
  } catch {
    state.error = t("server_unreachable");
  }
  await reload();
}

async function removePhoto(username) {
  const { status, answer } = await api("DELETE", `/api/v1/admin/staff/${encodeURIComponent(username)}/photo`);
  done(status, answer, null, true);
  await reload();
}

// ---- the lists ----------------------------------------------------------------------------
function button(label, onclick, extra = {}) {
  return el("button", { type: "button", class: "a-small", onclick, ...extra }, label);
}

function row(table, key, cells, actions) {
  // A retired device or account: only brought back (its form, saved).
  const edit_ = cells.retired
    ? button(t("reactivate"), () => edit(key), { "data-action": "reactivate" })
    : button(t("edit"), () => edit(key), { "data-action": "edit" });
  return el("tr", { "data-entry": key, class: cells.inactive || cells.retired ? "a-inactive" : null },
    cells.values.map((v) => el("td", {}, v ?? "")),
    el("td", {}, el("div", { class: "a-actions" }, edit_, cells.retired ? null : actions)));
}

function table(headings, rows) {
  return el("table", { class: "a-table" },
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, t(h))), el("th", {}, t("col_actions")))),
    el("tbody", {}, rows));
}

// What a device is bound to: a tablet's counter, a board's or agent's counters, the
// kiosks an agent prints for.
function binding(d) {
  const counters = [d.counter, ...(d.counters || [])].filter((n) => n !== undefined && n !== null);
  return [counters.length ? `${t("f_number")} ${counters.join(", ")}` : null,
    (d.kiosks || []).length ? `${t("f_kiosks")}: ${d.kiosks.join(", ")}` : null].filter(Boolean).join(" · ");
}

const status = (e) => (e.active === false ? t("inactive") : t("active"));

function listView() {
  const c = state.config;
  if (state.tab === "agencies") {
    const count = (code) => c.services.filter((s) => s.agency === code && s.active !== false).length;
    return table(["f_code", "f_name", "f_name_en", "col_services", "f_active"],
      c.agencies.map((a) => row("agencies", a.code,
        { values: [a.code, a.name, a.name_en, count(a.code), status(a)], inactive: a.active === false },
        a.active === false ? null : button(t("retire_agency"), () => retire("agencies", a.code, "confirm_retire"), { "data-action": "retire" }))));
  }
  if (state.tab === "services") {
    return table(["f_code", "f_prefix", "f_name", "f_agency", "f_start", "f_active"],
      c.services.map((s) => row("services", s.code,
        { values: [s.code, s.prefix, s.name, agencyName(s.agency), s.start ?? 1, status(s)], inactive: s.active === false },
        s.active === false ? null : button(t("retire_service"), () => retire("services", s.code, "confirm_retire"), { "data-action": "retire" }))));
  }
  if (state.tab === "counters") {
    return table(["f_number", "f_name", "f_services", "f_active"],
      c.counters.map((ct) => row("counters", ct.number,
        { values: [ct.number, ct.name, ct.services.join(", "), status(ct)], inactive: ct.active === false },
        ct.active === false ? null : button(t("retire_counter"), () => retire("counters", ct.number, "confirm_retire"), { "data-action": "retire" }))));
  }
  if (state.tab === "staff") {
    return table(["f_username", "f_full_name", "f_role", "f_counters", "photo"],
      c.staff.map((st) => row("staff", st.username,
        { values: [st.username, st.home ? t("lent_from", { home: st.home }) : st.full_name,
          st.active === false ? t("inactive") : roleName(st.role), (st.counters || []).join(", "), st.has_photo ? "✓" : ""],
        retired: st.active === false },
        [st.home ? null : button(t("reset_password"), () => resetPassword(st), { "data-action": "reset" }),
          button(t("end_sessions"), () => endSessions(st), { "data-action": "end-sessions" }),
          button(t("deactivate"), () => retire("staff", st.username, "confirm_deactivate"), { "data-action": "retire" })])));
  }
  return table(["f_name", "f_kind", "col_binding"],
    c.devices.map((d) => row("devices", d.name,
      { values: [d.name, t(`kind_${d.kind}`), d.active === false ? t("inactive") : binding(d)], retired: d.active === false },
      [button(t("new_token"), () => newToken(d), { "data-action": "token" }),
        button(t("revoke"), () => retire("devices", d.name, "confirm_revoke"), { "data-action": "retire" })])));
}

// The open sessions of the centre's staff, each with a button that ends it (its pages are
// cut off at once and ask for the password again, which is unchanged).
const clock = (iso) => (iso ? `${iso.slice(11, 16)} ${iso.slice(8, 10)}/${iso.slice(5, 7)}` : "—");

function sessionsView() {
  const list = state.sessions || [];
  return el("section", { class: "a-panel", "data-testid": "panel-sessions" },
    el("p", { class: "a-note" }, t("sessions_note")),
    !state.sessions ? el("p", { class: "a-note" }, t("loading"))
      : !list.length ? el("p", { class: "a-note", "data-testid": "no-sessions" }, t("no_sessions"))
        : table(["f_username", "f_role", "col_since", "col_seen", "col_expires", "col_address"],
          list.map((x) => el("tr", { "data-session": x.id, "data-user": x.username },
            el("td", {}, `${x.username} · ${x.full_name}`),
            el("td", {}, x.role ? roleName(x.role) : ""),
            el("td", {}, clock(x.since)), el("td", {}, clock(x.seen)), el("td", {}, clock(x.expires)),
            el("td", {}, x.address || "—"),
            el("td", {}, x.current ? el("span", { class: "a-note" }, t("this_session"))
              : button(t("end_session"), () => endOne(x), { "data-action": "end-session" }))))));
}

async function endOne(x) {
  if (!confirm(t("confirm_end_session", { name: x.username }))) return;
  await save("DELETE", `/api/v1/admin/sessions/${x.id}`, null, (answer) => {
    state.message = t("sessions_ended", { n: answer.ended });
  });
}

// ---- actions ----------------------------------------------------------------------------
function edit(key) {
  Object.assign(state, { editing: { table: state.tab, key }, draft: null, errors: {}, error: null, message: null });
  render();
  document.querySelector("[data-testid=form] input:not([readonly]), [data-testid=form] select")?.focus();
}

// A password or token made here, from the browser's cryptographic generator; the server
// keeps only its hash (a password) and says it once, here.
function randomText(bytes) {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function resetPassword(st) {
  if (!confirm(t("confirm_reset", { name: st.username }))) return;
  const password = randomText(9);
  const body = { ...st, password };
  delete body.has_photo;
  await save("PUT", `/api/v1/admin/staff/${encodeURIComponent(st.username)}`, body, () => {
    state.secret = { title: t("secret_password", { name: st.username }), value: password };
  });
}

// Logs the account out everywhere (a lost phone, a shared computer): its pages close and
// ask for the password again, which is unchanged.
async function endSessions(st) {
  if (!confirm(t("confirm_end_sessions", { name: st.username }))) return;
  await save("POST", `/api/v1/admin/staff/${encodeURIComponent(st.username)}/end-sessions`, null, (answer) => {
    state.message = t("sessions_ended", { n: answer.ended });
  });
}

async function newToken(d) {
  if (!confirm(t("confirm_token", { name: d.name }))) return;
  const token = randomText(24);
  await save("PUT", `/api/v1/admin/devices/${encodeURIComponent(d.name)}`, { ...d, token }, () => {
    state.secret = tokenSecret(d, token);
  });
}

async function retire(table, key, question) {
  if (!confirm(t(question, { name: key }))) return;
  await save("DELETE", `/api/v1/admin/${table}/${encodeURIComponent(String(key))}`, null, () => {
    state.message = t("retired");
  });
}

function done(status, answer, then, keepEditing = false) {
  state.errors = {};
  state.error = null;
  if (status === 401) {
    forget();
    return false;
  }
  if (status >= 200 && status < 300) {
    state.message = answer.changes && answer.changes.length === 0 ? t("nothing_changed") : t("saved");
    if (!keepEditing) state.editing = null;
    state.draft = null;
    then?.(answer);
    return true;
  }
  const error = answer.error || {};
  const shown = document.querySelector(`[data-error-for="${CSS.escape(error.field || "")}"]`);
  if (error.field && shown) state.errors[error.field] = error.message;
  else state.error = error.message || t("server_trouble");
  state.message = null;
  return false;
}

async function save(method, path, body, then) {
  state.busy = true;
  state.message = null;
  try {
    const { status, answer } = await api(method, path, body);
    done(status, answer, then);
  } catch {
    state.error = t("server_unreachable");
  } finally {
    state.busy = false;
  }
  await reload();
}

async function reload() {
  if (!state.token) return render();
  const { status, answer } = await api("GET", "/api/v1/admin/config");
  if (status === 401) forget();
  else if (status === 200) state.config = answer;
  else state.refused = status === 403 ? t("refused") : answer.error?.message || t("server_trouble");
  if (status === 200 && state.tab === "sessions") {
    const listed = await api("GET", "/api/v1/admin/sessions");
    if (listed.status === 401) forget();
    state.sessions = listed.status === 200 ? listed.answer.sessions : null;
    if (listed.status !== 200 && listed.status !== 401) state.error = listed.answer.error?.message || t("server_trouble");
  }
  render();
  const bad = Object.keys(state.errors)[0];
  if (bad) document.getElementById(`f-${bad}`)?.focus();
}

async function load() {
  const got = await adminCentre(state.token);
  if (got.moveTo) return chooseCentre(got.moveTo);
  if (got.forget) forget();
  state.refused = got.refused || null;
  state.centre = got.centre || null;
  if (got.centre) await reload();
  else render();
}

function chooseCentre(code) {
  pickCentre(code);
  Object.assign(state, { centre: null, config: null, editing: null, draft: null, errors: {}, error: null, message: null, secret: null });
  render();
  load();
}

async function logout() {
  const token = state.token;
  forget();
  render();
  await endSession(token);
}

async function exportFile() {
  const lang = currentLang() === "en" ? "&lang=en" : "";
  const code = encodeURIComponent(state.centre.centre.code);
  try {
    const response = await fetch(`/api/v1/admin/export?centre=${code}${lang}`, { headers: { Authorization: `Bearer ${state.token}` } });
    if (!response.ok) throw new Error(String(response.status));
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1];
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: name || "motcua.toml" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch {
    state.error = t("server_trouble");
    render();
  }
}

render();
if (state.token) load();
