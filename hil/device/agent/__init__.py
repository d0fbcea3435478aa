"""The agent flavour (C-SDK firmware with the k210-hil agent, agent/): its boot console
(``boot``), KPU driver (``kpu``) and device (``device``), over hil.agent's protocol client."""
