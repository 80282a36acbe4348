"""What a role folder brings to the server, in one object: server.py registers every
folder's ``bundle`` in one loop, so adding a role is a folder (with its delivery rule in
core/roles.py) and one line there."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint


@dataclass(frozen=True)
class RoleBundle:
    """blueprint: the folder's pages and HTTP routes (templates and static files beside),
    or None (a role with no page: the hardware agent's).
    doors: its Socket.IO namespaces, one Door class per role of core/roles.py.
    pages: for device roles, the page a device of that kind opens with its token
    (``kind -> (path, label)``), linked from the demo's start page."""

    blueprint: Blueprint | None
    doors: tuple[type, ...]
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
