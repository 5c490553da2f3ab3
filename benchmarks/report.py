"""The listener benchmark's report: one JSON document, rendered to Markdown and a PNG plot.

The JSON is the record (every number the Markdown shows, plus per-second time lines); the
Markdown is for pull requests and the README; the plot shows latency over time per phase.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

PASS, FAIL, UNKNOWN = "PASS", "FAIL", "n/a"


def machine_info() -> dict[str, Any]:
    import aiohttp
    import uvloop

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            names = (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
            model = next(names, "")
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem_gib = int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        mem_gib = 0.0
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "uvloop": getattr(uvloop, "__version__", "?"),
    }


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def _spread(summary: dict[str, Any] | None, fmt: str = ".0f") -> str:
    """`median (min-max)`, or just the value for a single run."""
    if not summary:
        return "-"
    if summary.get("runs", 1) <= 1:
        return format(summary["median"], fmt)
    return (
        f"{format(summary['median'], fmt)} ({format(summary['low'], fmt)}-"
        f"{format(summary['high'], fmt)})"
    )


def _errors(by_kind: dict[str, int]) -> str:
    if not by_kind:
        return "0"
    return ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))


def _rate_section(rate: dict[str, Any]) -> list[str]:
    lines = [
        "## Maximum rate per endpoint",
        "",
        f"{rate['how']}; {rate['runs']} run(s), median (min-max) where more than one.",
        "",
        "CPU in cores busy (1.0 = one core): the server's processes, the load generator's, and "
        "the whole machine's (the rest is other work on the machine). CPU per request (server "
        "and client, microseconds of CPU per successful request) moves less than requests/s "
        "when the machine is shared.",
        "",
        "| server | endpoint | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | Mbit/s "
        "| server CPU | server us/req | server RSS MiB | client CPU | client us/req "
        "| machine CPU |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rate["summary"]:
        lines.append(
            f"| {row['label']} | {row['endpoint']} | {_spread(row['requests_per_s'])} "
            f"| {_spread(row['p50_ms'], '.2f')} | {_spread(row['p90_ms'], '.2f')} "
            f"| {_spread(row['p99_ms'], '.2f')} | {_num(row['max_ms'], '.1f')} "
            f"| {_errors(row['errors_by_kind'])} | {_spread(row['mbit_per_s'])} "
            f"| {_spread(row['server_cpu_cores'], '.2f')} "
            f"| {_spread(row.get('server_us_per_request'))} "
            f"| {_num(row['server_rss_mib'], '.0f')} "
            f"| {_spread(row['client_cpu_cores'], '.2f')} "
            f"| {_spread(row.get('client_us_per_request'))} "
            f"| {_spread(row.get('machine_cpu_cores'), '.2f')} |"
        )
    if rate.get("ratios"):
        lines += [
            "",
            "| ours vs baseline | ours req/s | baseline req/s | ratio |",
            "|---|---:|---:|---:|",
        ]
        for r in rate["ratios"]:
            lines.append(
                f"| {r['name']} | {r['ours']:.0f} | {r['baseline']:.0f} | {r['ratio']:.2f} |"
            )
    for note in rate.get("notes", []):
        lines += ["", f"Note: {note}"]
    return lines


def _paced_section(paced: dict[str, Any]) -> list[str]:
    speed = paced["speed"]
    held = paced["held_listeners"]
    lines = [
        "## Real-time paced listeners",
        "",
        f"{paced['listeners']} listeners arriving over {paced['ramp_s']:.0f} s, run for "
        f"{paced['duration_s']:.0f} s, speed x{speed:g}, buffer {paced['buffer_s']:.0f} s, "
        f"{paced['client_processes']} client process(es), {paced['connections']} connections.",
        "",
        f"Listeners held within target (p99 segment < {paced['target_p99_ms']:.0f} ms, zero "
        f"errors, per {paced['window_s']:.0f} s window): **{'≥ ' if paced['held_all'] else ''}"
        f"{held}**"
        + (
            f" (equivalent to {paced['equivalent_listeners']} real-time listeners at x{speed:g})"
            if speed != 1
            else ""
        )
        + f"; late segments (stalls): {paced['late_segments']}.",
        "",
        "| endpoint | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | Mbit/s |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, s in paced["endpoints"].items():
        lat = s["latency_ms"]
        lines.append(
            f"| {name} | {s['requests']} | {s['requests_per_s']:.0f} | {lat['p50']:.2f} "
            f"| {lat['p90']:.2f} | {lat['p99']:.2f} | {lat['max']:.1f} "
            f"| {_errors(s['errors_by_kind'])} | {s['mbit_per_s']:.1f} |"
        )
    cpu, client = paced["server_cpu"], paced["client_cpu"]
    machine = paced.get("machine_cpu", {}).get("cpu_cores_mean")
    lines += [
        "",
        f"Edge: {_num(cpu['cpu_cores_mean'], '.2f')} cores mean, "
        f"{_num(cpu['cpu_cores_max'], '.2f')} max, RSS {_num(cpu['rss_mib_max'])} MiB max. "
        f"Load generator: {_num(client['cpu_cores_mean'], '.2f')} cores mean "
        f"({paced['generator_cpu_s']:.1f} CPU-s in its processes). Whole machine: "
        f"{_num(machine, '.2f')} cores busy.",
    ]
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    lines = [
        f"# Listener load: {doc['date']}",
        "",
        f"`{doc['command']}`",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu'] or 'unknown CPU'}), "
        f"{machine['memory_gib']:.0f} GiB, Linux {machine['kernel']}, Python "
        f"{machine['python']}, aiohttp {machine['aiohttp']}, uvloop {machine['uvloop']}. "
        f"Server and load generator share the machine.",
        "",
    ]
    if doc.get("targets"):
        lines += [
            "## Targets",
            "",
            "| target | measured | threshold | result |",
            "|---|---|---|---|",
        ]
        for t in doc["targets"]:
            lines.append(f"| {t['name']} | {t['measured']} | {t['threshold']} | {t['result']} |")
        lines.append("")
    if doc.get("rate"):
        lines += [*_rate_section(doc["rate"]), ""]
    if doc.get("paced"):
        lines += [*_paced_section(doc["paced"]), ""]
    telemetry = doc.get("edge", {}).get("telemetry")
    if telemetry:
        lines += [
            f"Edge telemetry over the whole run (CMCD samples, segment deliveries, player "
            f"events): {telemetry['written']:,.0f} items written, {telemetry['dropped']:,.0f} "
            f"dropped.",
            "",
        ]
    return "\n".join(lines)


def plot_latency(doc: dict[str, Any], path: Path) -> Path | None:
    """p50 and p99 per second of every phase (and listeners in paced mode); None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        return None
    panels: list[tuple[str, list[tuple[str, list[dict[str, Any]]]], list[dict[str, Any]]]] = []
    if doc.get("paced"):
        paced = doc["paced"]
        series = [(name, paced["timeline"][name]) for name in ("segment", "playlist", "key")]
        panels.append(("paced listeners", [s for s in series if s[1]], paced["active"]))
    if doc.get("rate"):
        by_endpoint: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
        for phase in doc["rate"]["phases"]:
            if phase["run"] == 1:  # one run per line keeps the plot legible
                by_endpoint.setdefault(phase["endpoint"], []).append(
                    (phase["label"], phase["timeline"])
                )
        panels += [(f"max rate: {name}", series, []) for name, series in by_endpoint.items()]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, (title, series, active) in zip(axes[:, 0], panels, strict=True):
        for name, timeline in series:
            xs = [p["second"] for p in timeline if p["ok"]]
            line = ax.plot(
                xs, [p["p99_ms"] for p in timeline if p["ok"]], marker=".", label=f"{name} p99"
            )
            ax.plot(
                xs,
                [p["p50_ms"] for p in timeline if p["ok"]],
                linestyle="--",
                marker=".",
                color=line[0].get_color(),
                label=f"{name} p50",
            )
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("latency (ms)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if active:
            twin = ax.twinx()
            twin.plot(
                [a["second"] for a in active],
                [a["listeners"] for a in active],
                color="grey",
                alpha=0.6,
                label="listeners",
            )
            twin.set_ylabel("listeners")
            twin.legend(loc="upper right", fontsize="small")
        ax.legend(loc="upper left", fontsize="small")
    axes[-1, 0].set_xlabel("seconds since the phase started")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_reports(doc: dict[str, Any], out_dir: Path, stem: str = "listeners") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_json(out_dir / f"{stem}.json", doc)]
    markdown = out_dir / f"{stem}.md"
    markdown.write_text(render_markdown(doc))
    written.append(markdown)
    png = plot_latency(doc, out_dir / f"{stem}.png")
    if png is not None:
        written.append(png)
    return written
