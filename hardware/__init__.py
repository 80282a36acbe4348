"""The hardware agent: a separate process on the PC the devices are plugged into.

It will drive ESC/POS printers, serial keypads and LED boards, and talk to the server
only through the device protocol (the /agent namespace), like any other device. Its
drivers arrive with the hardware issues.
"""
