"""A device acting for a counter's clerk on duty: a call keypad's press, passed on by the
hardware agent (``counter_action`` on /agent). A key is the clerk's action of the same
name (core/lifecycle.py CLERK_ACTIONS), run by the engine's own transaction code, so it
makes the same changes as the clerk's page; the audit's actor is the device and its
details name the clerk."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import views
from .acting import Actor
from .auth import counter_by_number, device_counter_ids
from .errors import QueueError
from .lifecycle import CLERK_ACTIONS
from .store import Tx

# What a call keypad may do at a counter (the /counter events of these names).
KEYPAD_ACTIONS = ("call_next", "recall", "start", "finish", "no_show", "pause", "resume")
KEYPAD_PAUSE_REASON = "Tạm dừng từ bàn phím gọi số"


def counter_action(
    engine,
    device: Actor,
    counter: int,
    action: str,
    reason: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Do ``action`` at counter number ``counter`` for its clerk on duty, as ``device``
    (core.engine.QueueEngine: ``engine``). Only counters the device is bound to (its
    provisioning entry); a closed counter, or one with no clerk, is refused; ticket
    actions act on the counter's current ticket."""
    if action not in KEYPAD_ACTIONS:
        raise QueueError("bad_request", "bad_value", field="action", why=", ".join(KEYPAD_ACTIONS))

    def op(tx: Tx) -> dict:
        conn = tx.conn
        tx.lock_centre(device.centre_id)
        row = counter_by_number(conn, device.centre_id, counter)
        if row.id not in device_counter_ids(conn, device.id):
            raise QueueError("forbidden", "device_counter_forbidden", number=counter)
        if row.status == "closed":
            raise QueueError("conflict", "counter_closed_for_device", number=counter)
        name = views.staff_name(conn, row.staff_id)
        if name is None:
            raise QueueError("conflict", "counter_no_clerk", number=counter)
        actor = replace(device, counter_id=row.id, clerk_id=row.staff_id, clerk_name=name)
        fields: dict[str, Any] = {}
        if CLERK_ACTIONS[action][0] == "ticket":
            current = views.current_ticket(conn, row.id)
            if current is None:
                raise QueueError("conflict", "counter_no_current", number=counter)
            fields["ticket_id"] = current.id
        if action == "pause":
            fields["reason"] = reason or KEYPAD_PAUSE_REASON
        return engine.in_transaction(action, tx, actor, request_id, **fields)

    # Remembered per device and action, like the clerk's own events; urgent as theirs.
    return engine.store.write(
        op,
        centre_id=device.centre_id,
        actor=device.key,
        request_id=f"counter_action:{action}:{request_id}" if request_id else None,
        urgent=True,
        operation="keypad",
    )
