"""The soak's samples as series, rows per sample, Markdown and one PNG per quantity.

Pure but for the files written: the samples and vegeta's windows come in, tables and plots go
out. A row is one sample, the state at its time, beside the window that ended there (the
segment p99 of the minute before it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.soak_judge import MIB, Series, Verdict
from benchmarks.soak_sampler import ProcessSample, Sample

TICKS_PER_S = os.sysconf("SC_CLK_TCK")

# Floors of the growth rule (soak_judge): below these a change is noise.
RSS_FLOOR = 1 * MIB  # pages a small process (nginx master) touches now and then
# Descriptors but sockets: nginx keeps the files it served in the last 60 s open
# (open_file_cache), about ten segments as the listeners move along the track.
OPEN_FILES_FLOOR = 10
SPOOL_FLOOR = 1 * MIB  # a few writer batches (~30 KB each): the store briefly behind
NGINX_CACHE_FLOOR = 1 * MIB  # playlists, a few KB each; temp files of requests in flight
# The shipper reads whole batches of lines behind a log nginx flushes every second: at 6,000
# listeners (~1,300 lines/s of ~700 bytes) 8 MiB is ~9 s of log.
SHIPPER_LAG_FLOOR = 8 * MIB

SPOOL, NGINX_CACHE, SHIPPER_LAG = "telemetry spool", "nginx cache", "shipper lag"
# RSS split (soak_sampler): private is judged as RSS is, so a process's own growth shows even
# when shared pages (nginx's zones) move; shared is reported.
PRIVATE_RSS, SHARED_RSS = "private RSS ", "shared RSS "
# The nginx gate's status (reported): each worker's Lua heap, each zone's wholly free bytes.
LUA_HEAP, ZONE_FREE = "Lua heap ", "zone free "
KIB = 1024
STORE = "store "  # the name of a store's series: "store sessions.sqlite3-wal"
# nginx starts its cache loader once, and it exits when it has read the cache's index.
EXITS_BY_DESIGN = ("nginx cache loader",)


def _labels(samples: Sequence[Sample]) -> list[str]:
    seen: dict[str, None] = {}
    for sample in samples:
        for process in sample.processes:
            seen.setdefault(process.label, None)
    return sorted(seen)


def series_of(samples: Sequence[Sample]) -> list[Series]:
    """Every sampled quantity as a series: per process RSS, private RSS and open files, the
    spool, nginx's cache, the shipper's lag (judged), and shared RSS, sockets, the gate's
    status and the stores (reported only)."""
    out = []
    for label in _labels(samples):
        found = [next((p for p in s.processes if p.label == label), None) for s in samples]
        pids = tuple(p.pid if p else None for p in found)
        rss = tuple(
            (s.t_s, float(p.rss_bytes) if p else None) for s, p in zip(samples, found, strict=True)
        )
        private = tuple(
            (s.t_s, _maybe(p.private_bytes if p else None))
            for s, p in zip(samples, found, strict=True)
        )
        shared = tuple(
            (s.t_s, _maybe(p.shared_bytes if p else None))
            for s, p in zip(samples, found, strict=True)
        )
        files = tuple((s.t_s, _files(p)) for s, p in zip(samples, found, strict=True))
        sockets = tuple(
            (s.t_s, _maybe(p.sockets if p else None)) for s, p in zip(samples, found, strict=True)
        )
        judged = label not in EXITS_BY_DESIGN
        out.append(Series(f"RSS {label}", "bytes", rss, RSS_FLOOR, pids, judged))
        if any(v is not None for _, v in private):
            out.append(Series(f"{PRIVATE_RSS}{label}", "bytes", private, RSS_FLOOR, pids, judged))
            out.append(Series(f"{SHARED_RSS}{label}", "bytes", shared, pids=pids, judged=False))
        out.append(Series(f"open files {label}", "files", files, OPEN_FILES_FLOOR, pids, judged))
        # Sockets follow the load, not the server's age: an nginx worker holds the load
        # generator's connections (vegeta opens one whenever all of its others are busy and
        # keeps it, up to --connections), an edge worker nginx's upstream connections.
        out.append(Series(f"sockets {label}", "files", sockets, pids=pids, judged=False))
    for name, floor, attribute in (
        (SPOOL, SPOOL_FLOOR, "spool_bytes"),
        (NGINX_CACHE, NGINX_CACHE_FLOOR, "nginx_cache_bytes"),
        (SHIPPER_LAG, SHIPPER_LAG_FLOOR, "shipper_lag_bytes"),
    ):
        sizes = tuple((s.t_s, float(getattr(s, attribute))) for s in samples)
        out.append(Series(name, "bytes", sizes, floor))
    out += gate_series(samples)
    stores = sorted({name for s in samples for name in s.stores_bytes})
    for name in stores:
        store = tuple((s.t_s, _maybe(s.stores_bytes.get(name))) for s in samples)
        out.append(Series(f"{STORE}{name}", "bytes", store, judged=False))
    return out


def gate_series(samples: Sequence[Sample]) -> list[Series]:
    """The gate's status as series (reported): each nginx worker's Lua heap, named by the
    worker's label, and each zone's wholly free bytes."""
    labels: dict[int, str] = {}
    for s in samples:
        for p in s.processes:
            labels.setdefault(p.pid, p.label)
    heaps: dict[str, list[tuple[float, float | None]]] = {}
    zones: dict[str, list[tuple[float, float | None]]] = {}
    for s in samples:
        gate = s.gate or {}
        for pid, worker in gate.get("workers", {}).items():
            name = labels.get(int(pid), f"nginx worker pid {pid}")
            heaps.setdefault(name, []).append((s.t_s, float(worker["lua_kib"]) * KIB))
        for zone, stats in gate.get("zones", {}).items():
            zones.setdefault(zone, []).append((s.t_s, float(stats["free_space"])))
    return [
        *(
            Series(f"{LUA_HEAP}{n}", "bytes", tuple(v), judged=False)
            for n, v in sorted(heaps.items())
        ),
        *(
            Series(f"{ZONE_FREE}{n}", "bytes", tuple(v), judged=False)
            for n, v in sorted(zones.items())
        ),
    ]


def _maybe(value: int | None) -> float | None:
    return None if value is None else float(value)


def _files(process: ProcessSample | None) -> float | None:
    """Open descriptors that are not sockets."""
    if process is None or process.open_fds is None or process.sockets is None:
        return None
    return float(process.open_fds - process.sockets)


def window_at(
    windows: Sequence[dict[str, Any]], t_s: float, window_s: float
) -> dict[str, Any] | None:
    """The window that ended at the sample time `t_s` (None for the first sample)."""
    index = round(t_s / window_s) - 1
    if index < 0:
        return None
    return next((w for w in windows if w["from_s"] == index * window_s), None)


def cpu_cores(before: Sample, after: Sample) -> dict[str, float]:
    """Cores each part of the server (and the whole machine) used between two samples; a
    process counts from its first sample on."""
    dt = max(after.t_s - before.t_s, 1e-9)
    previous = {p.pid: p.cpu_ticks for p in before.processes}
    parts: dict[str, float] = {}
    for p in after.processes:
        if p.pid in previous:
            parts[p.part] = parts.get(p.part, 0.0) + (p.cpu_ticks - previous[p.pid])
    cores = {part: round(ticks / TICKS_PER_S / dt, 3) for part, ticks in sorted(parts.items())}
    cores["server"] = round(sum(cores.values()), 3)
    machine = after.machine_busy_ticks - before.machine_busy_ticks
    cores["machine"] = round(machine / TICKS_PER_S / dt, 3)
    return cores


def rows_of(
    samples: Sequence[Sample], windows: Sequence[dict[str, Any]], window_s: float
) -> list[dict[str, Any]]:
    """One row per sample: the state then, the window that ended then, CPU since the last."""
    rows = []
    for i, s in enumerate(samples):
        window = window_at(windows, s.t_s, window_s)
        rows.append(
            {
                "t_s": round(s.t_s, 1),
                "wall_s": round(s.wall_s, 1),
                "segments": window["segments"] if window else None,
                "segment_p99_ms": window["segment_p99_ms"] if window else None,
                "errors": window["errors"] if window else None,
                "spool_bytes": s.spool_bytes,
                "nginx_cache_bytes": s.nginx_cache_bytes,
                "shipper_lag_bytes": s.shipper_lag_bytes,
                "stores_bytes": s.stores_bytes,
                "cores": cpu_cores(samples[i - 1], s) if i else None,
                "telemetry_dropped": s.telemetry_dropped,
                "gate": s.gate,
                "processes": {
                    p.label: {
                        "pid": p.pid,
                        "rss_bytes": p.rss_bytes,
                        "private_bytes": p.private_bytes,
                        "shared_bytes": p.shared_bytes,
                        "open_fds": p.open_fds,
                        "sockets": p.sockets,
                    }
                    for p in s.processes
                },
            }
        )
    return rows


# Markdown.


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:,.1f}"


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "bytes":
        return f"{value / MIB:,.2f} MiB"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f}"


def verdict_table(verdicts: Sequence[Verdict]) -> list[str]:
    lines = [
        "| series | after warm-up | worst after (at s) | limit | result | note |",
        "|---|---:|---:|---:|---|---|",
    ]
    for v in verdicts:
        first = _value(v.baseline, v.unit) if v.unit != "ms" else "-"
        worst = _value(v.worst, v.unit) + (
            f" ({v.worst_t_s:.0f})" if v.worst_t_s is not None else ""
        )
        lines.append(
            f"| {v.series} | {first} | {worst} | {_value(v.limit, v.unit)} | {v.result} "
            f"| {v.note} |"
        )
    return lines


def minute_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    stores = sorted({name for r in rows for name in r["stores_bytes"]})
    lines = [
        "| t s | segments | segment p99 ms | errors | spool MiB | nginx cache MiB "
        "| shipper lag MiB | "
        + " | ".join(f"{n} MiB" for n in stores)
        + " | server cores | machine cores | telemetry dropped |",
        "|" + "---:|" * (9 + len(stores)) + "---:|",
    ]
    for r in rows:
        cores = r["cores"] or {}
        p99 = r["segment_p99_ms"]
        lines.append(
            f"| {r['t_s']:.0f} | {_plain(r['segments'])} | {'-' if p99 is None else f'{p99:.1f}'} "
            f"| {_plain(r['errors'])} | {_mib(r['spool_bytes'])} | {_mib(r['nginx_cache_bytes'])} "
            f"| {_mib(r['shipper_lag_bytes'])} | "
            + " | ".join(_mib(r["stores_bytes"].get(n)) for n in stores)
            + f" | {_plain(cores.get('server'), '.2f')} | {_plain(cores.get('machine'), '.2f')} "
            f"| {_plain(r['telemetry_dropped'])} |"
        )
    return lines


def process_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    labels = sorted({label for r in rows for label in r["processes"]})
    lines = [
        "| t s | " + " | ".join(labels) + " |",
        "|---:|" + "---:|" * len(labels),
    ]
    for r in rows:
        cells = []
        for label in labels:
            p = r["processes"].get(label)
            if p is None:
                cells.append("-")
                continue
            fds, sockets = p["open_fds"], p["sockets"]
            files = "-" if fds is None or sockets is None else f"{fds - sockets} / {sockets}"
            cells.append(f"{p['rss_bytes'] / MIB:,.1f} / {files}")
        lines.append(f"| {r['t_s']:.0f} | " + " | ".join(cells) + " |")
    return lines


def _plain(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def render_markdown(doc: dict[str, Any]) -> str:
    verdict = {True: "**flat: PASS**", False: "**not flat: FAIL**", None: "not judged"}
    paced = doc["paced"]
    lines = [
        f"# Soak: {doc['listeners']:,} listeners for {doc['minutes']:g} min",
        "",
        f"`{doc['command']}`, {doc['date']}; machine {doc['machine']['cores']} cores, load "
        f"average {doc['load_average']['start']} at the start, {doc['load_average']['end']} at "
        f"the end.",
        "",
        f"{paced['paced_requests']:,} paced requests ({paced['paced_rate_per_s']:,.0f}/s) and "
        f"{paced['heartbeats']:,} heartbeats over {paced['phase_s']:.0f} s; samples every "
        f"{doc['sample_s']} s, warm-up {doc['warmup_s']} s. Verdict: {verdict[doc['flat']]}.",
        "",
        "## Verdict (after warm-up)",
        "",
        *verdict_table([Verdict(**v) for v in doc["verdicts"]]),
        "",
        "## Per sample",
        "",
        "Segment p99, segments and errors are of the window that ended at the sample; cores "
        "since the sample before.",
        "",
        *minute_table(doc["rows"]),
        "",
        "## Processes per sample (RSS MiB / open files but sockets / sockets)",
        "",
        *process_table(doc["rows"]),
        "",
    ]
    return "\n".join(lines)


# Plots.

PLOTS = (  # file stem, series name prefix, y label
    ("rss", "RSS ", "RSS (MiB)"),
    ("rss_private", PRIVATE_RSS, "private RSS (MiB)"),
    ("rss_shared", SHARED_RSS, "shared RSS (MiB)"),
    ("lua_heap", LUA_HEAP, "Lua heap (MiB)"),
    ("gate_zones", ZONE_FREE, "free (MiB)"),
    ("open_files", "open files ", "open files (not sockets)"),
    ("sockets", "sockets ", "sockets"),
    ("spool", SPOOL, "bytes (MiB)"),
    ("nginx_cache", NGINX_CACHE, "bytes (MiB)"),
    ("shipper_lag", SHIPPER_LAG, "bytes behind (MiB)"),
    ("stores", STORE, "bytes (MiB)"),
)


def write_plots(
    series: Sequence[Series],
    verdicts: Sequence[Verdict],
    windows: Sequence[dict[str, Any]],
    warmup_s: float,
    out_dir: Path,
) -> list[Path] | None:
    """One PNG per quantity (a panel per process for RSS and open files), with the warm-up's
    end and the limit marked; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    by_name = {v.series: v for v in verdicts}
    written = []
    groups: list[tuple[str, str, list[Series]]] = [
        (stem, ylabel, [s for s in series if s.name.startswith(prefix)])
        for stem, prefix, ylabel in PLOTS
    ]
    for stem, ylabel, members in groups:
        if not members:
            continue
        columns = min(3, len(members))
        rows = -(-len(members) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
        for ax, s in zip(axes.flat, members, strict=False):  # the grid may have spare cells
            scale = MIB if s.unit == "bytes" else 1
            xs = [t / 60 for t, v in s.points if v is not None]
            ys = [v / scale for _, v in s.points if v is not None]
            ax.plot(xs, ys, marker=".")
            top = max(ys, default=0.0)
            verdict = by_name.get(s.name)
            if verdict is not None and verdict.limit is not None:
                ax.axhline(verdict.limit / scale, color="red", linestyle=":", label="limit")
                top = max(top, verdict.limit / scale)
            ax.axvline(warmup_s / 60, color="grey", linestyle="--", label="warm-up end")
            title = s.name + (f": {verdict.result}" if verdict is not None else "")
            ax.set_title(title, fontsize="small")
            ax.set_ylabel(ylabel, fontsize="small")
            ax.set_ylim(0, top * 1.08 or 1.0)  # the limit in view; an all-zero series too
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(members) :]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel("minutes since the load started", fontsize="small")
        fig.tight_layout()
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    written.append(_plot_latency(plt, windows, warmup_s, out_dir / "segment_p99.png", by_name))
    return written


def _plot_latency(plt: Any, windows: Sequence[dict[str, Any]], warmup_s: float, path: Path,
                  by_name: dict[str, Verdict]) -> Path:  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 3.2))
    xs = [(w["from_s"] + 0.5 * _step(windows)) / 60 for w in windows]
    ax.plot(xs, [w["segment_p99_ms"] for w in windows], marker=".", label="segment p99")
    verdict = by_name.get("segment p99 per window")
    if verdict is not None and verdict.limit is not None:
        ax.axhline(verdict.limit, color="red", linestyle=":", label="target")
    ax.axvline(warmup_s / 60, color="grey", linestyle="--", label="warm-up end")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("ms")
    ax.set_xlabel("minutes since the load started")
    ax.set_title("segment p99 per window" + (f": {verdict.result}" if verdict else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _step(windows: Sequence[dict[str, Any]]) -> float:
    return windows[1]["from_s"] - windows[0]["from_s"] if len(windows) > 1 else 0.0
