"""One snapshot read serves every device of an audience asking at about the same time
(gateway/doors.py ``_shared_snapshot``), but never one that joined its room after a change
newer than that read was delivered there: it would have missed that change's batch and
the snapshot would not have it either. Run in a child process under gevent, as the
server."""

from __future__ import annotations

from harness.process import gevent_child

CHILD = r"""
from gevent import monkey
monkey.patch_all()
import json
import gevent
from gevent.event import Event
from core.engine import Actor
from core.roles import Audience
from gateway.context import Gathered
from gateway.doors import Client, Door

class Hub:
    delivered = 5  # the last change whose batch was sent to the room
    def flushed(self, centre_id):
        return self.delivered

class Store:
    def read(self, fn):
        return fn(None)

class Ctx:
    hub = Hub()
    def gathered(self, read_many, most=500, readers=1):
        return Gathered(Store(), read_many, most, readers=readers)

reads, release = [], Event()

class Board(Door):
    role_name = "display"
    def snapshot(self, conn, client):
        seq = Ctx.hub.delivered  # what the store holds as the read begins
        reads.append(seq)
        release.wait()  # the read takes a while (a hall reconnecting)
        return {"seq": seq}

door = Board(Ctx())
def board(n):
    c = Client(Actor("device", n, 1, "display"))
    c.audience = Audience("display", 1)
    return c

first = gevent.spawn(door._shared_snapshot, board(1))
gevent.sleep(0.01)  # its read has begun, at seq 5
Ctx.hub.delivered = 6  # a call is committed and its batch sent to the room
late = gevent.spawn(door._shared_snapshot, board(2))  # joined after that batch
alike = gevent.spawn(door._shared_snapshot, board(3))
gevent.sleep(0.01)
release.set()
gevent.joinall([first, late, alike], timeout=10)
again = door._shared_snapshot(board(4))  # nothing newer since: the last read serves it
print(json.dumps({"first": first.value["seq"], "late": late.value["seq"],
                  "alike": alike.value["seq"], "again": again["seq"], "reads": reads}))
"""


def test_a_device_joining_after_a_newer_change_gets_a_newer_snapshot():
    out = gevent_child(CHILD)
    assert out["first"] == 5
    # Both joined after the change of seq 6: the read begun at 5 is not theirs; one
    # further read serves them both, and the next device too.
    assert out["late"] == 6 and out["alike"] == 6, out
    assert out["reads"] == [5, 6], out
    assert out["again"] == 6
