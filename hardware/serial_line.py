"""A serial line that the agent's threads open when they need it and reopen after a loss
(a pulled-out USB adapter, a converter restarting): LED boards and keypads share it."""

from __future__ import annotations

import logging

try:  # POSIX: a pulled-out adapter's tcflush raises termios.error (EIO), not an OSError
    from termios import error as _termios_error

    PORT_ERRORS: tuple[type[BaseException], ...] = (OSError, _termios_error)
except ImportError:  # Windows
    PORT_ERRORS = (OSError,)


def port_errors() -> tuple[type[BaseException], ...]:
    """What a lost or failing port raises: the OS's errors and pyserial's."""
    import serial

    return (*PORT_ERRORS, serial.SerialException)


class SerialLine:
    """One pyserial URL (``serial_for_url``), opened on first use and after ``close``;
    ``opened`` runs each time it opens (a device that lost power shows nothing: whatever
    it should show is to be written again)."""

    def __init__(
        self, url: str, baudrate: int, timeout: float, write_timeout: float, log, what: str
    ):
        self.url = url
        self.what = what  # "keypad line", "board line": how the log names it
        self.baudrate = baudrate
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.log: logging.Logger = log
        self.port = None

    def opened(self) -> None:
        """Called after each opening; subclasses mark their devices to be written again."""

    def open(self):
        import serial

        if self.port is None:
            self.port = serial.serial_for_url(
                self.url,
                baudrate=self.baudrate,
                timeout=self.timeout,
                write_timeout=self.write_timeout,
            )
            self.log.info("%s %s open", self.what, self.url)
            self.opened()
        return self.port

    def close(self) -> None:
        if self.port is not None:
            try:
                self.port.close()
            except Exception:  # noqa: BLE001 - closing a port that already failed
                pass
            self.port = None


def pty_at(path):
    """A raw pty pair whose device side is reachable at ``path`` (a symlink, replaced in
    one step, as udev names a USB adapter): ``(master, slave)`` file descriptors. The
    keypad simulator and the tests put a device at the master side."""
    import os
    import tty
    from pathlib import Path

    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = Path(path)
    tmp = path.with_suffix(".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.ttyname(slave))
    tmp.replace(path)
    return master, slave
