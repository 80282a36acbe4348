// A ticket's status page, live: follows /ticket with the ticket's key (docs/protocol.md
// 8.6). Each batch says something about this ticket or its queue moved; the page then
// asks for its snapshot again (at most every 2 s), which has the exact position.
import { follow, minutes, t } from "/static/motcua.js";

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
  $("service").textContent = tk.service.name;
  document.getElementById("position").hidden = s.ahead === null;
  if (s.ahead !== null) {
    $("ahead").textContent = s.ahead;
    $("wait").textContent = t("minutes", { m: minutes(s.estimated_wait_s) });
  }
  $("updated").textContent = t("updated", { time: s.checked_at.slice(11, 16) });
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
