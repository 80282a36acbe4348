"""Who among staff may do what, and where: one table, one check.

A staff account holds a role in each centre it works for (``staff_roles``); the
installation-wide admin holds its role in every centre of the installation (a province's
IT staff). Each role grants permissions; a door's event and an HTTP endpoint name the
permission they need, and :func:`require` answers with the table's words. Nothing else
tests roles. docs/protocol.md and docs/security.md print :func:`table_markdown` (a test
compares them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import QueueError

# permission -> (what it allows in Vietnamese, in English): refusals and the docs say it.
PERMISSIONS: dict[str, tuple[str, str]] = {
    "counter.operate": (
        "làm việc tại quầy (gọi số, phục vụ, chuyển, tạm dừng, đóng quầy)",
        "operate a counter (call, serve, transfer, pause, close)",
    ),
    "centre.read": (
        "xem lĩnh vực và quầy của trung tâm",
        "read the centre's services and counters",
    ),
    "own.figures": (
        "xem số liệu và đánh giá của chính mình",
        "read one's own figures and ratings",
    ),
    "monitor.view": (
        "xem màn hình giám sát trực tiếp",
        "view the live monitor",
    ),
    "monitor.act": (
        "xử lý số và xác nhận cảnh báo từ màn hình giám sát",
        "act on tickets and acknowledge alerts from the monitor",
    ),
    "reports.view": (
        "xem và xuất báo cáo",
        "view and export reports",
    ),
    "config.manage": (
        "cấu hình trung tâm: lĩnh vực, quầy, cán bộ, thiết bị",
        "configure the centre: services, counters, staff, devices",
    ),
}


@dataclass(frozen=True)
class StaffRole:
    name: str
    vi: str
    en: str
    grants: frozenset[str]
    everywhere: bool = False  # held in every centre of the installation


_CLERK = frozenset(("counter.operate", "centre.read", "own.figures"))
_MANAGER = _CLERK | {"monitor.view", "monitor.act", "reports.view"}
_ADMIN = _MANAGER | {"config.manage"}

STAFF_ROLES: dict[str, StaffRole] = {
    r.name: r
    for r in (
        StaffRole("clerk", "Cán bộ tiếp nhận", "Clerk", _CLERK),
        StaffRole("manager", "Lãnh đạo, quản lý trung tâm", "Manager", _MANAGER),
        StaffRole("admin", "Quản trị trung tâm", "Centre admin", _ADMIN),
        StaffRole(
            "installation_admin",
            "Quản trị toàn hệ thống (cả tỉnh)",
            "Installation admin (the whole province)",
            frozenset(PERMISSIONS),
            everywhere=True,
        ),
    )
}
assert all(p in PERMISSIONS for r in STAFF_ROLES.values() for p in r.grants)


@dataclass(frozen=True)
class Principal:
    """A logged-in staff account and the roles it holds: ``roles`` maps a centre id to the
    role held there; ``everywhere`` is a role held in every centre (or None)."""

    staff_id: int
    username: str
    full_name: str
    home_centre_id: int
    roles: Mapping[int, str] = field(default_factory=dict)
    everywhere: str | None = None

    def role_in(self, centre_id: int) -> str | None:
        return self.roles.get(centre_id) or self.everywhere

    def may(self, permission: str, centre_id: int) -> bool:
        role = self.role_in(centre_id)
        return role is not None and permission in STAFF_ROLES[role].grants

    def centre_ids(self) -> list[int] | None:
        """The centres it holds a role in (None: every centre)."""
        return None if self.everywhere else list(self.roles)


def require(principal: Principal, permission: str, centre_id: int) -> str:
    """The principal's role in the centre, or ``forbidden`` saying what was refused."""
    if not principal.may(permission, centre_id):
        raise QueueError("forbidden", "permission_denied", what=PERMISSIONS[permission])
    return principal.role_in(centre_id)


def principal_of(staff, grants) -> Principal:
    """A Principal from a staff row (id, username, full_name, centre_id) and its
    ``(centre_id, role)`` grants (centre_id None: every centre)."""
    roles: dict[int, str] = {}
    everywhere = None
    for centre_id, role in grants:
        if STAFF_ROLES[role].everywhere:
            everywhere = role
        else:
            roles[centre_id] = role
    return Principal(staff.id, staff.username, staff.full_name, staff.centre_id, roles, everywhere)


def table_markdown() -> str:
    """The role × permission table, as docs/protocol.md and docs/security.md print it."""
    names = list(STAFF_ROLES)
    lines = [
        "| permission | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for p, (_vi, en) in PERMISSIONS.items():
        marks = " | ".join("yes" if p in STAFF_ROLES[n].grants else "" for n in names)
        lines.append(f"| `{p}`: {en} | {marks} |")
    lines.append("")
    lines.append(
        "Roles are held per centre; "
        + ", ".join(f"`{r.name}` in every centre" for r in STAFF_ROLES.values() if r.everywhere)
        + "."
    )
    return "\n".join(lines) + "\n"
