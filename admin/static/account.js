// The admin pages' account (/admin/ and /admin/audit share one login): the centre it
// administers, read from GET /api/v1/centre, and logging out.
import { api as callApi, el, staffLogin, t } from "/static/motcua.js";

export const TOKEN = "motcua.admin.session";
export const CENTRE = "motcua.admin.centre"; // the centre chosen, for an account in several
const ADMINS = ["admin", "installation_admin"];

// The centres among the account's that it administers (for a picker).
export function administered(answer) {
  return (answer?.centres || []).filter((c) => ADMINS.includes(c.role));
}

// What the account may administer: {centre} (GET /api/v1/centre's answer), {refused: words},
// {forget: true} (the session is gone) or {moveTo: code}: an account administering another
// centre than its own opens there.
export async function adminCentre(token) {
  const code = sessionStorage.getItem(CENTRE);
  const query = code ? `?centre=${encodeURIComponent(code)}` : "";
  const { status, answer } = await callApi("GET", "/api/v1/centre" + query, { token });
  if (status === 401) return { forget: true };
  if (status !== 200) return { refused: status === 403 ? t("refused") : answer.error?.message || t("server_trouble") };
  const other = administered(answer)[0];
  if (!ADMINS.includes(answer.staff.role) && other && !code) return { moveTo: other.code };
  return { centre: answer };
}

export function chooseCentre(code) {
  sessionStorage.setItem(CENTRE, code);
}

export { endSession } from "/static/motcua.js";

// The login screen of an admin page titled ``title``: the session is kept (both pages
// share it) and ``loggedIn(token)`` called once the server accepts the account.
export function adminLogin(title, loggedIn) {
  const form = staffLogin("a", async (token) => {
    sessionStorage.setItem(TOKEN, token);
    await loggedIn(token);
  });
  return [el("header", { class: "a-head" }, el("div", { class: "a-centre" }, title)), form];
}
