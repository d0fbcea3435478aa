"""Which rigs a pytest run takes, and which xdist worker runs on which: ``FarmController``.

The controller is the single pytest process, or the xdist controller (which runs no tests).
``start()`` loads the candidate rigs (several --rig, or a --rig-pool), takes them (hil.farm.claim:
a lock per rig, or a labgrid place), and with xdist trims the worker count to the rigs it got and
hands one rig to each worker through ``workerinput["hil"]``. ``release()`` gives everything back;
it runs at pytest_unconfigure (after failures and Ctrl-C too), on SIGTERM (turned into Ctrl-C so
the run unwinds) and at interpreter exit. A SIGKILL leaves file locks to expire on their own.

Policy: with several --rig every given rig is needed (up to the number of workers) and the run
waits up to --rig-wait for each; a pool needs only one free rig and uses as many free ones as
there are workers. Without xdist the first free rig is used.
"""
from __future__ import annotations

import atexit
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hil.errors import ConfigError, HilError, InfrastructureError
from hil.report.record import new_run_id, one_line


def _sigterm_to_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM (a cancelled CI job) unwinds like Ctrl-C, so rigs and places are given back."""
    raise KeyboardInterrupt(f"signal {signum}")


class FarmController:
    """Takes the run's rigs and gives them back; registered as a pytest plugin for its hooks."""

    def __init__(self, config: pytest.Config, rigs: list[str], pool: str | None) -> None:
        from hil.farm.lock import default_lock_dir
        from hil.rigdirs import RigSearch
        self.config = config
        self.rig_names = rigs
        self.pool_name = pool
        self.rig_dir = RigSearch.for_pytest(config)   # the lookup order (hil.rigdirs), as pytest sees it
        self.results = Path(config.getoption("hil_results")).absolute()
        lock_dir = config.getoption("rig_lock_dir")
        self.lock_dir = Path(lock_dir).expanduser().absolute() if lock_dir else default_lock_dir()
        self.wait = float(config.getoption("rig_wait"))
        self.ttl = float(config.getoption("rig_lock_ttl"))
        self.candidates: list[Any] = []
        self.claimer: Any = None
        self.claims: list[Any] = []
        self.slots: list[str | None] = []          # xdist: the live worker on each claimed rig
        self.assigned: list[str] = []              # xdist: every worker each rig served
        self.run_id = ""
        self.run_dir = Path()
        self.notes: list[str] = []                 # report-header lines for a single-process run
        self.lost: list[str] = []
        self.unusable: list[tuple[str, str]] = []  # spare --rig files that did not load (no -n)
        self._released = False
        self._old_sigterm: Any = None

    # -- what the run asked for ------------------------------------------------------------------
    @property
    def workers(self) -> int:
        """How many xdist workers this run starts (0: no xdist)."""
        dist = getattr(self.config.option, "dist", "no")
        tx = getattr(self.config.option, "tx", None) or []
        return len(tx) if dist != "no" and tx else 0

    @property
    def distributed(self) -> bool:
        return bool(self.slots)

    def _load(self) -> list[Any]:
        from hil.rig import load_rig
        if self.pool_name:
            from hil.farm.pool import load_pool
            return list(load_pool(self.pool_name, self.rig_dir).rigs)
        rigs = []
        for number, name in enumerate(self.rig_names):
            try:
                rigs.append(load_rig(name, self.rig_dir))
            except ConfigError as exc:
                if number == 0 or self.workers:
                    raise
                # without -n only the first free rig is used: a bad spare is noted, not fatal
                self.unusable.append((name, str(exc)))
        seen: dict[str, str] = {}
        for name, rig in zip(self.rig_names, rigs):
            if rig.name in seen:
                raise ConfigError(f"--rig {name}: rig {rig.name} is given twice (as {seen[rig.name]} too)")
            seen[rig.name] = name
        return rigs

    def _say(self, text: str) -> None:
        print(f"hil: {text}", file=sys.stderr, flush=True)

    def _on_lost(self, why: str) -> None:
        self.lost.append(why)
        self._say(f"WARNING: {why}")

    # -- taking the rigs ---------------------------------------------------------------------------
    def start(self) -> None:
        """Take the rigs (pytest.UsageError, one line, when it cannot); choose the run id."""
        from hil.farm.claim import Claim, Claimer
        try:
            self.candidates = self._load()
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        workers = self.workers
        want = max(1, min(workers or 1, len(self.candidates)))
        need = want if not self.pool_name else 1
        if self.config.option.collectonly:
            self.claims = [Claim(rig) for rig in self.candidates[:want]]
        else:
            self.claimer = Claimer(self.candidates, results=self.results, lock_dir=self.lock_dir,
                                   ttl=self.ttl, on_lost=self._on_lost)
            try:
                self.claims = self.claimer.claim(want, need, self.wait, on_wait=self._say)
            except (InfrastructureError, ConfigError) as exc:
                raise pytest.UsageError(one_line(str(exc), 2000)) from None
            self._guard()
        if workers:
            label = self.pool_name or "+".join(c.rig.name for c in self.claims)
        else:
            label = self.claims[0].rig.name
        self.run_id = new_run_id(label, self.results)
        self.run_dir = self.results / self.run_id
        if getattr(self.config.option, "allure_report_dir", "missing") is None:
            self.config.option.allure_report_dir = str(self.run_dir / "allure-results")
        self.config.pluginmanager.register(self, "hil-farm")
        if workers:
            self._start_distributed(workers)
        else:
            self._single_notes()

    def _single_notes(self) -> None:
        claim = self.claims[0]
        if claim.lock is not None or claim.place is not None:
            self.notes.append(f"rig {claim.rig.name} taken for this run: {claim.how}")
        others = [r.name for r in self.candidates if r.name != claim.rig.name] + [n for n, _ in self.unusable]
        if others and not self.pool_name:
            self.notes.append(f"{len(self.rig_names)} rigs given without -n: only {claim.rig.name} is used "
                              f"(ignored: {', '.join(others)}); run with -n {len(self.rig_names)} to use "
                              "them all")
            self.notes.extend(f"--rig {name} could not be used: {why}" for name, why in self.unusable)
        elif self.pool_name and len(self.candidates) > 1:
            self.notes.append(f"pool {self.pool_name}: {claim.rig.name} was free (with -n N up to N of its "
                              f"{len(self.candidates)} rigs are used)")

    def _start_distributed(self, workers: int) -> None:
        opt = self.config.option
        if len(self.claims) < workers:
            if getattr(opt, "numprocesses", None) and opt.tx == ["popen"] * len(opt.tx):
                opt.numprocesses = len(self.claims)   # xdist reads tx when it starts the workers
                opt.tx = ["popen"] * len(self.claims)
            else:
                self.release()
                raise pytest.UsageError(f"--tx starts {workers} workers but only {len(self.claims)} "
                                        "rigs are available: one rig per worker")
        self.slots = [None] * len(self.claims)
        self.assigned = [""] * len(self.claims)
        if not self.config.option.collectonly:
            self.run_dir.mkdir(parents=True, exist_ok=True)   # reserves the run id; workers write into it
        self.config.pluginmanager.register(_XdistHooks(self), "hil-farm-xdist")

    def _guard(self) -> None:
        """Give the rigs back however the run ends: unconfigure, SIGTERM, interpreter exit."""
        atexit.register(self.release)
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            self._old_sigterm = signal.signal(signal.SIGTERM, _sigterm_to_interrupt)

    def release(self) -> None:
        """Give every rig back (safe to call twice); problems are printed, never raised."""
        if self._released:
            return
        self._released = True
        if self._old_sigterm is not None:
            try:
                signal.signal(signal.SIGTERM, self._old_sigterm)
            except ValueError:   # not the main thread
                pass
            self._old_sigterm = None
        problems = self.claimer.release_all() if self.claimer is not None else []
        if "hil.farm.labgrid" in sys.modules:
            from hil.farm.labgrid import close_all
            try:
                close_all()
            except HilError as exc:
                problems.append(str(exc))
        for problem in problems:
            self._say(f"could not give back a rig: {problem}")

    def worker_info(self, index: int, worker: str) -> dict:
        """What a worker needs (sent as workerinput["hil"]): its rig, the run, where to write."""
        claim = self.claims[index]
        return {"rig_path": str(Path(claim.rig.path).absolute()), "port": claim.rig.serial.port,
                "run_id": self.run_id, "results": str(self.results), "worker": worker,
                "allure_dir": getattr(self.config.option, "allure_report_dir", None)}

    # -- pytest hooks --------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        if not self.distributed:
            return []
        rigs = ", ".join(f"{c.rig.name} ({c.how})" for c in self.claims)
        return [f"hil: {len(self.claims)} rigs, one per xdist worker: {rigs}",
                f"hil: run records {self.run_dir}/run-<worker>.jsonl"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.distributed and not self.config.option.collectonly:
            terminalreporter.write_line(f"hil: run {self.run_dir}: " + ", ".join(
                f"{c.rig.name} ({w or 'unused'})" for c, w in zip(self.claims, self.assigned)))
        for why in self.lost:
            terminalreporter.write_line(f"hil: WARNING: {why}")

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.release()
        if self.distributed:   # nothing written (collect-only, no worker started): no empty run left
            for path in (self.run_dir / "allure-results", self.run_dir):
                try:
                    path.rmdir()
                except OSError:
                    pass


class _XdistHooks:
    """xdist controller hooks, registered only when xdist runs (pluggy rejects unknown hooks)."""

    def __init__(self, controller: FarmController) -> None:
        self.controller = controller

    def pytest_configure_node(self, node: Any) -> None:
        c = self.controller
        worker = str(node.gateway.id)
        try:
            index = c.slots.index(None)
        except ValueError:
            raise pytest.UsageError(f"xdist worker {worker}: no rig left for it ({len(c.claims)} rigs, "
                                    "one per worker)") from None
        c.slots[index] = worker
        c.assigned[index] = f"{c.assigned[index]}, {worker}" if c.assigned[index] else worker
        node.workerinput["hil"] = c.worker_info(index, worker)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        c = self.controller
        worker = str(node.gateway.id)
        if worker in c.slots:
            c.slots[c.slots.index(worker)] = None   # a replacement worker may take the rig
