"""The K210's UART ISP as the chip answers it: the boot ROM and the flash-mode stub (target.py),
over the wire format in protocol.py."""
