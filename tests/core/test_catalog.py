"""Every word the pages show exists in both languages."""

from __future__ import annotations

import importlib.util
import re

from babel.messages.pofile import read_po

from harness.process import ROOT


def _messages_script():
    spec = importlib.util.spec_from_file_location("messages", ROOT / "scripts" / "messages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_page_word_has_its_english():
    script = _messages_script()
    with script.PO.open("rb") as f:
        catalog = read_po(f, locale="en")
    english = {m.id: m.string for m in catalog if m.id}
    used = script.extracted()
    assert used, "no words extracted: the extraction itself is broken"
    missing = [m for m in used if not english.get(m)]
    assert not missing, f"without English (run `make messages`, then translate): {missing}"
    stale = sorted(set(english) - set(used))
    assert not stale, f"no longer used (run `make messages`): {stale}"


def test_placeholders_survive_translation():
    script = _messages_script()
    with script.PO.open("rb") as f:
        catalog = read_po(f, locale="en")
    for m in catalog:
        if m.id:
            assert set(re.findall(r"\{\w+\}", m.id)) == set(re.findall(r"\{\w+\}", m.string)), m.id
