"""The guard closes connections that join no namespace in time (gateway/guard.py), but
not one whose join the server is still handling: when a killed process's devices all
come back, the survivor may take longer than the timeout to authenticate them, and
closing them made them start again. A join that ends refused is closed as before. Run in
a child process under gevent, with python-socketio's manager and fakes of its servers."""

from __future__ import annotations

from harness.process import gevent_child

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import itertools, json, logging
import gevent
from gateway.guard import SocketGuard
from gateway.rooms import IndexedManager

class Sock:
    closed = closing = False
    def close(self, wait=False, reason=None):
        self.closed = True

class Eio:
    async_mode = "gevent"
    class reason:
        SERVER_DISCONNECT = "server disconnect"
    def __init__(self):
        self.handlers, self.sockets, self._async = {}, {}, {}
        self.logger = logging.getLogger("eio")
        self._ids = itertools.count(1)
    def on(self, name, fn):
        self.handlers[name] = fn
    def handle_request(self, environ, start_response):
        return []
    def generate_id(self):
        return f"s{next(self._ids)}"

class Sio:
    def __init__(self):
        self.eio, self.environ, self.logger = Eio(), {}, logging.getLogger("sio")
        self.packet_class = __import__("socketio").packet.Packet
        self.manager = IndexedManager()
        self.manager.set_server(self)
        self.eio.on("connect", lambda sid, environ: True)
        self.eio.on("disconnect", lambda sid, reason=None: None)
        self.eio.on("message", self.message)
    def start_background_task(self, fn, *args):
        return gevent.spawn(fn, *args)
    def sleep(self, s):
        gevent.sleep(s)
    def message(self, eio_sid, data):
        # A namespace connect the server takes 0.6 s to handle (a busy survivor); the
        # token "bad" is refused.
        sid = self.manager.pre_connect(eio_sid, "/display")
        gevent.sleep(0.6)
        if "bad" in data:
            self.manager.disconnect(sid, "/display")
        else:
            self.manager.connect(sid, "/display")

sio = Sio()
SocketGuard(sio, join_timeout_s=0.2, frame_rate=100, frame_burst=100)
for eio_sid in ("slow", "silent", "refused"):
    sio.eio.sockets[eio_sid] = Sock()
    sio.eio.handlers["connect"](eio_sid, {})
gevent.spawn(sio.eio.handlers["message"], "slow", '0/display,{"token":"good"}')
gevent.spawn(sio.eio.handlers["message"], "refused", '0/display,{"token":"bad"}')
gevent.sleep(1.2)
print(json.dumps({k: s.closed for k, s in sio.eio.sockets.items()}))
"""


def test_a_join_being_handled_is_not_cut_off_but_a_refused_one_is():
    out = gevent_child(CHILD)
    assert out == {"slow": False, "silent": True, "refused": True}, out
