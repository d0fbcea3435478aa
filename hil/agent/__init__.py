"""The framework's side of the k210-hil agent in C-SDK firmware (agent/ in the repository):
the line protocol (protocol.py), a client over any byte stream (client.py), the reference
firmware's build (build.py), the QEMU board that runs it (qemu.py) and its power driver
(power.py). Docs: docs/csdk-agent.md.
"""
