#!/usr/bin/env python3
"""Extract the pages' words and bring translations/en.po in line (`make messages`).

Vietnamese is the source language (msgids); en.po holds the English. New msgids arrive
with an empty msgstr for a translator; msgids no longer used are dropped. The test
tests/core/test_catalog.py fails while any msgid lacks its English.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "translations" / "en.po"
SKIP = {".venv", "test-artifacts", "instance", "node_modules", ".git", "tests", "bench"}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
KEYWORDS = {"_": None, "gettext": None, "N_": None, "lazy_gettext": None}


def extracted() -> list[str]:
    ids: set[str] = set()

    def wanted(path: str) -> bool:
        name = Path(path).name
        return name not in SKIP and not name.startswith(".venv-")  # one venv per Python

    for _file, _line, message, _comments, _ctx in extract_from_dir(
        ROOT, METHODS, keywords=KEYWORDS, directory_filter=wanted
    ):
        if isinstance(message, str) and message:
            ids.add(message)
    return sorted(ids)


def current() -> Catalog:
    if PO.exists():
        with PO.open("rb") as f:
            return read_po(f, locale="en")
    return Catalog(locale="en")


def main() -> int:
    old = current()
    # A fixed header, so that the file changes only when the words do.
    new = Catalog(
        locale="en",
        project="motcua",
        version="1",
        header_comment="# motcua: the English of the pages' words (the source is Vietnamese).",
        creation_date=EPOCH,
        revision_date=EPOCH,
        fuzzy=False,
    )
    for msgid in extracted():
        known = old.get(msgid)
        new.add(msgid, known.string if known else "")
    with PO.open("wb") as f:
        write_po(f, new, width=100, omit_header=False, sort_output=True, no_location=True)
    missing = [m.id for m in new if m.id and not m.string]
    print(f"{PO.relative_to(ROOT)}: {len(new)} messages, {len(missing)} without English")
    return 0


if __name__ == "__main__":
    sys.exit(main())
