"""The engine in-process on a temporary SQLite file: the fast tier's centre.

No server, no sockets: operations run as the doors run them (same engine calls, same
actors), and every committed change is kept so a test can batch it for any audience
exactly as the hub does (core.roles.batch_for)."""

from __future__ import annotations

import shutil
from pathlib import Path

from core import auth, views
from core.engine import Actor, QueueEngine
from core.provisioning import provision
from core.roles import Audience, batch_for, public_event
from core.store import Store
from harness.centre import AGENT, CENTRE, KIOSK


def provisioned_store(path: Path) -> Path:
    """A store file migrated and provisioned with tests/centre.toml, to copy per test
    (migrating and hashing the clerks' passwords take most of a second)."""
    store = Store(f"sqlite:///{path}")
    store.migrate()
    provision(store, CENTRE)
    store.dispose()
    return path


class LocalCentre:
    """A copy of ``template`` (see provisioned_store) at ``path``, or the store at ``url``
    (migrated and provisioned: a PostgreSQL database); ``changes`` holds every change
    committed since, in seq order."""

    def __init__(
        self,
        template: Path | None,
        path: Path | None,
        rating_window_s: int = 600,
        no_show_after_s: float = 0,
        url: str | None = None,
    ):
        if url is None:
            shutil.copyfile(template, path)
            url = f"sqlite:///{path}"
        self.store = Store(url)
        self.changes: list[dict] = []
        self.store.on_commit = self.changes.extend
        self.engine = QueueEngine(
            self.store, rating_window_s=rating_window_s, no_show_after_s=no_show_after_s
        )
        self.centre_id = self.read(lambda conn: auth.device_for_token(conn, KIOSK).centre_id)
        self.agent_id = self.read(lambda conn: auth.device_for_token(conn, AGENT).id)

    def read(self, fn):
        return self.store.read(fn)

    def view(self, view, *args):
        """``view(conn, *args)``, a core.views read, as the doors read it."""
        return self.store.read(lambda conn: view(conn, *args))

    def close(self) -> None:
        self.store.dispose()

    # -- who acts ------------------------------------------------------------------------
    def device(self, token: str) -> Actor:
        device = self.read(lambda conn: auth.device_for_token(conn, token))
        return Actor("device", device.id, device.centre_id, device.kind, device.counter_id)

    def clerk(self, username: str, counter_number: int) -> Actor:
        """A clerk taking a counter, as the counter door admits one (opening it)."""

        def find(conn):
            principal = auth.principal_for_username(conn, username)
            return principal, *auth.take_counter(conn, principal, counter_number)

        principal, role, counter = self.read(find)
        actor = Actor.staff(principal, role, counter)
        self.engine.open_counter(actor)
        return actor

    def manager(self, username: str = "quanly1") -> Actor:
        """A manager acting from the monitor, as the /manage door admits one."""

        def find(conn):
            principal = auth.principal_for_username(conn, username)
            centre_id, role = auth.staff_centre_id(conn, principal, None, "monitor.view")
            return principal, role, centre_id

        principal, role, centre_id = self.read(find)
        return Actor("staff", principal.staff_id, centre_id, role, None, principal.full_name)

    def counter_id(self, number: int) -> int:
        return self.read(lambda conn: auth.counter_by_number(conn, self.centre_id, number).id)

    # -- what devices see ----------------------------------------------------------------
    def audience(self, role: str, counter_ids=None) -> Audience:
        """The audience a door would put a device of ``role`` bound to ``counter_ids`` in."""
        if role in ("kiosk", "manager"):
            return Audience(role, self.centre_id)
        ids = frozenset(counter_ids or ())
        codes = self.read(lambda conn: views.service_codes(conn, ids)) if ids else None
        if role == "agent":
            return Audience(role, self.centre_id, ids or None, codes, device=self.agent_id)
        if role == "display":
            return Audience(role, self.centre_id, ids or None, codes)
        if role == "counter":
            return Audience(role, self.centre_id, ids, codes)
        return Audience(role, self.centre_id, ids, frozenset())

    def snapshot(self, role: str, counter_ids=None) -> dict:
        v = self.view
        return {
            "kiosk": lambda: v(views.kiosk_snapshot, self.centre_id),
            "display": lambda: v(views.display_snapshot, self.centre_id, counter_ids),
            "agent": lambda: v(views.agent_snapshot, self.centre_id, counter_ids, self.agent_id),
            "counter": lambda: v(
                views.counter_snapshot, next(iter(counter_ids)), self.engine.no_show_after_s
            ),
            "rating": lambda: v(
                views.rating_snapshot, next(iter(counter_ids)), self.engine.rating_window
            ),
            "manager": lambda: v(views.monitor_snapshot, self.centre_id),
        }[role]()

    def batches(self, audience: Audience, after: int, sizes) -> list[dict]:
        """The batches the hub would send ``audience`` for the changes after ``after``,
        flushed in groups of ``sizes`` (an iterator of group sizes)."""
        pending = [
            {**c, "event": public_event(c["change"], c["seq"])}
            for c in self.changes
            if c["seq"] > after
        ]
        out, last = [], after
        while pending:
            n = next(sizes)
            group, pending = pending[:n], pending[n:]
            batch = batch_for(audience, group, last)
            if batch is not None:
                out.append(batch)
                last = batch["seq"]
        return out
