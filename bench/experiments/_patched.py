"""Run ``server.py serve`` with a patch applied first: the A/B experiments of
docs/performance.md. Each experiment file calls :func:`run` with its patch; the benchmarks
start it with ``--server-script bench/experiments/<name>.py``. Nothing here changes the
server's code; it only measures what a change would gain."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*patches) -> None:
    from gevent import monkey

    monkey.patch_all()
    for patch in patches:
        patch()
    sys.path.insert(0, str(ROOT))
    sys.argv[0] = str(ROOT / "server.py")
    runpy.run_path(str(ROOT / "server.py"), run_name="__main__")


def no_deflate() -> None:
    """Refuse permessage-deflate: drop the client's offer before simple-websocket sees it."""
    import simple_websocket

    init = simple_websocket.Server.__init__

    def patched(self, environ, *a, **kw):
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return init(self, environ, *a, **kw)

    simple_websocket.Server.__init__ = patched


def short_switch_interval() -> None:
    """Let the hub thread take the GIL back from the SQLite writer thread sooner."""
    sys.setswitchinterval(0.0005)


def calls_first(max_batch: int = 32) -> None:
    """Counter and tablet operations jump ahead of kiosk issues in the writer's queue, and
    a batch holds at most ``max_batch`` operations, so a call waits for at most one small
    batch of issues instead of every issue queued before it."""
    from collections import deque

    import gevent.event

    sys.path.insert(0, str(ROOT))
    from core import store

    store.MAX_BATCH = max_batch

    class TwoLaneQueue:
        def __init__(self):
            self.fast, self.slow = deque(), deque()
            self.ready = gevent.event.Event()

        def put(self, job):
            (self.slow if job.actor.startswith("device:") else self.fast).append(job)
            self.ready.set()

        def empty(self):
            return not (self.fast or self.slow)

        def get_nowait(self):
            job = self.fast.popleft() if self.fast else self.slow.popleft()
            if self.empty():
                self.ready.clear()
            return job

        def get(self):
            while self.empty():
                self.ready.wait()
            return self.get_nowait()

    start_writer = store.Store.start_writer

    def patched(self, queue_factory, spawn):
        return start_writer(self, TwoLaneQueue, spawn)

    store.Store.start_writer = patched
