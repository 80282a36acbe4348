"""The hardware agent: a separate process on the PC the devices are plugged into.

It will drive ESC/POS printers, serial keypads and LED boards, and talk to the server
only through the device protocol (the /agent namespace), like any other device. Its
drivers arrive with the hardware issues.

- ``hardware.ticket``: the printed ticket drawn as a 1-bit image, and its PNG preview.
- ``hardware.printer``: printers by URL (tcp, serial, usb, file, png, cups), their
  real-time status, ``print_ticket``; ``python -m hardware.printer URL [--test]``.
- ``hardware.escpos_codes``: the ESC/POS bytes of a job and the status answers.
- ``hardware.ledboard``: counter LED boards (Modbus RTU, a framed protocol).
- ``hardware.keypad``: call keypads (a line protocol, an RS-485 bus with displays);
  ``python -m hardware.keypad --simulate PATH`` is a keypad on a pty.
- ``hardware.agent``: the agent process (``python server.py agent --config FILE``).

Nothing here imports the server or ``core``: the agent and a server-side print worker
both call it.
"""
