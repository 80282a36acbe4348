"""Collections timed and long-lived objects frozen (gateway/collector.py), with the real
collector of this interpreter."""

from __future__ import annotations

import gc

import pytest

from gateway import collector


@pytest.fixture
def clean_gc():
    yield
    gc.unfreeze()


def test_every_collection_is_timed_and_a_long_one_logged(clean_gc, caplog):
    rec = collector.PauseRecorder(long_pause_s=0.0).install()
    try:
        gc.collect(0)
        gc.collect()
    finally:
        rec.uninstall()
    assert rec.count[0] >= 1 and rec.count[2] >= 1
    assert all(0 <= cpu <= d + 0.01 < 5 for _, _, d, cpu, _ in rec.pauses)
    assert "garbage collection of generation 2 paused the process" in caplog.text


def test_the_stats_file_gets_each_pause_once(clean_gc, tmp_path):
    rec = collector.PauseRecorder().install()
    path = tmp_path / "gc.txt"
    try:
        gc.collect()
        rec.write(str(path))
        gc.collect()
        rec.write(str(path))
    finally:
        rec.uninstall()
    lines = path.read_text().splitlines()
    assert sum(line.startswith("pause ") for line in lines) == 2
    assert sum(line.startswith("state ") for line in lines) == 2


def _arrive(kept, open_now, freezer, n):
    """n connections arrive: objects they keep alive, with a cycle each."""
    for _ in range(n):
        c = {"connection": []}
        c["connection"].append(c)
        kept.append(c)
    open_now[0] += n
    freezer.tick()


def test_a_burst_of_connections_is_frozen(clean_gc):
    open_now = [0]
    freezer = collector.Freezer(lambda: open_now[0], collector.PauseRecorder())
    kept = []
    for _ in range(3):
        _arrive(kept, open_now, freezer, collector.BURST_CONNECTIONS // 2)
    assert gc.get_freeze_count() > 0, "a freeze in the middle of the burst"
    assert freezer.recorder.frozen >= 3 * collector.BURST_CONNECTIONS, "their objects counted"
    assert not any(o is kept[0] for o in gc.get_objects()), "frozen: no collection walks it"
    # Connections leaving never cause a full collection (only the night does): theirs
    # would pause every connection of the process for up to a second.
    frozen = gc.get_freeze_count()
    for _ in range(10):
        kept.clear()
        open_now[0] = 0
        freezer.tick()
        _arrive(kept, open_now, freezer, 3 * collector.BURST_CONNECTIONS // 2)
    freezer.last_change -= 2 * collector.SETTLE_S
    freezer.tick()
    assert gc.get_freeze_count() >= frozen, "nothing unfrozen"


def test_sizes_are_recorded_before_older_collections_when_asked(tmp_path):
    import gc

    from gateway.collector import PauseRecorder

    recorder = PauseRecorder(sizes=True).install()
    try:
        gc.collect(0)
        gc.collect(1)
    finally:
        recorder.uninstall()
    assert [g for _, g, *_ in recorder.sized] == [1]  # generation 0's are not walked
    path = tmp_path / "stats"
    recorder.write(str(path))
    [line] = [x for x in path.read_text().splitlines() if x.startswith("sizes ")]
    assert len(line.split()) == 6


def _tracked(obj, generations=(0, 1, 2)) -> bool:
    return any(o is obj for g in generations for o in gc.get_objects(g))


def test_the_survivors_of_each_older_collection_are_frozen_and_its_garbage_freed(clean_gc):
    """After a collection of generation 1 what survived it is frozen at once, so
    generation 2 never gathers objects for a full collection to walk; the cycles it
    found dead are freed, not frozen."""
    open_now = [0]
    recorder = collector.PauseRecorder().install()
    freezer = collector.Freezer(lambda: open_now[0], recorder)
    recorder.after = freezer.after_collection
    try:
        gc.collect(0)  # no burst: a young collection freezes nothing
        kept = {"alive": []}
        kept["alive"].append(kept)
        assert _tracked(kept)
        gc.collect(0)
        assert _tracked(kept, (1,)), "a young collection's survivor waits in generation 1"
        dead = {"cycle": []}
        dead["cycle"].append(dead)
        freed = [False]

        class Witness:
            def __del__(self):
                freed[0] = True

        dead["witness"] = Witness()
        del dead
        gc.collect(1)
        assert freed[0], "the dead cycle was collected, not frozen"
        assert not _tracked(kept), "the survivor is frozen: no collection walks it"
        assert recorder.quiet_freezes == 1 and recorder.frozen >= 1
    finally:
        recorder.uninstall()


def test_in_a_burst_even_young_collections_freeze_their_survivors(clean_gc):
    open_now = [0]
    recorder = collector.PauseRecorder().install()
    freezer = collector.Freezer(lambda: open_now[0], recorder)
    recorder.after = freezer.after_collection
    try:
        kept = []
        _arrive(kept, open_now, freezer, 1)  # one arrival: a burst is on
        late = {"connection": []}
        late["connection"].append(late)
        gc.collect(0)
        assert not _tracked(late), "frozen right after the young collection"
        freezer.tick()  # nothing arrived since: the burst is over
        later = {"connection": []}
        later["connection"].append(later)
        gc.collect(0)
        assert _tracked(later, (1,))
    finally:
        recorder.uninstall()


def test_the_frozen_set_is_collected_once_a_night_when_quiet(clean_gc):
    """Objects frozen alive that die in a cycle wait in the frozen set whatever the
    connections do: the first quiet tick past the night's hour collects them, once."""
    from datetime import datetime, timedelta

    freezer = collector.Freezer(lambda: 0, collector.PauseRecorder(), full_at=(0, 0))
    assert freezer.full_on == datetime.now(freezer.zone).date(), "not on the first day"
    died = {"cycle": []}
    died["cycle"].append(died)
    collector.freeze()
    del died
    frozen = gc.get_freeze_count()
    freezer.last_change -= 2 * collector.SETTLE_S
    freezer.tick()
    assert gc.get_freeze_count() >= frozen, "not yet: the night is tomorrow"
    freezer.full_on -= timedelta(days=1)  # the next night has come
    freezer.tick()
    assert gc.get_freeze_count() < frozen, "the dead cycle freed"
    after = gc.get_freeze_count()
    freezer.tick()
    assert gc.get_freeze_count() >= after - 10, "once a night"


def test_each_tick_collects_the_young_generations_whatever_the_allocation_count(clean_gc):
    """CPython collects generation 0 when allocations minus deallocations pass 700: while
    old objects die as fast as new ones are made (a connection's ping greenlet replaced
    every 25 s), that never happens and the young generations grow without bound. The
    tick collects them anyway, and generation 1 when its own threshold is reached; the
    survivors of that are frozen."""
    open_now = [0]
    recorder = collector.PauseRecorder().install()
    freezer = collector.Freezer(lambda: open_now[0], recorder)
    recorder.after = freezer.after_collection
    threshold = gc.get_threshold()
    gc.set_threshold(10**9, 2, 10)  # the allocation trigger never fires here
    try:
        made = [[i] for i in range(5000)]
        assert _tracked(made[0], (0,))
        freezer.tick()
        assert not _tracked(made[0], (0,)), "generation 0 collected"
        for _ in range(3):
            freezer.tick()
        assert not _tracked(made[0]), "collected with generation 1, then frozen"
        assert recorder.count[0] >= 2 and recorder.count[1] >= 1
    finally:
        gc.set_threshold(*threshold)
        recorder.uninstall()
