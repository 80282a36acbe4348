"""The limits' memory backend (core/limits.py), the announcement cache's bounds, and
Flask's error log bounded: the numbers docs/security.md states."""

from __future__ import annotations

import logging

from core.limits import MemoryCounts
from display import voicepack


def test_a_bucket_gives_its_burst_then_its_rate():
    counts = MemoryCounts()
    now = 1000.0
    taken = [counts.bucket("k", 3.0, 30, now) == 0 for _ in range(40)]
    assert taken == [True] * 30 + [False] * 10
    assert abs(counts.bucket("k", 3.0, 30, now) - 1 / 3) < 1e-6  # the wait for the next
    assert counts.bucket("k", 3.0, 30, now + 1.0) == 0  # 3 a second
    assert [counts.bucket("k", 3.0, 30, now + 1.0) == 0 for _ in range(3)] == [True, True, False]
    assert counts.bucket("other", 3.0, 30, now) == 0  # another key has its own


def test_look_ups_are_ten_then_ten_an_hour():
    from kiosk import LOOKUP_BURST, LOOKUP_PER_HOUR

    counts = MemoryCounts()
    rate = LOOKUP_PER_HOUR / 3600
    allowed = sum(counts.bucket("a", rate, LOOKUP_BURST, 0.0) == 0 for _ in range(50))
    assert allowed == 10
    assert counts.bucket("a", rate, LOOKUP_BURST, 359.0) > 0
    assert counts.bucket("a", rate, LOOKUP_BURST, 361.0) == 0  # one every 6 minutes


def test_counters_and_the_table_are_bounded():
    counts = MemoryCounts(max_entries=100)
    for i in range(5000):
        counts.add(f"k{i}", 1, float(i), 60)
    assert len(counts) == 100
    assert counts.get("k4999")[0] == 1 and counts.get("k0") is None
    counts.add("k4999", -1, None, 60)
    assert counts.get("k4999") is None  # gone at zero


def test_the_announcement_cache_keeps_to_its_files_and_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(voicepack, "MAX_CACHE_BYTES", 100_000)
    for i in range(40):
        voicepack._cached(tmp_path, f"a{i}", lambda: b"x" * 10_000)
    files = list(tmp_path.glob("*.wav"))
    assert sum(f.stat().st_size for f in files) <= 100_000
    assert 0 < len(files) <= 10


def test_flask_errors_are_logged_at_a_bounded_rate(tmp_path, caplog, monkeypatch):
    import server

    monkeypatch.setenv("MOTCUA_INSTANCE_PATH", str(tmp_path / "instance"))

    app, _, _ = server.create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
            "SECRET_KEY": "test",
            "ASYNC_MODE": "threading",
        }
    )

    @app.get("/boom")
    def boom():
        raise RuntimeError("boom")

    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        codes = {client.get("/boom").status_code for _ in range(300)}
    assert codes == {500}
    lines = [r for r in caplog.records if "Exception on /boom" in r.getMessage()]
    assert 20 <= len(lines) <= 22, len(lines)
