"""The telemetry benchmark's summary over runs, its targets, and its Markdown report.

Targets (the issue's): the writer sustains at least `TARGET_RATIO` of the driver-only insert
rate (medians over the runs), and no event is lost in any run, on either side.
"""

from __future__ import annotations

from typing import Any

from benchmarks.stats import summarize

PASS, FAIL = "PASS", "FAIL"
TARGET_RATIO = 0.70


def _spread(values: list[float]) -> dict[str, float]:
    s = summarize(values)
    return {"median": s.median, "low": s.low, "high": s.high, "runs": s.runs}


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median (min, max) of each measure over the runs, the ratio, and the targets judged."""
    baseline = [r["baseline"] for r in runs]
    writer = [r["writer"] for r in runs]
    summary: dict[str, Any] = {
        "baseline_events_per_s": _spread([b["events_per_s"] for b in baseline]),
        "writer_events_per_s": _spread([w["events_per_s"] for w in writer]),
        "enqueue_us_p50": _spread([w["enqueue_us"]["p50"] for w in writer]),
        "enqueue_us_p99": _spread([w["enqueue_us"]["p99"] for w in writer]),
        "enqueue_us_max": max(w["enqueue_us"]["max"] for w in writer),
        "loop_lag_ms_p50": _spread([w["loop_lag_ms"]["p50"] for w in writer]),
        "loop_lag_ms_p99": _spread([w["loop_lag_ms"]["p99"] for w in writer]),
        "loop_lag_ms_max": max(w["loop_lag_ms"]["max"] for w in writer),
        "waits_429": _spread([w["waits_429"] for w in writer]),
        "batch_ms_p50": _spread([w["batch_ms"]["p50"] for w in writer]),
        "batch_items_mean": _spread([w["batch_items_mean"] for w in writer]),
        "lost": {
            "baseline": sum(b["lost"] for b in baseline),
            "writer": sum(w["lost"] for w in writer),
        },
        "failed_baseline_inserts": sum(b["failed"] for b in baseline),
        "writer_dropped": sum(w["dropped"] for w in writer),
    }
    ratio = summary["writer_events_per_s"]["median"] / max(
        summary["baseline_events_per_s"]["median"], 1e-9
    )
    summary["ratio"] = round(ratio, 3)
    # Within a run both sides share the machine's load; their ratio shows how it moves.
    per_run = zip(baseline, writer, strict=True)
    summary["ratio_per_run"] = _spread(
        [w["events_per_s"] / max(b["events_per_s"], 1e-9) for b, w in per_run]
    )
    lost = summary["lost"]["baseline"] + summary["lost"]["writer"] + summary["writer_dropped"]
    targets = [
        {
            "name": f"writer >= {TARGET_RATIO:.0%} of the driver-only insert rate",
            "measured": f"{ratio:.2f} ({summary['writer_events_per_s']['median']:.0f} / "
            f"{summary['baseline_events_per_s']['median']:.0f} events/s)",
            "threshold": f">= {TARGET_RATIO:.2f}",
            "result": PASS if ratio >= TARGET_RATIO else FAIL,
        },
        {
            "name": "no event lost",
            "measured": f"writer {summary['lost']['writer']}, baseline "
            f"{summary['lost']['baseline']}, dropped by the writer {summary['writer_dropped']}",
            "threshold": "0",
            "result": PASS if lost == 0 else FAIL,
        },
    ]
    return {"summary": summary, "targets": targets}


def _fmt(spread: dict[str, float], fmt: str = ".0f") -> str:
    if spread["runs"] <= 1:
        return format(spread["median"], fmt)
    return (
        f"{format(spread['median'], fmt)} ({format(spread['low'], fmt)}-"
        f"{format(spread['high'], fmt)})"
    )


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_markdown(doc: dict[str, Any], brief: bool = False) -> str:
    """The report; `brief` is the part printed at the end of a run."""
    s = doc["summary"]
    lines = [
        "| target | measured | threshold | result |",
        "|---|---|---|---|",
        *(
            f"| {t['name']} | {t['measured']} | {t['threshold']} | {t['result']} |"
            for t in doc["targets"]
        ),
        "",
        f"| side | events/s over {s['writer_events_per_s']['runs']} runs: median (min-max) "
        "| lost |",
        "|---|---:|---:|",
        f"| driver alone, {doc['baseline_concurrency']['chosen']} in flight "
        f"| {_fmt(s['baseline_events_per_s'])} | {s['lost']['baseline']} |",
        f"| edge writer | {_fmt(s['writer_events_per_s'])} | {s['lost']['writer']} |",
        "",
        f"Ratio writer / baseline within each run: {_fmt(s['ratio_per_run'], '.2f')}.",
        "",
        f"Writer: enqueue (submit call) p50 {_fmt(s['enqueue_us_p50'])} us, p99 "
        f"{_fmt(s['enqueue_us_p99'])} us, max {s['enqueue_us_max']:.0f} us; event-loop lag p50 "
        f"{_fmt(s['loop_lag_ms_p50'], '.2f')} ms, p99 {_fmt(s['loop_lag_ms_p99'], '.1f')} ms, "
        f"max {s['loop_lag_ms_max']:.0f} ms; 429 waits {_fmt(s['waits_429'])}; batches of "
        f"{_fmt(s['batch_items_mean'])} items, {_fmt(s['batch_ms_p50'])} ms each (p50).",
    ]
    if brief:
        return "\n".join(lines)
    machine = doc["machine"]
    workload = doc["workload"]
    head = [
        f"# Telemetry ingest: {doc['date']}",
        "",
        f"`{doc['command']}`",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu'] or 'unknown CPU'}), "
        f"{machine['memory_gib']:.0f} GiB, Linux {machine['kernel']}, Python "
        f"{machine['python']}; {doc['cql'].get('server', 'CQL')} on "
        f"{doc['cql']['hosts']}:{doc['cql']['port']}, on the same machine.",
        "",
        f"Workload per side and run: {workload['events']} player events of "
        f"{workload['sessions']} sessions in {workload['requests']} requests, "
        f"{workload['listeners']} players at once; "
        + ", ".join(f"{kind} {n}" for kind, n in workload["events_by_type"].items())
        + (
            f"; {workload['deliveries_stored_first']} segment deliveries stored first."
            if workload["deliveries"]
            else "; no segment deliveries (no plays can count)."
        ),
        "",
        "## Targets",
        "",
    ]
    tried = ", ".join(
        f"{t['concurrency']}: {t['events_per_s']:.0f}" for t in doc["baseline_concurrency"]["tried"]
    )
    runs = [
        "",
        f"Baseline concurrency tried (events/s): {tried}.",
        "",
        "## Runs",
        "",
        "CPU in cores busy (1.0 = one core) over each side's run: this process (producer, "
        "writer and driver threads), the Cassandra node, the whole machine.",
        "",
        "| run | side | events | s | events/s | lost | 429 waits | enqueue p99 us "
        "| loop lag p99 ms | batches | store s (writes / reads / claims) | plays | cores "
        "(bench / cassandra / machine) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for record in doc["runs"]:
        for side in record["order"]:
            r = record[side]
            cpu = r["cpu_cores"]
            cores = " / ".join(_cores(cpu[k]) for k in ("benchmark", "cassandra", "machine"))
            if side == "writer":
                store_s = " / ".join(
                    f"{r['store_s'].get(k, 0.0):.1f}" for k in ("writes", "reads", "claims")
                )
                extra = (
                    f"{r['waits_429']} | {r['enqueue_us']['p99']:.0f} "
                    f"| {r['loop_lag_ms']['p99']:.1f} | {r['batches']} | {store_s} "
                    f"| {r['plays_counted']}"
                )
            else:
                extra = "- | - | - | - | - | -"
            lines_run = (
                f"| {record['run']} | {side} | {r['events']} | {r['elapsed_s']:.2f} "
                f"| {r['events_per_s']:.0f} | {r['lost']} | {extra} | {cores} |"
            )
            runs.append(lines_run)
    notes = [f"Note: {n}" for n in doc.get("notes", [])]
    return "\n".join([*head, *lines, *runs, "", *notes]) + "\n"
