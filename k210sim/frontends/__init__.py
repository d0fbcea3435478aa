"""Front ends of the simulated board: the host-side "USB-serial adapters" over one SerialLine.

pty (the /dev/ttyUSB0 look-alike), RFC 2217 (DTR/RTS/baud over TCP), raw TCP (socket://), and
modem.sock (DTR/RTS datagrams from the LD_PRELOAD shim for clients on the pty).
"""
