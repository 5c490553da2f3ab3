"""The load generator: a lean HTTP/1.1 client on uvloop, one connection pool per client process.

A phase is described by a picklable spec and run by `run_phase` in `processes` spawned client
processes, each with its share of connections, rate and URLs; their recordings come back over
a pipe and are merged. Two ways to drive one endpoint:

    closed loop   C connections, each sending its next request when the last one finished
    open loop     a fixed request rate, whatever the answers; latency counts from the moment
                  a request was due, not sent, so a slow server cannot hide its queue
                  (no coordinated omission)

Only requests started after the warm-up and finished before the end are recorded. Paced
listeners (see `benchmarks.paced`) run through the same process fan-out.

One module on purpose (about 410 lines): the client, its URL pools and the process fan-out
share one picklable spec and are read together.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import multiprocessing
import resource
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from multiprocessing.sharedctypes import RawArray
from typing import Any

import uvloop

from benchmarks.http_client import HttpClient, HttpFailure
from benchmarks.recording import Recording
from cdn_edge.server import quiet_gc

REQUEST_TIMEOUT_S = 10.0  # per request, connect to last byte
CHILD_GRACE_S = 30.0  # a client process past its end by this much is killed
MAX_BACKLOG_PER_CONNECTION = 16  # open loop: requests waiting for a connection before shedding
PROGRESS_FIELDS = 3  # per process: ok, errors, active listeners
BUDGET_MARGIN_S = 0.5
CHECK_KEY = "key16"
CHECK_PLAYLIST = "playlist"
_OK_STATUSES = frozenset({200, 201, 202, 206, 304})


@dataclass(frozen=True)
class Budget:
    """A per-URL token bucket mirrored on the client: the edge's key rate limit per session."""

    burst: float
    rate_per_s: float


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint driven in closed loop (`rate_per_s` None) or open loop."""

    endpoint: str
    urls: tuple[str, ...]
    connections: int
    duration_s: float
    warmup_s: float = 1.0
    rate_per_s: float | None = None
    budget: Budget | None = None
    check: str | None = None
    timeout_s: float = REQUEST_TIMEOUT_S


def classify(exc: BaseException) -> str:
    """An error kind for the report from a client exception."""
    if isinstance(exc, HttpFailure):
        return exc.kind
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):
        return f"os_{exc.errno}"
    return type(exc).__name__


def check_body(check: str | None, data: bytes) -> str | None:
    """An error kind when a 200 body is not what the endpoint must return."""
    if check == CHECK_KEY and len(data) != 16:
        return "bad_key_length"
    if check == CHECK_PLAYLIST and not data.startswith(b"#EXTM3U"):
        return "bad_playlist"
    return None


class Client:
    """Sends requests and records them; one per client process."""

    def __init__(self, http: HttpClient, recording: Recording) -> None:
        self.http = http
        self.recording = recording
        self.measure_from = float("-inf")
        self.measure_until = float("inf")
        self.in_flight = 0

    async def fetch(
        self,
        endpoint: str,
        url: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        check: str | None = None,
        due: float | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> tuple[int, bytes] | None:
        """(status, body) of a 2xx/304 answer, else None; recorded either way.

        `due` is when the request should have been sent (open loop); latency counts from it.
        """
        started = time.monotonic() if due is None else due
        self.in_flight += 1
        kind: str | None = None
        status, data, size = 0, b"", 0
        try:
            response = await self.http.request(
                method, url, body=body, headers=headers, timeout_s=timeout_s
            )
            status, data = response.status, response.body
            size = response.wire_bytes  # a gzipped playlist counts compressed
            kind = f"http_{status}" if status not in _OK_STATUSES else check_body(check, data)
        except (HttpFailure, TimeoutError, OSError) as exc:
            kind = classify(exc)
        finally:
            self.in_flight -= 1
        finished = time.monotonic()
        if self.measure_from <= started and finished <= self.measure_until:
            if kind is None:
                self.recording.success(endpoint, started, finished, size)
            else:
                self.recording.failure(endpoint, kind, finished)
        return None if kind is not None else (status, data)


class UrlPool:
    """URLs handed out round robin, each within its `Budget` if it has one."""

    def __init__(self, urls: Sequence[str], budget: Budget | None, now: float) -> None:
        if not urls:
            raise ValueError("an endpoint needs at least one URL to request")
        self.urls = list(urls)
        self.budget = budget
        self._next = 0
        # (time the URL has a token again, index) for URLs whose bucket ran dry.
        self._dry: list[tuple[float, int]] = []
        # Fresh URLs (sessions no phase used before): full buckets.
        self._tokens = [budget.burst if budget else 0.0] * len(urls)
        self._updated = [now] * len(urls)
        self._ready = list(range(len(urls)))  # indexes with a token, served in order

    def take(self, now: float) -> str | float:
        """A URL, or (budget exhausted everywhere) the time one will be available."""
        if self.budget is None:
            url = self.urls[self._next]
            self._next = (self._next + 1) % len(self.urls)
            return url
        while self._dry and self._dry[0][0] <= now:
            # Back from dry: its refill is computed when it is next taken.
            self._ready.append(heapq.heappop(self._dry)[1])
        if not self._ready:
            return self._dry[0][0] if self._dry else now + 1.0
        position = self._next % len(self._ready)
        index = self._ready[position]
        budget = self.budget
        elapsed = now - self._updated[index]
        self._tokens[index] = min(budget.burst, self._tokens[index] + elapsed * budget.rate_per_s)
        self._updated[index] = now
        self._tokens[index] -= 1
        if self._tokens[index] < 1:
            self._ready.pop(position)
            # A margin for the two clocks: the server must see a whole token by then.
            again = now + (1 - self._tokens[index]) / budget.rate_per_s + BUDGET_MARGIN_S
            heapq.heappush(self._dry, (again, index))
        else:
            self._next = position + 1
        return self.urls[index]


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def split_spec(spec: EndpointSpec, processes: int, index: int) -> EndpointSpec:
    """Process `index`'s share: connections, rate and (disjoint, for budgets) URLs."""
    urls = spec.urls
    if spec.budget is not None and len(urls) >= processes:
        urls = urls[index::processes]
    return replace(
        spec,
        urls=urls,
        connections=max(1, _share(spec.connections, processes, index)),
        rate_per_s=None if spec.rate_per_s is None else spec.rate_per_s / processes,
    )


async def _closed_loop(client: Client, spec: EndpointSpec, pool: UrlPool, end: float) -> None:
    while (now := time.monotonic()) < end:
        url = pool.take(now)
        if isinstance(url, float):
            client.recording.counters["budget_waits"] += 1
            await asyncio.sleep(max(0.0, min(url, end) - now))
            continue
        await client.fetch(spec.endpoint, url, check=spec.check, timeout_s=spec.timeout_s)


async def _open_loop(client: Client, spec: EndpointSpec, pool: UrlPool, end: float) -> None:
    assert spec.rate_per_s is not None
    interval = 1.0 / spec.rate_per_s
    backlog_cap = spec.connections * MAX_BACKLOG_PER_CONNECTION
    tasks: set[asyncio.Task[Any]] = set()
    due = time.monotonic()
    while due < end:
        now = time.monotonic()
        while due <= now and due < end:
            url = pool.take(due)
            if isinstance(url, float):
                client.recording.counters["budget_waits"] += 1
            elif client.in_flight >= backlog_cap:
                client.recording.failure(spec.endpoint, "client_backlog", now)
            else:
                task = asyncio.create_task(
                    client.fetch(
                        spec.endpoint, url, check=spec.check, due=due, timeout_s=spec.timeout_s
                    )
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            due += interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=spec.timeout_s)


def new_session(connections: int) -> HttpClient:
    """The client process's HTTP client: at most `connections` connections per server."""
    return HttpClient(limit=connections)


async def ticker(
    client: Client, progress: Any, slot: int, end: float, active: Callable[[], int]
) -> None:
    """Per second: active listeners into the recording; four times a second: progress."""
    recording = client.recording
    base = slot * PROGRESS_FIELDS
    last_second = -1
    while time.monotonic() < end:
        await asyncio.sleep(0.25)
        now = time.monotonic()
        second = recording.second(now)
        if second != last_second and now >= recording.started:
            recording.active_by_second[second] += active()
            last_second = second
        if progress is not None:
            ok = sum(r.ok for r in recording.endpoints.values())
            errors = sum(r.error_count for r in recording.endpoints.values())
            progress[base], progress[base + 1], progress[base + 2] = ok, errors, active()


async def _endpoint_main(spec: EndpointSpec, started: float, progress: Any, slot: int) -> Recording:
    recording = Recording(started)
    async with new_session(spec.connections) as session:
        client = Client(session, recording)
        client.measure_from = started + spec.warmup_s
        client.measure_until = started + spec.warmup_s + spec.duration_s
        end = client.measure_until
        await asyncio.sleep(max(0.0, started - time.monotonic()))
        pool = UrlPool(spec.urls, spec.budget, time.monotonic())
        drive = _closed_loop if spec.rate_per_s is None else _open_loop
        workers = 1 if spec.rate_per_s is not None else spec.connections
        ticking = asyncio.create_task(ticker(client, progress, slot, end, lambda: 0))
        await asyncio.gather(*(drive(client, spec, pool, end) for _ in range(workers)))
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
    return recording


# Process fan-out


ChildMain = Callable[[Any, float, Any, int], Coroutine[Any, Any, Recording]]


def _child(main: ChildMain, spec: Any, started: float, progress: Any, slot: int, conn: Any) -> None:
    quiet_gc()  # a 190 ms full collection here would show up as server latency
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        recording: Recording = uvloop.run(main(spec, started, progress, slot))
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        conn.send({"recording": recording.to_dict(), "cpu_s": cpu_s})
    except BaseException as exc:  # reported to the parent, which fails the phase
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        conn.close()


@dataclass
class PhaseResult:
    recording: Recording
    client_cpu_s: float  # CPU the client processes used (getrusage), whole phase
    wall_s: float


class ClientProcesses:
    """Client processes of one phase; `pids` lets the sampler watch them while they run."""

    def __init__(self, processes: int) -> None:
        self.count = processes
        self.progress = RawArray("d", processes * PROGRESS_FIELDS)
        self._procs: list[multiprocessing.process.BaseProcess] = []

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None and p.is_alive()]

    def totals(self) -> tuple[float, float, float]:
        """Summed progress of all processes: ok, errors, active listeners."""
        ok = sum(self.progress[i * PROGRESS_FIELDS] for i in range(self.count))
        errors = sum(self.progress[i * PROGRESS_FIELDS + 1] for i in range(self.count))
        active = sum(self.progress[i * PROGRESS_FIELDS + 2] for i in range(self.count))
        return ok, errors, active

    def run(
        self,
        main: ChildMain,
        specs: Sequence[Any],
        started: float,
        end: float,
        on_tick: Callable[[], None] | None = None,
    ) -> PhaseResult:
        """Run `main(spec)` in one process per spec; block until all report or time runs out."""
        spawn = multiprocessing.get_context("spawn")
        pipes = []
        wall_started = time.monotonic()
        for slot, spec in enumerate(specs):
            parent_end, child_end = spawn.Pipe(duplex=False)
            process = spawn.Process(
                target=_child,
                args=(main, spec, started, self.progress, slot, child_end),
                name=f"load-client-{slot}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self._procs.append(process)
            pipes.append(parent_end)
        merged = Recording(started)
        cpu_s = 0.0
        errors: list[str] = []
        deadline = end + CHILD_GRACE_S
        pending = dict(enumerate(pipes))
        try:
            while pending and time.monotonic() < deadline:
                for slot, pipe in list(pending.items()):
                    if pipe.poll(0.0):
                        try:
                            message = pipe.recv()
                        except EOFError:
                            message = {"error": f"client process {slot} died without a result"}
                        del pending[slot]
                        if "error" in message:
                            errors.append(message["error"])
                        else:
                            merged.merge(Recording.from_dict(message["recording"]))
                            cpu_s += message["cpu_s"]
                    elif not self._procs[slot].is_alive() and not pipe.poll(0.0):
                        del pending[slot]
                        errors.append(
                            f"client process {slot} exited with {self._procs[slot].exitcode}"
                        )
                if on_tick is not None:
                    on_tick()
                time.sleep(0.1)
        finally:
            for proc in self._procs:
                proc.join(timeout=5.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=5.0)
        if pending:
            errors.append(f"{len(pending)} client process(es) gave no result in time")
        if errors:
            raise RuntimeError("load client failed: " + "; ".join(errors))
        return PhaseResult(merged, cpu_s, time.monotonic() - wall_started)


def run_endpoint(
    spec: EndpointSpec,
    processes: int,
    on_start: Callable[[ClientProcesses], None] | None = None,
    on_tick: Callable[[ClientProcesses], None] | None = None,
    start_delay_s: float = 1.5,
) -> PhaseResult:
    """Drive one endpoint from `processes` client processes; blocks for the phase."""
    clients = ClientProcesses(processes)
    # Spawned interpreters take a moment to import: everyone starts together later.
    started = time.monotonic() + start_delay_s
    end = started + spec.warmup_s + spec.duration_s
    specs = [split_spec(spec, processes, i) for i in range(processes)]
    if on_start is not None:
        on_start(clients)
    return clients.run(
        _endpoint_main,
        specs,
        started,
        end,
        on_tick=None if on_tick is None else (lambda: on_tick(clients)),
    )
