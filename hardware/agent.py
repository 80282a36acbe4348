"""The hardware agent: the process on a kiosk's (or counter's) PC that drives its devices.

    python server.py agent --config agent.toml

It connects to the server's /agent namespace with its device token like any device
(docs/protocol.md, section 8.5), reconnects forever with back-off, prints the tickets of
the kiosks it is bound to, and keeps its counters' LED boards showing their current
numbers (hardware/ledboard.py). All blocking device I/O happens here, in worker threads
(one for printing, one per board line), never in the server.

Printing is at most once. Before a job's first byte goes to the printer the job is
written to a journal file (flushed to disk); its result is written there before it is
reported. A job the journal shows started but without a result was interrupted (the
agent stopped mid-job): it is reported ``interrupted`` and never printed again. A job
whose deadline passed before it could start is reported ``expired``: the citizen has
gone, and a late ticket would be taken by the next one. Results are reported with a
``request_id`` made from the job, so a report repeated after a reconnection counts once.

Configuration (TOML; docs/hardware.md has examples):

    server = "http://192.168.1.10:5000"
    token = "the agent's device token"
    journal = "/var/lib/motcua/agent-journal"      # optional; default beside this file

    [printers."Kiosk sảnh A"]                       # a kiosk's name, as provisioned
    url = "usb://0x0416:0x5011"                     # hardware/printer.py
    width = 576                                     # optional: 576 (80 mm) or 384 (58 mm)

    [[boards]]                                      # an LED board (hardware/ledboard.py)
    counter = 1                                     # whose current number it shows
    url = "/dev/ttyUSB0"                            # a pyserial URL (serial_for_url)
    driver = "modbus"                               # or "framed"
    unit = 1                                        # modbus: unit id (framed: address)

    [[keypads]]                                     # a call keypad (hardware/keypad.py)
    url = "/dev/ttyUSB1"                            # a pyserial URL, one line per keypad
    protocol = "line"                               # "<counter>:<KEY>\r\n"
    counters = [1]                                  # optional: the counters it may name

    [[keypads]]                                     # a bus of keypads on one RS-485 pair
    url = "/dev/ttyUSB2"
    protocol = "bus"
    addresses = { 1 = 1, 2 = 2 }                    # bus address -> counter number

    [[keypads]]                                     # a USB numeric keypad (hidkeypad.py)
    url = "/dev/input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd"
    protocol = "hid"
    counter = 3                                     # the counter it drives
    keys = { KEY_KPENTER = "NEXT", KEY_KPPLUS = "RECALL" }   # optional (else the defaults)

Stopping: SIGTERM or SIGINT ends the agent within STOP_S (0.8 s), whatever it is doing;
device I/O still running then (a connection being made, a ticket being printed, a port
being written) is abandoned, and a ticket being printed is reported ``interrupted`` by the
next run (the journal has it started).

Keypads: each press not repeated within ``debounce_s`` becomes one ``counter_action``
with a fresh ``request_id`` (retried with the same id for at most PRESS_WINDOW_S if the
answer is lost), done by the server for the counter's clerk on duty. A press while the
server is unreachable is dropped and the keypad told (``ERR OFFLINE``, an error frame):
a queue call that happened minutes later, when the clerk has moved on, would call a
citizen nobody is waiting for. Bus keypads' displays show the counter's current number,
how many wait for its services, and its status.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hardware.following import BoardState, NeedsSync

log = logging.getLogger("motcua.agent")

BACKOFF_S = (1, 2, 5, 10, 30)  # between connection attempts; the last one repeats
PRESS_WINDOW_S = 3.0  # a press not answered by then is given up (the keypad is told)
STOP_S = 0.8  # told to stop (SIGTERM), the agent ends within this, whatever it is doing


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class PrinterConfig:
    url: str
    width: int = 576
    timeout: float = 5.0


@dataclass(frozen=True)
class BoardConfig:
    counter: int
    url: str
    driver: str  # "modbus" | "framed"
    unit: int  # Modbus unit id, or the framed protocol's address
    register: int = 0
    baudrate: int = 9600
    pause_text: str = "TAM DUNG"
    pause_value: int = 0
    blank_value: int = 0

    @property
    def name(self) -> str:
        return f"counter {self.counter} ({self.driver} {self.unit} on {self.url})"

    def board(self):
        from hardware import ledboard

        if self.driver == "modbus":
            return ledboard.ModbusBoard(
                self.name, self.unit, self.register, self.pause_value, self.blank_value
            )
        return ledboard.FramedBoard(self.name, self.unit)


BOARD_KEYS = {
    "counter": int,
    "url": str,
    "driver": str,
    "unit": int,
    "register": int,
    "baudrate": int,
    "pause_text": str,
    "pause_value": int,
    "blank_value": int,
}


@dataclass(frozen=True)
class KeypadConfig:
    url: str
    protocol: str  # "line" | "bus" | "hid"
    counters: tuple[int, ...] = ()  # line: the counters it may name (empty: any)
    addresses: tuple[tuple[int, int], ...] = ()  # bus: (address, counter)
    baudrate: int = 9600
    debounce_s: float = 1.0
    counter: int = 0  # hid: the counter it drives
    keys: tuple[tuple[int, str], ...] = ()  # hid: (key code, KEYS name)

    def decoder(self):
        from hardware import hidkeypad, keypad

        if self.protocol == "bus":
            return keypad.BusDecoder(dict(self.addresses))
        if self.protocol == "hid":
            return hidkeypad.HidDecoder(self.counter, dict(self.keys))
        return keypad.LineDecoder(self.counters)

    def line(self, on_press, refresh_s: float):
        """The thread that reads it (hardware/keypad.py, hardware/hidkeypad.py)."""
        from hardware.hidkeypad import HidKeypad
        from hardware.keypad import KeypadLine

        kind = HidKeypad if self.protocol == "hid" else KeypadLine
        return kind(
            self.url,
            self.decoder(),
            on_press,
            baudrate=self.baudrate,
            debounce_s=self.debounce_s,
            refresh_s=refresh_s,
        )


KEYPAD_KEYS = {
    "url": str,
    "protocol": str,
    "counters": list,
    "addresses": dict,
    "baudrate": int,
    "debounce_s": (int, float),
    "counter": int,
    "keys": dict,
}


@dataclass(frozen=True)
class AgentConfig:
    server: str
    token: str
    journal: Path
    printers: dict[str, PrinterConfig] = field(default_factory=dict)
    boards: list[BoardConfig] = field(default_factory=list)
    board_refresh_s: float = 30.0
    keypads: list[KeypadConfig] = field(default_factory=list)


def load_config(path: str | Path) -> AgentConfig:
    """Read and check the agent's file; ConfigError says what is wrong, in Vietnamese."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: không đọc được tệp cấu hình: {e}") from None
    known = {"server", "token", "journal", "printers", "boards", "board_refresh_s", "keypads"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{path}: khóa không được hỗ trợ: {', '.join(sorted(unknown))}")
    for key in ("server", "token"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: thiếu “{key}” (chuỗi)")
    printers = {}
    for name, p in (data.get("printers") or {}).items():
        if not isinstance(p, dict) or not isinstance(p.get("url"), str):
            raise ConfigError(f"{path}: máy in của “{name}” cần “url”")
        width = p.get("width", 576)
        if width not in (384, 576):
            raise ConfigError(f"{path}: “width” của “{name}” phải là 576 (80 mm) hoặc 384 (58 mm)")
        extra = set(p) - {"url", "width", "timeout"}
        if extra:
            raise ConfigError(f"{path}: máy in “{name}”: khóa lạ {', '.join(sorted(extra))}")
        printers[name] = PrinterConfig(p["url"], width, float(p.get("timeout", 5.0)))
    journal = Path(data.get("journal") or path.with_name(path.stem + "-journal"))
    boards = [_board(path, i, b) for i, b in enumerate(data.get("boards") or [])]
    seen = set()
    for b in boards:
        if (b.url, b.unit) in seen:
            raise ConfigError(f"{path}: hai bảng LED cùng địa chỉ {b.unit} trên {b.url}")
        seen.add((b.url, b.unit))
    refresh = data.get("board_refresh_s", 30.0)
    if not isinstance(refresh, int | float) or refresh <= 0:
        raise ConfigError(f"{path}: “board_refresh_s” phải là số giây dương")
    keypads = [_keypad(path, i, k) for i, k in enumerate(data.get("keypads") or [])]
    urls = [k.url for k in keypads]
    for url in urls:
        if urls.count(url) > 1:
            raise ConfigError(f"{path}: hai [[keypads]] cùng cổng {url} (một bus: một mục)")
        if any(b.url == url for b in boards):
            raise ConfigError(f"{path}: cổng {url} vừa là bàn phím vừa là bảng LED")
    return AgentConfig(
        data["server"].rstrip("/"),
        data["token"],
        journal,
        printers,
        boards,
        float(refresh),
        keypads,
    )


def _keypad(path: Path, i: int, k) -> KeypadConfig:
    from hardware.keypad import MAX_ADDRESS

    where = f"{path}: bàn phím gọi số thứ {i + 1}"
    if not isinstance(k, dict):
        raise ConfigError(f"{where}: phải là [[keypads]]")
    extra = set(k) - set(KEYPAD_KEYS)
    if extra:
        raise ConfigError(f"{where}: khóa lạ {', '.join(sorted(extra))}")
    for key in ("url", "protocol"):
        if key not in k:
            raise ConfigError(f"{where}: thiếu “{key}”")
    for key, typ in KEYPAD_KEYS.items():
        if key in k and (not isinstance(k[key], typ) or isinstance(k[key], bool)):
            raise ConfigError(f"{where}: “{key}” sai kiểu")
    counters: tuple[int, ...] = ()
    addresses: tuple[tuple[int, int], ...] = ()
    counter, keys = 0, ()
    if k["protocol"] != "hid" and ("counter" in k or "keys" in k):
        raise ConfigError(f'{where}: “counter” và “keys” chỉ dùng cho protocol = "hid"')
    if k["protocol"] == "hid":
        counter, keys = _hid_keys(where, k)
    elif k["protocol"] == "line":
        if "addresses" in k:
            raise ConfigError(f'{where}: “addresses” chỉ dùng cho protocol = "bus"')
        counters = tuple(k.get("counters", ()))
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counters):
            raise ConfigError(f"{where}: “counters” là danh sách số quầy")
    elif k["protocol"] == "bus":
        if "counters" in k:
            raise ConfigError(f"{where}: bus dùng “addresses” (địa chỉ = số quầy)")
        pairs = []
        for address, counter in (k.get("addresses") or {}).items():
            if not address.isdigit() or not 1 <= int(address) <= MAX_ADDRESS:
                raise ConfigError(f"{where}: địa chỉ “{address}” phải từ 1 đến {MAX_ADDRESS}")
            if not isinstance(counter, int) or isinstance(counter, bool) or counter < 1:
                raise ConfigError(f"{where}: địa chỉ {address}: số quầy phải là số nguyên dương")
            pairs.append((int(address), counter))
        if not pairs:
            raise ConfigError(f"{where}: thiếu “addresses” (địa chỉ = số quầy)")
        addresses = tuple(sorted(pairs))
    else:
        raise ConfigError(f"{where}: “protocol” phải là line, bus hoặc hid")
    debounce = float(k.get("debounce_s", 1.0))
    if not 0 <= debounce <= 10:
        raise ConfigError(f"{where}: “debounce_s” phải từ 0 đến 10 giây")
    return KeypadConfig(
        k["url"],
        k["protocol"],
        counters,
        addresses,
        k.get("baudrate", 9600),
        debounce,
        counter,
        keys,
    )


def _hid_keys(where: str, k: dict) -> tuple[int, tuple[tuple[int, str], ...]]:
    """A USB numeric keypad's counter and key map (hardware/hidkeypad.py)."""
    from hardware.hidkeypad import DEFAULT_KEYS, key_code
    from hardware.keypad import KEYS

    for key in ("counters", "addresses", "baudrate"):
        if key in k:
            raise ConfigError(f'{where}: “{key}” không dùng cho protocol = "hid" (dùng “counter”)')
    counter = k.get("counter")
    if not isinstance(counter, int) or isinstance(counter, bool) or counter < 1:
        raise ConfigError(f"{where}: bàn phím USB cần “counter” (số quầy nó gọi)")
    pairs = {}
    for name, action in (k.get("keys") or DEFAULT_KEYS).items():
        try:
            code = key_code(name)
        except ValueError:
            raise ConfigError(
                f"{where}: phím “{name}” không có: dùng tên KEY_... (KEY_KPENTER, KEY_KP1...) "
                "hoặc mã số của phím"
            ) from None
        if action not in KEYS:
            raise ConfigError(f"{where}: phím {name}: “{action}” phải là {', '.join(KEYS)}")
        if code in pairs:
            raise ConfigError(f"{where}: phím {name} được gán hai lần")
        pairs[code] = action
    return counter, tuple(sorted(pairs.items()))


def _board(path: Path, i: int, b) -> BoardConfig:
    where = f"{path}: bảng LED thứ {i + 1}"
    if not isinstance(b, dict):
        raise ConfigError(f"{where}: phải là [[boards]]")
    extra = set(b) - set(BOARD_KEYS)
    if extra:
        raise ConfigError(f"{where}: khóa lạ {', '.join(sorted(extra))}")
    for key in ("counter", "url", "driver", "unit"):
        if key not in b:
            raise ConfigError(f"{where}: thiếu “{key}”")
    for key, typ in BOARD_KEYS.items():
        if key in b and (not isinstance(b[key], typ) or isinstance(b[key], bool)):
            raise ConfigError(f"{where}: “{key}” phải là {typ.__name__}")
    if b["driver"] not in ("modbus", "framed"):
        raise ConfigError(f"{where}: “driver” phải là modbus hoặc framed")
    top = 247 if b["driver"] == "modbus" else 254
    if not 1 <= b["unit"] <= top:
        raise ConfigError(f"{where}: “unit” phải từ 1 đến {top}")
    return BoardConfig(**b)


class Journal:
    """What happened to each print job, one JSON line per step, flushed to disk before
    the step it records is acted on: {"job", "step": "started" | "result", ...}."""

    def __init__(self, path: Path):
        self.path = path
        self.started: set[int] = set()
        self.results: dict[int, dict] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: its step did not happen
                if entry.get("step") == "started":
                    self.started.add(entry["job"])
                elif entry.get("step") == "result":
                    self.results[entry["job"]] = entry["result"]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def _write(self, entry: dict) -> None:
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def start(self, job: int) -> None:
        self._write({"job": job, "step": "started"})
        self.started.add(job)

    def result(self, job: int, result: dict) -> None:
        self._write({"job": job, "step": "result", "result": result})
        self.results[job] = result

    def close(self) -> None:
        self._file.close()


def _deadline_passed(deadline: str) -> bool:
    return datetime.fromisoformat(deadline) <= datetime.now(UTC)


def print_job(job: dict, printer: PrinterConfig | None) -> dict:
    """Print one job (blocking); the result as ``print_result`` reports it."""
    from hardware.printer import print_ticket
    from hardware.ticket import TicketFace, render

    if printer is None:
        return {"printed": False, "error": "no_printer", "printer": None}
    face = dict(job["face"])
    face["issued_at"] = datetime.fromisoformat(face["issued_at"])
    image = render(TicketFace(**face), printer.width)
    outcome = print_ticket(printer.url, image, timeout=printer.timeout)
    return {
        "printed": outcome.printed,
        "error": outcome.error,
        "printer": {"online": outcome.after.online, "paper": outcome.after.paper},
    }


class Agent:
    """One connection to the server and one printing thread."""

    def __init__(self, config: AgentConfig):
        import socketio

        self.config = config
        self.journal = Journal(config.journal)
        self.kiosks: dict[int, str] = {}  # kiosk device id -> name
        self.seen: set[int] = set()  # jobs queued or done in this run
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        # The server sends a snapshot after every connection; reconnection is ours.
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("agent_state", self.on_snapshot, namespace="/agent")
        self.sio.on("changes", self.on_changes, namespace="/agent")
        self.sio.on("connect", lambda: self.connected.set(), namespace="/agent")
        self.sio.on("disconnect", self.on_disconnect, namespace="/agent")
        # LED boards: one line (port and thread) per URL; the counters' state as followed.
        self.lines: dict[str, object] = {}
        self.boards_of: dict[int, list[tuple[object, str]]] = {}  # counter -> (line, board)
        # What the counters' boards show, followed from the server (hardware/following.py,
        # the tests' reducer too); None: wait for a snapshot. Whether each counter's current
        # number was last called as a recall (the LED board says so).
        self.board: BoardState | None = None
        self.recall: dict[int, bool] = {}
        self._lines(config)
        # Call keypads: one line (port and thread) each; presses done one at a time.
        self.presses: queue.Queue = queue.Queue()
        self.keypad_lines = []
        self.keypads_of: dict[int, list] = {}  # counter -> the keypad lines that show it
        self._keypads(config)

    def _lines(self, config: AgentConfig) -> None:
        from hardware.ledboard import BoardLine

        by_url: dict[str, list[BoardConfig]] = {}
        for b in config.boards:
            by_url.setdefault(b.url, []).append(b)
        for url, boards in by_url.items():
            line = BoardLine(
                url,
                [b.board() for b in boards],
                baudrate=boards[0].baudrate,
                refresh_s=config.board_refresh_s,
            )
            self.lines[url] = line
            for b in boards:
                self.boards_of.setdefault(b.counter, []).append((line, b))

    def _keypads(self, config: AgentConfig) -> None:
        for k in config.keypads:
            line = k.line(self.on_press, config.board_refresh_s)
            self.keypad_lines.append(line)
            for number in line.decoder.counters:
                self.keypads_of.setdefault(number, []).append(line)

    # -- following the server ----------------------------------------------------------
    def on_disconnect(self, *args) -> None:
        self.connected.clear()

    def on_snapshot(self, state: dict) -> None:
        with self.lock:
            self.kiosks = {k["id"]: k["name"] for k in state.get("kiosks", [])}
            for job in state.get("print_jobs", []):
                self._take(job)
            self.board = BoardState(state)
            self.recall = {}
            for number in self.boards_of:
                self._show(number)
            self._displays()
        # A snapshot comes after each (re)connection: every board and keypad display is
        # written again, also those whose state the restarted server left unchanged.
        for line in (*self.lines.values(), *self.keypad_lines):
            line.rewrite()

    def on_changes(self, batch: dict) -> None:
        with self.lock:
            for event in batch.get("events", []):
                if event.get("kind") == "issued" and event.get("print"):
                    self._take(event["print"])
            self._follow(batch)

    # -- LED boards ------------------------------------------------------------------------
    def _follow(self, batch: dict) -> None:
        """Apply a batch to the counters' state; a gap or a reconfiguration asks for a
        snapshot. The boards of each counter that changed are told what to show."""
        if self.board is None:
            return
        try:
            self.board.apply(batch)
        except NeedsSync:
            self.board = None
            self.sio.emit("sync", namespace="/agent")
            return
        for number, recall in self.board.called.items():
            self.recall[number] = recall
        for number in self.board.touched | set(self.board.called):
            self._show(number)
        self._displays()

    def _displays(self) -> None:
        """What every keypad display should show (each line writes only what changed)."""
        from hardware.keypad import Display

        for number, lines in self.keypads_of.items():
            c = self.board.counter(number) if self.board else None
            if c is None:
                shown = Display()
            else:
                counts = self.board.state.get("waiting") or {}
                waiting = sum(counts.get(code, 0) for code in c.get("services", []))
                current = c["current"]["number"] if c["current"] else ""
                shown = Display(current, waiting, c["status"])
            for line in lines:
                line.show(number, shown)

    def _show(self, number: int) -> None:
        from hardware.ledboard import BLANK, Shown

        c = self.board.counter(number) if self.board else None
        for line, b in self.boards_of.get(number, []):
            if c is None or c["status"] == "closed":
                shown = BLANK
            elif c["status"] == "paused":
                shown = Shown("pause", b.pause_text)
            elif c["current"]:
                recall = self.recall.get(number, False)
                shown = Shown("recall" if recall else "number", c["current"]["number"])
            else:
                shown = BLANK
            line.show(b.name, shown)

    def _take(self, job: dict) -> None:
        """Queue a job once per run; a job with a result already (reported or not) only
        has its result sent again."""
        number = job["job"]
        if number in self.seen:
            return
        self.seen.add(number)
        self.jobs.put(job)

    # -- call keypads ----------------------------------------------------------------------
    def on_press(self, line, press) -> None:
        """A key pressed (in the keypad line's thread): done in the keypad thread."""
        self.presses.put((line, press, time.monotonic()))

    def keypad_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                line, press, at = self.presses.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.act(line, press, at)
            except Exception:  # noqa: BLE001 - one bad press must not stop the keypads
                log.exception("keypad press %s failed", press)

    def act(self, line, press, at: float) -> None:
        """Send one press to the server as ``counter_action``, once: a fresh request_id,
        repeated only to retry this press within PRESS_WINDOW_S. A press while the server
        is unreachable is dropped, never kept for later, and the keypad is told."""
        what = f"counter {press.counter} {press.key}"
        if not self.connected.is_set():
            log.warning("%s: the server is unreachable; press dropped", what)
            line.send(line.decoder.answer(press, False, "OFFLINE"))
            return
        payload = {
            "counter": press.counter,
            "action": press.action,
            "request_id": f"key-{uuid.uuid4().hex}",
        }
        answer, sent = None, False
        while not self.stopping.is_set():
            remaining = at + PRESS_WINDOW_S - time.monotonic()
            if remaining <= 0:
                break
            if not self.connected.is_set():
                self.stopping.wait(0.1)
                continue
            try:
                sent = True
                answer = self.sio.call(
                    "counter_action", payload, namespace="/agent", timeout=max(remaining, 0.5)
                )
                break
            except Exception as e:  # noqa: BLE001 - timeout or disconnection: retry, same id
                log.warning("%s: no answer yet (%s)", what, e)
                self.stopping.wait(0.2)
        if answer is None:
            code = "NOANSWER" if sent else "OFFLINE"
            log.warning("%s: given up (%s); the keypad is told", what, code)
            line.send(line.decoder.answer(press, False, code))
        elif answer.get("ok"):
            ticket = (answer.get("ticket") or {}).get("number")
            log.info("%s: done%s", what, f" ({ticket})" if ticket else "")
            line.send(line.decoder.answer(press, True, ticket=ticket))
        else:
            error = answer.get("error") or {}
            log.warning("%s: refused: %s", what, error.get("message"))
            line.send(line.decoder.answer(press, False, str(error.get("code", "refused"))))

    # -- printing --------------------------------------------------------------------------
    def handle(self, job: dict) -> None:
        number = job["job"]
        result = self.journal.results.get(number)
        if result is None:
            if number in self.journal.started:
                result = {"printed": False, "error": "interrupted", "printer": None}
            elif _deadline_passed(job["deadline"]):
                result = {"printed": False, "error": "expired", "printer": None}
            else:
                name = self.kiosks.get(job["kiosk"])
                self.journal.start(number)
                result = print_job(job, self.config.printers.get(name))
                log.info(
                    "job %s (%s, %s): %s",
                    number,
                    job["face"]["number"],
                    name,
                    "printed" if result["printed"] else result["error"],
                )
            self.journal.result(number, result)
        self.report(number, result)

    def report(self, job: int, result: dict) -> None:
        """Send a job's result until the server has it (the same request_id each time)."""
        payload = {"job": job, **result, "request_id": f"print-{job}"}
        while not self.stopping.is_set():
            if not self.connected.wait(timeout=1):
                continue
            try:
                answer = self.sio.call("print_result", payload, namespace="/agent", timeout=10)
            except Exception as e:  # noqa: BLE001 - timeout or disconnection: try again
                log.warning("job %s: result not delivered yet (%s)", job, e)
                time.sleep(1)
                continue
            if answer.get("ok") or answer.get("error", {}).get("code") in ("conflict", "not_found"):
                return  # recorded (now or before), or no longer the server's job
            log.warning("job %s: server answered %s", job, answer)
            time.sleep(1)

    def printing_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                job = self.jobs.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.handle(job)
            except Exception:  # noqa: BLE001 - one bad job must not stop the printer
                log.exception("job %s failed", job.get("job"))

    # -- connection ------------------------------------------------------------------------
    def run(self) -> None:
        worker = threading.Thread(target=self.printing_loop, name="printing", daemon=True)
        worker.start()
        keys = threading.Thread(target=self.keypad_loop, name="keypads", daemon=True)
        keys.start()
        for line in self.lines.values():
            line.start()
        for line in self.keypad_lines:
            line.start()
        attempt = 0
        while not self.stopping.is_set():
            try:
                self.sio.connect(
                    self.config.server,
                    namespaces=["/agent"],
                    auth={"token": self.config.token},
                    transports=["websocket"],
                    wait_timeout=10,
                )
            except Exception as e:  # noqa: BLE001 - unreachable or refused: wait, retry
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                attempt += 1
                log.warning("cannot connect to %s (%s); again in %ss", self.config.server, e, delay)
                self.stopping.wait(delay)
                continue
            attempt = 0
            if self.stopping.is_set():
                self._disconnect()  # told to stop while connecting: its disconnect came early
                break
            log.info("connected to %s", self.config.server)
            # Until the connection is lost (the disconnect handler clears ``connected``)
            # or the agent is told to stop; sio.wait() would add a second's sleep to both.
            while self.connected.is_set() and not self.stopping.wait(0.1):
                pass
            if self.stopping.is_set():
                break
            self.sio.wait()  # the lost connection's threads end
            log.warning("connection lost; reconnecting")
        worker.join(timeout=0.5)
        keys.join(timeout=0.5)
        for line in self.lines.values():
            line.stop()
        for line in self.keypad_lines:
            line.stop()
        if not worker.is_alive():  # else a job is being printed: its thread still writes
            self.journal.close()

    def stop(self) -> None:
        """Stop soon, from any thread: the connection is closed in a thread of its own
        (a websocket close waits up to seconds for an unresponsive server)."""
        self.stopping.set()
        threading.Thread(target=self._disconnect, name="disconnect", daemon=True).start()

    def _disconnect(self) -> None:
        try:
            self.sio.disconnect()
        except Exception as e:  # noqa: BLE001 - already closed, or closing twice
            log.debug("disconnect: %s", e)


def main(config_path: str) -> int:
    import signal

    logging.basicConfig(
        level=os.environ.get("MOTCUA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(config_path)
    except ConfigError as e:
        print(f"error: {e}", flush=True)
        return 2
    agent = Agent(config)
    # The handler only notes the signal: code run from a signal handler must take no lock
    # (an Event's, a queue's, the socket client's), or it waits forever on one the
    # interrupted code holds. The main thread only sleeps here, and acts on the note.
    told: list[int] = []
    signal.signal(signal.SIGTERM, lambda sig, frame: told.append(sig))
    signal.signal(signal.SIGINT, lambda sig, frame: told.append(sig))
    failed: list[BaseException] = []

    def run() -> None:
        try:
            agent.run()
        except BaseException as e:  # noqa: BLE001 - a bug: logged, and the exit status says so
            log.exception("the agent stopped on an error")
            failed.append(e)

    runner = threading.Thread(target=run, name="agent", daemon=True)
    runner.start()
    while not told and runner.is_alive():
        time.sleep(0.05)
    if told:
        log.info("%s: stopping", signal.Signals(told[0]).name)
    agent.stop()
    if failed:
        return 1
    runner.join(timeout=STOP_S)
    if runner.is_alive():
        # Still connecting, printing or writing to a port: not waited for. A job being
        # printed is in the journal as started, and is reported ``interrupted`` next time.
        log.info("stopped; device I/O in progress abandoned")
        logging.shutdown()
        os._exit(0)
    log.info("stopped")
    return 0
