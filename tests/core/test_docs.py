"""docs/protocol.md prints the code's own tables: the lifecycle and the role table."""

from __future__ import annotations

from core import lifecycle, permissions, roles
from harness.process import ROOT

PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
SECURITY = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def test_protocol_doc_prints_the_lifecycle_table_of_the_code():
    assert lifecycle.table_markdown() in PROTOCOL


def test_protocol_doc_prints_the_role_table_of_the_code():
    assert roles.table_markdown() in PROTOCOL


def test_protocol_and_security_docs_print_the_permission_table_of_the_code():
    assert permissions.table_markdown() in PROTOCOL
    assert permissions.table_markdown() in SECURITY


def test_the_status_page_names_every_ticket_state_and_nothing_else():
    from core.lifecycle import TICKET_STATES
    from kiosk import STATUS_TEXT

    assert set(STATUS_TEXT) == set(TICKET_STATES)


def test_the_metrics_doc_names_every_metric_of_the_code_with_its_type():
    import re

    from gateway.metrics import Metrics, ServerState

    families = [*Metrics().registry.collect(), *ServerState(None, None, []).describe()]
    code = {
        (f.name + "_total" if f.type == "counter" else f.name, f.type)
        for f in families
        if f.name.startswith("motcua_")
    }
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(motcua_\w+)` \| (\w+) \|", doc, re.MULTILINE))
    assert rows == code
