"""A Cassandra node of the test's own, to SIGKILL and start again over the same data.

It is `scripts/services`' Cassandra (the same install, cassandra.yaml and JVM options), on free
loopback ports (CQL, storage, JMX) with its own run directory and a smaller heap, so the shared
node on :19042 that other tests use is never touched. Starting it takes 10-60 s on two cores,
so a scenario starts one and restarts it once.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from tests.backends.services import missing
from tests.e2e.conftest import REPO, free_port

SERVICES_SCRIPT = REPO / "scripts" / "services"
HEAP = ("-Xms256M", "-Xmx512M")  # a node holding one test's few thousand rows
READY_TIMEOUT_S = 150.0  # scripts/services allows 120 s for the shared node on an idle machine
EXIT_TIMEOUT_S = 10.0


def _services_module() -> ModuleType:
    """scripts/services as a module (a script without a .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("streamer_services_script", str(SERVICES_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up while it executes
    loader.exec_module(module)
    return module


class PrivateCassandra:
    """One Cassandra process on free ports over `root`; `start()` again after `kill()`."""

    def __init__(self, root: Path) -> None:
        self._services = _services_module()
        self._node = self._services.Cassandra()
        if not self._node.installed():
            missing("cassandra", f"Cassandra is not installed under {self._node.home}")
        self.root = root
        self.cql_port = free_port()
        self.storage_port = free_port()
        self.jmx_port = free_port()
        self.log = root / "logs" / "stdout.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._prepare()

    def _prepare(self) -> None:
        for name in ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs", "conf"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        template = (SERVICES_SCRIPT.parent / "cassandra" / "cassandra.yaml").read_text()
        for placeholder, value in (
            ("@RUN@", str(self.root)),
            ("@CQL_PORT@", str(self.cql_port)),
            ("@STORAGE_PORT@", str(self.storage_port)),
        ):
            template = template.replace(placeholder, value)
        # A lone node at consistency ONE acknowledges a write before its commit log is synced
        # when the sync is `periodic` (the shared node's 10 s): a SIGKILL then lost 4 of the
        # edge's acknowledged events in one CI-like run. Group sync acknowledges only synced
        # writes, which is what a one-replica keyspace needs (production: RF 3, LOCAL_QUORUM).
        periodic = "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n"
        if periodic not in template:
            raise RuntimeError("scripts/cassandra/cassandra.yaml no longer syncs as expected")
        template = template.replace(
            periodic, "commitlog_sync: group\ncommitlog_sync_group_window: 15ms\n"
        )
        (self.root / "conf" / "cassandra.yaml").write_text(template)
        logback = SERVICES_SCRIPT.parent / "cassandra" / "logback.xml"
        (self.root / "conf" / "logback.xml").write_text(logback.read_text())

    def command(self) -> list[str]:
        """The shared node's command line with this node's directory, ports and heap."""
        shared_run = str(self._node.run_dir)
        command: list[str] = []
        for arg in self._node.command()[0]:
            if arg in self._services.CASSANDRA_HEAP:
                continue
            arg = arg.replace(f"={self._services.JMX_PORT}", f"={self.jmx_port}")
            command.append(arg.replace(shared_run, str(self.root)))
        main = command.index("-cp")
        command[main:main] = list(HEAP)
        assert not any(shared_run in arg for arg in command), command
        return command

    def start(self) -> float:
        """Start the node and wait until CQL answers; the seconds that took."""
        assert self.process is None or self.process.poll() is not None, "still running"
        started = time.monotonic()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        while (problem := self._services.cql_ready(self.cql_port)) is not None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"Cassandra exited with {self.process.returncode}: {self.tail()}"
                )
            if time.monotonic() > started + READY_TIMEOUT_S:
                self.stop()
                raise AssertionError(f"Cassandra not ready in {READY_TIMEOUT_S:.0f} s ({problem})")
            time.sleep(0.25)
        return time.monotonic() - started

    def kill(self) -> float:
        """SIGKILL the node; the monotonic time of the kill."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        self.process.wait(timeout=EXIT_TIMEOUT_S)
        return killed_at

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.kill()  # its data is the test's to throw away: no drain
        process.wait(timeout=EXIT_TIMEOUT_S)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
