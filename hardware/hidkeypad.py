"""A USB numeric keypad (a HID keyboard, any brand) as a counter's call keypad, read on
the agent's PC through Linux's evdev (``/dev/input/event*``).

Each key pressed is an ``input_event`` the kernel writes to the keypad's event device:
``struct timeval time; __u16 type; __u16 code; __s32 value`` (linux/input.h), 24 bytes on
a 64-bit PC (``struct`` format ``llHHi``, native sizes: the time is two C longs on every
Linux ABI, 32-bit time64 included). A key is ``type`` EV_KEY (1) with ``value`` 1 when
pressed, 0 released, 2 repeated while held; only presses count. ``code`` is the key
(``KEY_KPENTER`` = 96...: linux/input-event-codes.h), whatever the layout or NumLock.

The agent's ``[[keypads]]`` entry names the device (``/dev/input/by-path/...-event-kbd``:
by USB port, so two identical keypads differ), the counter it drives and, optionally,
which key is which action (``keys``; :data:`DEFAULT_KEYS` otherwise). The agent grabs the
device (EVIOCGRAB), so the keys never also type into the kiosk's or the clerk's browser.
A HID keypad cannot be told anything back: the clerk sees the result on the counter
page or the LED board.

``HidKeypad`` is a :class:`hardware.keypad.KeypadLine` whose "port" is the event device:
the same thread, debounce, reopening after a loss (a keypad unplugged and plugged back)
and logging of what is ignored. No compiled dependency: python-evdev is not needed to
read 24-byte records. The tests write the same records to a FIFO in place of the device
(``/dev/uinput`` is used instead where the kernel offers it).
"""

from __future__ import annotations

import errno
import os
import select
import struct

from hardware.keypad import KEYS, Display, KeypadLine, Press

EVENT = struct.Struct("llHHi")  # struct input_event, native sizes
EV_SYN, EV_KEY = 0x00, 0x01
KEY_RELEASED, KEY_PRESSED, KEY_REPEATED = 0, 1, 2
EVIOCGRAB = 0x40044590  # _IOW('E', 0x90, int): this reader alone gets the keys

# Key names (linux/input-event-codes.h) a numeric keypad, or a keyboard's top row, sends.
KEY_CODES: dict[str, int] = {
    "KEY_ESC": 1,
    **{f"KEY_{n}": 1 + n for n in range(1, 10)},
    "KEY_0": 11,
    "KEY_MINUS": 12,
    "KEY_EQUAL": 13,
    "KEY_BACKSPACE": 14,
    "KEY_TAB": 15,
    "KEY_ENTER": 28,
    "KEY_SPACE": 57,
    "KEY_KPASTERISK": 55,
    **{f"KEY_F{n}": 58 + n for n in range(1, 11)},
    "KEY_NUMLOCK": 69,
    "KEY_KP7": 71,
    "KEY_KP8": 72,
    "KEY_KP9": 73,
    "KEY_KPMINUS": 74,
    "KEY_KP4": 75,
    "KEY_KP5": 76,
    "KEY_KP6": 77,
    "KEY_KPPLUS": 78,
    "KEY_KP1": 79,
    "KEY_KP2": 80,
    "KEY_KP3": 81,
    "KEY_KP0": 82,
    "KEY_KPDOT": 83,
    "KEY_F11": 87,
    "KEY_F12": 88,
    "KEY_KPENTER": 96,
    "KEY_KPSLASH": 98,
    "KEY_KPEQUAL": 117,
    "KEY_KPCOMMA": 121,
}
KEY_NAMES = {code: name for name, code in KEY_CODES.items()}

# Without ``keys`` in the agent's file: the digit is the action's code (docs/hardware.md),
# Enter calls the next citizen, + recalls. Label the keys with a sticker.
DEFAULT_KEYS: dict[str, str] = {
    "KEY_KP1": "NEXT",
    "KEY_KPENTER": "NEXT",
    "KEY_KP2": "RECALL",
    "KEY_KPPLUS": "RECALL",
    "KEY_KP3": "START",
    "KEY_KP4": "FINISH",
    "KEY_KP5": "NOSHOW",
    "KEY_KP6": "PAUSE",
    "KEY_KP7": "RESUME",
}


def key_code(name: str) -> int:
    """A key's code from its name (``KEY_KPENTER``) or its number (``"96"``)."""
    if name.isdigit() and 0 < int(name) < 0x300:
        return int(name)
    if name in KEY_CODES:
        return KEY_CODES[name]
    raise ValueError(f"unknown key {name!r}: a KEY_... name or a key code")


def event(type_: int, code: int, value: int, sec: int = 0, usec: int = 0) -> bytes:
    """One input_event as the kernel writes it (what a keypad press looks like)."""
    return EVENT.pack(sec, usec, type_, code, value)


def key_press(name: str) -> bytes:
    """A whole key stroke: press, sync, release, sync."""
    code = key_code(name)
    return (
        event(EV_KEY, code, KEY_PRESSED)
        + event(EV_SYN, 0, 0)
        + event(EV_KEY, code, KEY_RELEASED)
        + event(EV_SYN, 0, 0)
    )


class HidDecoder:
    """input_event records in, presses of one counter out; ``keys``: code -> KEYS name."""

    def __init__(self, counter: int, keys: dict[int, str]):
        for code, key in keys.items():
            if key not in KEYS:
                raise ValueError(f"key {code}: {key!r} is not one of {', '.join(KEYS)}")
        self.counter = counter
        self.keys = dict(keys)
        self.counters = frozenset({counter})
        self.buffer = b""

    def feed(self, data: bytes, now: float) -> tuple[list[Press], list[str]]:
        self.buffer += data
        presses, rejected = [], []
        whole = len(self.buffer) - len(self.buffer) % EVENT.size
        for _sec, _usec, type_, code, value in EVENT.iter_unpack(self.buffer[:whole]):
            if type_ != EV_KEY or value != KEY_PRESSED:
                continue  # releases, repeats of a held key, sync and LED events
            key = self.keys.get(code)
            if key is None:
                rejected.append(f"key {KEY_NAMES.get(code, code)} has no action")
            else:
                presses.append(Press(self.counter, key))
        self.buffer = self.buffer[whole:]
        return presses, rejected

    def idle(self, now: float) -> list[str]:
        return []  # the kernel writes whole records: nothing partial to drop

    def answer(self, press: Press, ok: bool, code: str = "", ticket: str | None = None) -> bytes:
        return b""  # a HID keypad takes nothing back

    def display(self, counter: int, shown: Display) -> dict[object, bytes]:
        return {}


class EventPort:
    """An event device opened for reading, shaped as the serial port KeypadLine reads:
    ``read`` waits up to ``timeout`` for whole records, ``in_waiting`` is 0 and nothing
    is ever written. The end of the input (a FIFO whose writer left) is a lost port."""

    in_waiting = 0

    def __init__(self, path: str, timeout: float, log):
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.timeout = timeout
        try:
            import fcntl

            fcntl.ioctl(self.fd, EVIOCGRAB, 1)
        except OSError as e:
            if e.errno not in (errno.ENOTTY, errno.EINVAL):  # not an event device: a test's
                os.close(self.fd)
                raise
            log.debug("%s: not grabbed (%s)", path, e)

    def read(self, _size: int = 1) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], self.timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, EVENT.size * 64)  # evdev reads whole records only
        except BlockingIOError:
            return b""
        if not data:
            raise OSError(errno.ENODEV, "the keypad's input ended")
        return data

    def write(self, data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HidKeypad(KeypadLine):
    """One USB numeric keypad at ``url`` (an event device path) for one counter."""

    def __init__(self, url: str, decoder: HidDecoder, on_press, **kw):
        kw.pop("baudrate", None)
        super().__init__(url, decoder, on_press, **kw)
        self.what = "keypad"

    def open(self):
        if self.port is None:
            self.port = EventPort(self.url, self.timeout, self.log)
            self.log.info("keypad %s open (counter %s)", self.url, self.decoder.counter)
        return self.port
