"""A USB numeric keypad (HID) as a call keypad: Linux input_event records decoded, the
agent's configuration checked, and presses through the real agent and server. The kernel
here has no /dev/uinput, so the records come through a FIFO in place of the event device
(the same bytes, the same reads); where /dev/uinput is writable, a real virtual keypad
made by the kernel is read too."""

from __future__ import annotations

import fcntl
import glob
import os
import struct
import threading
import time
from pathlib import Path

import pytest

from hardware.agent import ConfigError, load_config
from hardware.hidkeypad import (
    DEFAULT_KEYS,
    EV_KEY,
    EV_SYN,
    EVENT,
    KEY_CODES,
    HidDecoder,
    event,
    key_press,
)
from hardware.keypad import Press

pytestmark = pytest.mark.timeout(120)


def test_records_become_presses_of_one_counter():
    keys = {KEY_CODES["KEY_KPENTER"]: "NEXT", KEY_CODES["KEY_KPPLUS"]: "RECALL"}
    decoder = HidDecoder(4, keys)
    assert decoder.counters == frozenset({4})
    # The layout of struct input_event: two C longs of time, type, code, value.
    assert EVENT.size == struct.calcsize("@llHHi")
    assert event(EV_KEY, 96, 1, sec=7, usec=9) == struct.pack("@llHHi", 7, 9, 1, 96, 1)
    presses, rejected = decoder.feed(key_press("KEY_KPENTER"), 0.0)
    assert presses == [Press(4, "NEXT")] and rejected == []
    # A held key repeats (value 2) and is released (0): neither is a press.
    held = event(EV_KEY, 78, 1) + event(EV_KEY, 78, 2) + event(EV_KEY, 78, 2)
    presses, _ = decoder.feed(held + event(EV_KEY, 78, 0) + event(EV_SYN, 0, 0), 0.0)
    assert presses == [Press(4, "RECALL")]
    # A record split across reads is kept until it is whole.
    stroke = key_press("KEY_KPENTER")
    assert decoder.feed(stroke[:10], 0.0) == ([], [])
    assert decoder.feed(stroke[10:], 0.0)[0] == [Press(4, "NEXT")]
    # A key with no action is named in the rejection; LED and other events are skipped.
    presses, rejected = decoder.feed(key_press("KEY_KP9") + event(0x11, 0, 1), 0.0)
    assert presses == [] and rejected == ["key KEY_KP9 has no action"]
    assert decoder.answer(Press(4, "NEXT"), False, "OFFLINE") == b""
    with pytest.raises(ValueError):
        HidDecoder(1, {96: "CALL"})


def _config(tmp_path, keypad: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'server = "http://127.0.0.1:1"\ntoken = "t"\n[[keypads]]\n{keypad}\n', encoding="utf-8"
    )
    return path


def test_the_configuration_names_the_counter_and_the_keys(tmp_path):
    url = 'url = "/dev/input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd"\nprotocol = "hid"'
    config = load_config(_config(tmp_path, f"{url}\ncounter = 2"))
    (keypad,) = config.keypads
    assert keypad.counter == 2
    assert dict(keypad.keys) == {KEY_CODES[k]: a for k, a in DEFAULT_KEYS.items()}
    config = load_config(
        _config(tmp_path, f'{url}\ncounter = 2\nkeys = {{ KEY_KPENTER = "NEXT", 164 = "PAUSE" }}')
    )
    assert dict(config.keypads[0].keys) == {96: "NEXT", 164: "PAUSE"}
    bad = {
        "": "cần “counter”",
        "counter = 0": "cần “counter”",
        'counter = 1\nkeys = { KEY_HOME = "NEXT" }': "phím “KEY_HOME” không có",
        'counter = 1\nkeys = { KEY_KP1 = "CALL" }': "“CALL” phải là NEXT",
        "counter = 1\ncounters = [1]": "“counters” không dùng",
        "counter = 1\nbaudrate = 9600": "“baudrate” không dùng",
    }
    for extra, words in bad.items():
        with pytest.raises(ConfigError, match=words):
            load_config(_config(tmp_path, f"{url}\n{extra}"))
    with pytest.raises(ConfigError, match="chỉ dùng cho protocol"):
        load_config(_config(tmp_path, 'url = "/dev/ttyUSB0"\nprotocol = "line"\ncounter = 1'))


def _wait_log(agent, text: str, count: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while agent.log.read_text(encoding="utf-8").count(text) < count:
        assert time.monotonic() < deadline, agent.log.read_text(encoding="utf-8")
        time.sleep(0.05)


def _plug(path: Path) -> int:
    """The keypad's end of the FIFO (blocks until the agent has opened its end)."""
    fd = os.open(path, os.O_WRONLY)
    return fd


def test_presses_through_the_agent_call_for_the_counter(
    tmp_path, sqlite_server, agent_factory, devices
):
    device = tmp_path / "event-kbd"
    os.mkfifo(device)
    extra = (
        f'[[keypads]]\nurl = "{device}"\nprotocol = "hid"\ncounter = 1\n'
        'keys = { KEY_KPENTER = "NEXT", KEY_KPPLUS = "RECALL" }\n'
    )
    agent = agent_factory(sqlite_server, "png:///dev/null", extra=extra).start()
    kiosk = devices.kiosk(sqlite_server)
    display = devices.display(sqlite_server)
    for _ in range(2):
        assert kiosk.call("issue", {"service": "TP"})["ok"]
    clerk1 = devices.counter(sqlite_server, "clerk1", 1)
    _wait_log(agent, "connected to")
    keypad = _plug(device)
    try:
        _wait_log(agent, "keypad " + str(device) + " open (counter 1)")
        # Enter held down: one press, then the kernel's repeats; one call.
        code = KEY_CODES["KEY_KPENTER"]
        held = event(EV_KEY, code, 1) + event(EV_SYN, 0, 0)
        held += b"".join(event(EV_KEY, code, 2) + event(EV_SYN, 0, 0) for _ in range(10))
        os.write(keypad, held + event(EV_KEY, code, 0) + event(EV_SYN, 0, 0))
        called = display.wait_event("change", kind="called")
        assert called["ticket"]["number"] == "A001" and called["counter"]["number"] == 1
        assert clerk1.wait_event("change", kind="called")["ticket"]["number"] == "A001"
        # A key with no action is ignored and logged; + recalls.
        os.write(keypad, key_press("KEY_KP9") + key_press("KEY_KPPLUS"))
        recalled = display.wait_event("change", kind="called")
        assert recalled["recall"] is True and recalled["ticket"]["number"] == "A001"
        time.sleep(0.5)
        assert [e for n, e in display.events if n == "change" and e["kind"] == "called"] == []
        assert "key KEY_KP9 has no action" in agent.log.read_text(encoding="utf-8")
    finally:
        os.close(keypad)
    # Unplugged (the input ends) and plugged back: the agent opens it again.
    _wait_log(agent, "the keypad's input ended")
    keypad = _plug(device)
    try:
        _wait_log(agent, "keypad " + str(device) + " open (counter 1)", count=2)
        time.sleep(1.1)  # past the debounce of the first +
        os.write(keypad, key_press("KEY_KPPLUS"))
        recalled = display.wait_event("change", kind="called")
        assert recalled["recall"] is True and recalled["ticket"]["number"] == "A001"
    finally:
        os.close(keypad)


# -- a real virtual keypad, where the kernel offers /dev/uinput ---------------------------
UI_SET_EVBIT = 0x40045564  # _IOW('U', 100, int)
UI_SET_KEYBIT = 0x40045565  # _IOW('U', 101, int)
UI_DEV_CREATE = 0x5501  # _IO('U', 1)
UI_DEV_DESTROY = 0x5502  # _IO('U', 2)
UI_GET_SYSNAME_64 = 0x8040552C  # _IOC(_IOC_READ, 'U', 44, 64)
BUS_USB = 0x03


def uinput_keypad(keys) -> tuple[int, str]:
    """A keypad made by the kernel: (the uinput fd to type with, its /dev/input/event*)."""
    try:
        fd = os.open("/dev/uinput", os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:  # there, but not for us (a container's device rules)
        pytest.skip(f"/dev/uinput: {e}")
    fcntl.ioctl(fd, UI_SET_EVBIT, EV_KEY)
    for name in keys:
        fcntl.ioctl(fd, UI_SET_KEYBIT, KEY_CODES[name])
    # struct uinput_user_dev: name[80], input_id, ff_effects_max, absmax/min/fuzz/flat[64]
    setup = struct.pack("80sHHHHi", b"motcua test keypad", BUS_USB, 0x1234, 0x5678, 1, 0)
    os.write(fd, setup + bytes(4 * 64 * 4))
    fcntl.ioctl(fd, UI_DEV_CREATE)
    sysname = fcntl.ioctl(fd, UI_GET_SYSNAME_64, bytes(64)).split(b"\0")[0].decode()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        nodes = glob.glob(f"/sys/devices/virtual/input/{sysname}/event*")
        if nodes and os.path.exists(f"/dev/input/{os.path.basename(nodes[0])}"):
            return fd, f"/dev/input/{os.path.basename(nodes[0])}"
        time.sleep(0.05)
    fcntl.ioctl(fd, UI_DEV_DESTROY)
    os.close(fd)
    pytest.skip(f"the kernel made {sysname}, but no /dev/input node appeared for it")


@pytest.mark.skipif(
    not os.access("/dev/uinput", os.W_OK), reason="no writable /dev/uinput on this kernel"
)
def test_a_real_virtual_keypad_is_read_and_grabbed(tmp_path):
    from hardware.hidkeypad import HidKeypad

    fd, node = uinput_keypad(["KEY_KPENTER", "KEY_KPPLUS"])
    got: list[Press] = []
    pressed = threading.Event()

    def on_press(line, press):
        got.append(press)
        pressed.set()

    keypad = HidKeypad(node, HidDecoder(3, {96: "NEXT", 78: "RECALL"}), on_press).start()
    try:
        deadline = time.monotonic() + 5
        while keypad.port is None:
            assert time.monotonic() < deadline, "the agent never opened the keypad"
            time.sleep(0.05)
        # Grabbed: a second reader gets nothing while the agent holds the device.
        other = os.open(node, os.O_RDONLY | os.O_NONBLOCK)
        os.write(fd, key_press("KEY_KPENTER"))
        assert pressed.wait(5)
        assert got == [Press(3, "NEXT")]
        with pytest.raises(BlockingIOError):
            os.read(other, EVENT.size)
        os.close(other)
    finally:
        keypad.stop()
        fcntl.ioctl(fd, UI_DEV_DESTROY)
        os.close(fd)


def test_the_hardware_doc_prints_the_default_keys_of_the_code():
    import re

    text = (Path(__file__).parent.parent / "docs" / "hardware.md").read_text(encoding="utf-8")
    table = text[text.index("Without `keys` in the agent's file") :].split("```toml")[0]
    printed = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        for keys, action in zip(cells[::2], cells[1::2], strict=False):
            for name in re.findall(r"\(`(KEY_\w+)`\)", keys):
                printed[name] = action.strip("`")
    assert printed == DEFAULT_KEYS
