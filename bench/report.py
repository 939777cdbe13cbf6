"""Write docs/benchmarks.md and docs/benchmarks.png from one run in bench/results/results.jsonl.

    .venv/bin/python bench/report.py            # the last finished run
    .venv/bin/python bench/report.py RUN_ID

bench/run.py calls it at the end of a run that meets the issue's method. Every number is the
median of the run's rounds, shown next to the rounds themselves; ratios compare medians of
the same run. The section on where the time goes comes from the newest finished run of
bench/profile.py in bench/results/profile.jsonl, when there is one.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "results.jsonl"
MARKDOWN = REPO / "docs" / "benchmarks.md"
CHART = REPO / "docs" / "benchmarks.png"
PROFILE = REPO / "bench" / "results" / "profile.jsonl"

TITLES = {
    "a": "(a) 1 connection, 32 B text, K=1",
    "b": "(b) 100 connections, 32 B text, K=1",
    "c": "(c) 100 connections, 256 B text, K=16",
    "d": "(d) 10 connections, 64 KiB binary, K=1",
    "e": "(e) 1 connection, 1 MiB binary, K=1",
    "f": "(f) idle connections",
    "g": "(g) as (c), with permessage-deflate",
    "h-b": "(h) clients, as (b), against a C echo server",
    "h-c": "(h) clients, as (c), against a C echo server",
}
LABELS = {
    "fullduplex-callbacks": "fullduplex, callback API",
    "node": "Node ws",
    "picows": "picows+uvloop",
    "c-echo": "C echo server (ceiling)",
}
COLORS = {
    "fullduplex": "#d62728",
    "fullduplex-callbacks": "#ff7f0e",
    "picows": "#1f77b4",
    "websockets": "#2ca02c",
    "aiohttp": "#9467bd",
    "node": "#8c564b",
    "c-echo": "#7f7f7f",
}

CALLBACKS = "fullduplex-callbacks"

Results = dict[tuple[str, str], list[dict[str, Any]]]


def load(
    path: Path, run_id: str | None
) -> tuple[dict[str, Any], Results, list[dict[str, Any]], float | None]:
    """The run's header, its successful rounds by (cell, server), its failures, its duration."""
    runs: dict[str, dict[str, Any]] = {}
    ends: dict[str, float] = {}
    rounds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["type"] == "run":
            runs[entry["run_id"]] = entry
        elif entry["type"] == "run_end":
            ends[entry["run_id"]] = entry["elapsed_s"]
        else:
            rounds[entry["run_id"]].append(entry)
    if run_id is None:
        finished = [r for r in runs if r in ends and not runs[r]["params"].get("quick")]
        if not finished:
            raise SystemExit(f"no finished full run in {path}")
        run_id = finished[-1]
    if run_id not in runs:
        raise SystemExit(f"no run {run_id} in {path}")
    results: Results = defaultdict(list)
    failures = []
    for entry in rounds[run_id]:
        if entry["ok"]:
            results[entry["cell"], entry["server"]].append(entry)
        else:
            failures.append(entry)
    return runs[run_id], results, failures, ends.get(run_id)


def median(results: Results, cell: str, server: str, key: str) -> float | None:
    values = [r[key] for r in results.get((cell, server), []) if r.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(
    results: Results, cell: str, key: str, other: str, ours_name: str = "fullduplex"
) -> float | None:
    ours, theirs = median(results, cell, ours_name, key), median(results, cell, other, key)
    return ours / theirs if ours is not None and theirs else None


# --- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    text: str
    measure: Callable[[Results], float | None]
    threshold: float
    at_most: bool = False
    unit: str = "x"

    def evaluate(self, results: Results) -> tuple[str, str]:
        value = self.measure(results)
        if value is None:
            return "not measured", "?"
        shown = f"{value:.2f} {self.unit}".strip() if self.unit != "x" else f"{value:.2f}x"
        met = value <= self.threshold if self.at_most else value >= self.threshold
        return shown, "yes" if met else "**no**"


TARGETS = [
    Target(
        "(c) msgs/s >= 1.3x picows+uvloop", lambda r: ratio(r, "c", "msgs_per_s", "picows"), 1.3
    ),
    Target(
        "(b) msgs/s >= 1.2x picows+uvloop", lambda r: ratio(r, "b", "msgs_per_s", "picows"), 1.2
    ),
    Target("(d) msgs/s >= picows+uvloop", lambda r: ratio(r, "d", "msgs_per_s", "picows"), 1.0),
    Target("(e) msgs/s >= picows+uvloop", lambda r: ratio(r, "e", "msgs_per_s", "picows"), 1.0),
    Target(
        "(a) server CPU µs/msg <= picows+uvloop (fullduplex ÷ picows)",
        lambda r: ratio(r, "a", "cpu_us_per_msg", "picows"),
        1.0,
        at_most=True,
    ),
    Target(
        "(f) <= 6 KiB per idle connection",
        lambda r: median(r, "f", "fullduplex", "kib_per_connection"),
        6.0,
        at_most=True,
        unit="KiB",
    ),
    Target(
        "(b) high-level API >= 2x websockets",
        lambda r: ratio(r, "b", "msgs_per_s", "websockets"),
        2.0,
    ),
    Target(
        "(b) high-level API >= 1.2x aiohttp", lambda r: ratio(r, "b", "msgs_per_s", "aiohttp"), 1.2
    ),
    Target("(a) high-level API >= aiohttp", lambda r: ratio(r, "a", "msgs_per_s", "aiohttp"), 1.0),
    Target(
        "(c) high-level API >= 2x websockets",
        lambda r: ratio(r, "c", "msgs_per_s", "websockets"),
        2.0,
    ),
    Target("(c) high-level API >= aiohttp", lambda r: ratio(r, "c", "msgs_per_s", "aiohttp"), 1.0),
    Target(
        "(b) callback API msgs/s >= picows+uvloop (aim: 1.2x)",
        lambda r: ratio(r, "b", "msgs_per_s", "picows", CALLBACKS),
        1.0,
    ),
    Target(
        "(a) callback API server CPU µs/msg <= picows+uvloop (callback API ÷ picows)",
        lambda r: ratio(r, "a", "cpu_us_per_msg", "picows", CALLBACKS),
        1.0,
        at_most=True,
    ),
]


# --- markdown -----------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _rounds(results: Results, cell: str, server: str, key: str, digits: int = 0) -> str:
    return " / ".join(_number(r.get(key), digits) for r in results.get((cell, server), []))


def _servers(results: Results, cell: str) -> list[str]:
    return [s for s in COLORS if (cell, s) in results]


def echo_table(results: Results, cell: str) -> list[str]:
    lines = [
        "| server | msgs/s | rounds | fullduplex ÷ it | p50 µs | p99 µs | p99.9 µs "
        "| server CPU µs/msg | server CPU % | RSS MiB | loadgen CPU % | background CPU % |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for server in _servers(results, cell):
        rows = results[cell, server]
        is_reference = server in ("fullduplex", "c-echo")
        vs = None if is_reference else ratio(results, cell, "msgs_per_s", server)
        latency = {
            k: statistics.median(r["latency_us"][k] for r in rows) for k in ("p50", "p99", "p99_9")
        }
        rss = median(results, cell, server, "rss_kib")
        lines.append(
            f"| {LABELS.get(server, server)} "
            f"| {_number(median(results, cell, server, 'msgs_per_s'))} "
            f"| {_rounds(results, cell, server, 'msgs_per_s')} | {_number(vs, 2) if vs else '—'} "
            f"| {_number(latency['p50'])} | {_number(latency['p99'])} "
            f"| {_number(latency['p99_9'])} "
            f"| {_number(median(results, cell, server, 'cpu_us_per_msg'), 1)} "
            f"| {_number(median(results, cell, server, 'measured_cpu_pct'))} "
            f"| {_number(rss / 1024 if rss else None, 1)} "
            f"| {_number(median(results, cell, server, 'driver_cpu_pct'))} "
            f"| {_number(median(results, cell, server, 'background_cpu_pct'))} |"
        )
    return lines


def idle_table(results: Results) -> list[str]:
    lines = [
        "| server | KiB per connection | rounds | time to open them, s | rounds "
        "| RSS MiB, all open |",
        "|---|--:|---|--:|---|--:|",
    ]
    for server in _servers(results, "f"):
        rss = median(results, "f", server, "rss_kib")
        lines.append(
            f"| {LABELS.get(server, server)} "
            f"| {_number(median(results, 'f', server, 'kib_per_connection'), 2)} "
            f"| {_rounds(results, 'f', server, 'kib_per_connection', 2)} "
            f"| {_number(median(results, 'f', server, 'open_s'), 2)} "
            f"| {_rounds(results, 'f', server, 'open_s', 2)} "
            f"| {_number(rss / 1024 if rss else None, 0)} |"
        )
    return lines


def client_table(results: Results, cell: str) -> list[str]:
    lines = [
        "| client | msgs/s | rounds | fullduplex ÷ it | client CPU µs/msg | rounds "
        "| client CPU % | echo server CPU % | background CPU % |",
        "|---|--:|---|--:|--:|---|--:|--:|--:|",
    ]
    for client in _servers(results, cell):
        vs = ratio(results, cell, "msgs_per_s", client) if client != "fullduplex" else None
        lines.append(
            f"| {LABELS.get(client, client)} "
            f"| {_number(median(results, cell, client, 'msgs_per_s'))} "
            f"| {_rounds(results, cell, client, 'msgs_per_s')} | {_number(vs, 2) if vs else '—'} "
            f"| {_number(median(results, cell, client, 'cpu_us_per_msg'), 1)} "
            f"| {_rounds(results, cell, client, 'cpu_us_per_msg', 1)} "
            f"| {_number(median(results, cell, client, 'measured_cpu_pct'))} "
            f"| {_number(median(results, cell, client, 'driver_cpu_pct'))} "
            f"| {_number(median(results, cell, client, 'background_cpu_pct'))} |"
        )
    return lines


def markdown(
    header: dict[str, Any],
    results: Results,
    failures: list[dict[str, Any]],
    elapsed: float | None,
    profile: Profile | None = None,
) -> str:
    machine, versions, params = header["machine"], header["versions"], header["params"]
    out = [
        "# Benchmarks",
        "",
        f"Generated by `bench/run.py` and `bench/report.py` from run `{header['run_id']}` "
        f"({header['started']}); do not edit by hand. The raw rounds are in "
        "[`bench/results/results.jsonl`](../bench/results/results.jsonl).",
        "",
        "## How to run",
        "",
        "```sh",
        "make bench                                   # every cell, every server: about 20 minutes",
        ".venv/bin/python bench/run.py --cells b,c --servers fullduplex,picows",
        ".venv/bin/python bench/run.py --quick        # one 1-second round of everything; no docs",
        ".venv/bin/python bench/report.py [RUN_ID]    # rewrite this page from results.jsonl",
        "```",
        "",
        f"This run: `{header['command']}`" + (f", {elapsed / 60:.0f} minutes." if elapsed else "."),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu_model']}, {machine['cores']} cores"
        + (f" ({machine['hypervisor']} guest)" if machine.get("hypervisor") else "")
        + " |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| kernel | {machine['kernel']} |",
        f"| Python, Node | {machine['python']}, {machine['node']} |",
        f"| load average at start | {' '.join(machine['loadavg_at_start'])} |",
        f"| fullduplex | {versions['fullduplex']} at `{versions['fullduplex_git']}`, C speedups "
        f"{'on' if versions['fullduplex_speedups'] else 'off'} |",
        f"| compared | picows {versions['picows']}, websockets {versions['websockets']}, aiohttp "
        f"{versions['aiohttp']}, uvloop {versions['uvloop']}, ws {versions['ws']} with bufferutil "
        f"{versions['bufferutil']} |",
        "",
        "## Method",
        "",
        f"- Each server runs pinned to core {params['server_core']}, the load generator "
        f"(`bench/loadgen.c`: C, epoll, one thread) to core {params['driver_core']}, both at "
        f"priority `{params['priority']}`. {params['rounds']} rounds per cell and server, each a "
        "fresh set of "
        f"connections, {params['warmup_s']} s of warmup, then {params['duration_s']} s measured. "
        "Tables show medians, then every round.",
        "- The load generator keeps K messages in flight per connection, checks every echo "
        "byte for byte, and measures latency from queueing a message to the last byte of its echo.",
        "- Server CPU is utime+stime from /proc/PID/stat over the measured window, divided by the "
        "messages echoed in it; RSS is VmRSS at the end of the window.",
        "- The last row of (a) to (e), one short round of the load generator against "
        "`bench/echo_server.c` (C, epoll), is the ceiling of the harness itself: the load "
        "generator drives at least that much. *loadgen CPU %* rises when a server is slow, "
        "because the load generator then wakes for every small read. *background CPU %* is "
        "what everything else on the machine used meanwhile (% of one core): high values mean "
        "a noisy round.",
        f"- Every server: defaults, except a 16 MiB message limit and compression off (on in (g)). "
        f"The fullduplex, websockets and aiohttp servers and clients run on {params['loop']}; "
        "picows on uvloop.",
        "- (f): a fresh server per round opens "
        f"{params['idle_connections']:,} connections, 100 handshakes at a time; KiB per connection "
        "is the growth of the server's RSS, 1 s after the last one opened, over their number.",
        "- (h): the Python clients run on the measured core against `bench/echo_server.c` (C, "
        "epoll), with their own CPU time per message.",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|--:|:-:|",
    ]
    for target in TARGETS:
        value, met = target.evaluate(results)
        out.append(f"| {target.text} | {value} | {met} |")
    out += ["", "## Results", "", "![msgs/s per cell and server](benchmarks.png)", ""]
    for cell, title in TITLES.items():
        if not any(c == cell for c, _ in results):
            continue
        out += [f"### {title}", ""]
        if cell == "f":
            out += idle_table(results)
        elif cell.startswith("h-"):
            out += client_table(results, cell)
        else:
            out += echo_table(results, cell)
        out.append("")
    if profile is not None:
        out += profile_section(*profile)
    out += [
        "## Notes",
        "",
        "- picows is a frame-level library: its echo (`bench/servers/picows_server.py`) sends each "
        "frame back as it comes, does not reassemble messages, and does not check that text is "
        "UTF-8; its `max_frame_size` limits frames, not messages. The other servers do all of "
        "that; fullduplex keeps UTF-8 validation, masking checks and limits on in every cell. "
        "picows has no "
        "permessage-deflate, so it is not in (g).",
        "- Node ws loads bufferutil for masking; it checks UTF-8 with Node's `buffer.isUtf8`.",
    ]
    if params["loop"] != "uvloop":
        out.append(
            f"- This run put fullduplex, websockets and aiohttp on {params['loop']}, not uvloop, "
            "while picows ran on uvloop: compare fullduplex with picows with that in mind."
        )
    background = [
        r["background_cpu_pct"]
        for rows in results.values()
        for r in rows
        if "background_cpu_pct" in r
    ]
    if background and statistics.median(background) > 20:
        out.append(
            f"- Other work shared the machine during this run (background CPU: median "
            f"{statistics.median(background):.0f}% of a core): rounds vary more than on a quiet "
            "machine, and ratios measured side by side are steadier than absolute numbers."
        )
    if failures:
        out += [
            "",
            "### Failed rounds",
            "",
            "| cell | server | round | error |",
            "|---|---|--:|---|",
        ]
        for failure in failures:
            error = failure["error"].replace("|", "\\|").replace("\n", " ")[:300]
            out.append(
                f"| {failure['cell']} | {failure['server']} | {failure['round'] or 'start'} "
                f"| {error} |"
            )
    return "\n".join(out) + "\n"


# --- where the time goes (bench/profile.py) ------------------------------------------------

Profile = tuple[dict[str, Any], dict[tuple[str, str], dict[str, Any]]]
PROFILE_CELLS = ("b", "c", "e")
OBJECT_LABELS = {
    "interpreter": "… interpreter (libpython)",
    "uvloop": "… uvloop",
    "fullduplex": "… fullduplex `_speedups`",
    "picows": "… picows' extension",
    "libc": "… libc",
    "other": "… other (`_asyncio`, `_struct`, ld.so …)",
}
OBJECT_NAMES = {
    "interpreter": "the interpreter (libpython)",
    "uvloop": "uvloop",
    "fullduplex": "fullduplex's `_speedups`",
    "picows": "picows' extension",
    "libc": "libc",
    "other": "other objects",
}
EVENT_LOOP_FRAME = "Runner.run (asyncio/runners.py)"


def load_profile(path: Path) -> Profile | None:
    """The newest finished run of bench/profile.py: its header and records by (cell, server)."""
    if not path.exists():
        return None
    runs: dict[str, dict[str, Any]] = {}
    finished: list[str] = []
    records: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["type"] == "run":
            runs[entry["run_id"]] = entry
        elif entry["type"] == "run_end":
            finished.append(entry["run_id"])
        elif entry["type"] == "profile":
            records[entry["run_id"]][entry["cell"], entry["server"]] = entry
    finished = [run_id for run_id in finished if run_id in runs]
    if not finished:
        return None
    return runs[finished[-1]], records[finished[-1]]


def _get(record: dict[str, Any] | None, *keys: str) -> Any:
    value: Any = record
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _profile_ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if ours is not None and theirs else "—"


def profile_table(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> list[str]:
    rows: list[tuple[str, tuple[str, ...], int]] = [
        ("messages/s (no tool attached)", ("native", "msgs_per_s"), 0),
        ("CPU µs, user", ("native", "cpu_user_us_per_msg"), 1),
        ("CPU µs, system (kernel)", ("native", "cpu_system_us_per_msg"), 1),
        ("CPU µs, total", ("native", "cpu_us_per_msg"), 1),
        ("minor page faults", ("native", "minor_faults_per_msg"), 2),
        ("system calls (perf, no strace)", ("syscalls_counted", "syscalls_per_msg"), 2),
        ("… of which epoll waits", ("syscalls_counted", "epoll_waits_per_msg"), 2),
        ("system calls (under strace)", ("syscalls", "syscalls_per_msg"), 2),
    ]
    kinds: dict[str, None] = {}
    for record in (ours, theirs):
        for kind, count in (_get(record, "syscalls", "syscalls_by_kind_per_msg") or {}).items():
            if count >= 0.01:
                kinds[kind] = None
    rows += [(f"… `{kind}`", ("syscalls", "syscalls_by_kind_per_msg", kind), 2) for kind in kinds]
    rows.append(
        ("user-space instructions (callgrind)", ("instructions", "instructions_per_msg"), 0)
    )
    rows += [
        (label, ("instructions", "instructions_by_kind_per_msg", kind), 0)
        for kind, label in OBJECT_LABELS.items()
    ]
    lines = [
        "| per echoed message | fullduplex | picows+uvloop | fullduplex ÷ picows |",
        "|---|--:|--:|--:|",
    ]
    for label, keys, digits in rows:
        mine, other = _get(ours, *keys), _get(theirs, *keys)
        if keys[0] == "syscalls" and len(keys) == 3:
            mine, other = mine or 0.0, other or 0.0
        lines.append(
            f"| {label} | {_number(mine, digits)} | {_number(other, digits)} "
            f"| {_profile_ratio(mine, other)} |"
        )
    return lines


def profile_findings(cell: str, ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """A few sentences read off the numbers of one cell."""
    findings = []
    cpu = [_get(r, "native", "cpu_us_per_msg") for r in (ours, theirs)]
    system = [_get(r, "native", "cpu_system_us_per_msg") for r in (ours, theirs)]
    user = [_get(r, "native", "cpu_user_us_per_msg") for r in (ours, theirs)]
    if all(cpu) and None not in system and None not in user:
        findings.append(
            f"In ({cell}) fullduplex spends {cpu[0]:,.1f} µs of CPU per message, "
            f"{cpu[0] / cpu[1]:.2f}x picows' {cpu[1]:,.1f}: {user[0] / user[1]:.2f}x in user "
            f"space ({user[0]:,.1f} vs {user[1]:,.1f} µs) and {system[0] / system[1]:.2f}x in "
            f"the kernel ({system[0]:,.1f} vs {system[1]:,.1f} µs). The kernel's share of the "
            f"server's time is {100 * system[0] / cpu[0]:.0f}% for fullduplex and "
            f"{100 * system[1] / cpu[1]:.0f}% for picows."
        )
    calls = [_get(r, "syscalls_counted", "syscalls_per_msg") for r in (ours, theirs)]
    waits = [_get(r, "syscalls_counted", "epoll_waits_per_msg") for r in (ours, theirs)]
    traced = [_get(r, "syscalls", "syscalls_per_msg") for r in (ours, theirs)]
    if all(calls) and None not in waits and all(traced):
        similar = abs(traced[0] - traced[1]) <= 0.1 * max(traced)
        findings.append(
            (
                f"Under strace both make about {traced[0]:.2f} system calls per message"
                if similar
                else f"Under strace fullduplex makes {traced[0]:.2f} system calls per message "
                f"and picows {traced[1]:.2f}"
            )
            + f"; without strace, which changes how many messages one epoll wakeup finds, "
            f"{calls[0]:.2f} and {calls[1]:.2f}, of which {waits[0]:.2f} and {waits[1]:.2f} "
            "epoll waits."
        )
    instructions = [_get(r, "instructions", "instructions_per_msg") for r in (ours, theirs)]
    by_kind = [_get(r, "instructions", "instructions_by_kind_per_msg") for r in (ours, theirs)]
    if all(instructions) and all(by_kind):
        gap = instructions[0] - instructions[1]
        differences = {kind: by_kind[0][kind] - by_kind[1][kind] for kind in by_kind[0]}
        largest = max(differences, key=lambda kind: differences[kind])
        interpreter = [100 * by_kind[i]["interpreter"] / instructions[i] for i in (0, 1)]
        findings.append(
            f"In user space fullduplex executes {instructions[0]:,} instructions per message, "
            f"{instructions[0] / instructions[1]:.2f}x picows' {instructions[1]:,}; the "
            f"interpreter runs {interpreter[0]:.0f}% of fullduplex's and {interpreter[1]:.0f}% "
            f"of picows'."
            + (
                f" The largest difference is in {OBJECT_NAMES[largest]}: "
                f"{differences[largest]:+,} instructions, {100 * differences[largest] / gap:.0f}% "
                "of the gap."
                if gap > 0
                else ""
            )
        )
        size = {"b": 32, "c": 256, "e": 2**20}[cell]
        if max(by_kind[0]["libc"], by_kind[1]["libc"]) >= size / 2 >= 2**16:
            findings.append(
                "callgrind counts every byte moved by `rep movsb`, which glibc's memcpy uses "
                "for large copies, as one instruction: libc's count here is mostly bytes "
                f"copied ({by_kind[0]['libc'] / size:.1f} vs {by_kind[1]['libc'] / size:.1f} "
                "times the message), and much cheaper than as many ordinary instructions."
            )
    top = _get(ours, "python", "top_self")
    if top:
        named = [entry for entry in top if entry["function"] != EVENT_LOOP_FRAME]
        loop = sum(entry["self_pct"] for entry in top if entry["function"] == EVENT_LOOP_FRAME)
        if named:
            findings.append(
                f"py-spy finds fullduplex's Python code busiest in `{named[0]['function']}` "
                f"({named[0]['self_pct']:.0f}% of samples)"
                + (
                    f"; {loop:.0f}% are in the event loop's own C code (uvloop, system calls)."
                    if loop
                    else "."
                )
            )
    return findings


def profile_section(
    header: dict[str, Any], records: dict[tuple[str, str], dict[str, Any]]
) -> list[str]:
    params, machine = header["params"], header["machine"]
    out = [
        "## Where the time goes (per message, vs picows)",
        "",
        f"Generated from `bench/profile.py` run `{header['run_id']}` ({header['started']}, "
        f"fullduplex at `{header['git']}`, {machine['cpu_model']}, {machine['cores']} cores, "
        f"load average {' '.join(machine['loadavg_at_start'])} at start): "
        f"`{header['command']}`. The records are in "
        "[`bench/results/profile.jsonl`](../bench/results/profile.jsonl). To reproduce:",
        "",
        "```sh",
        ".venv/bin/python bench/profile.py    # about 5 minutes; appends to profile.jsonl",
        ".venv/bin/python bench/report.py     # rewrite this page",
        "```",
        "",
        "Each server runs as above (core 1, uvloop, the load generator on core 0), and is "
        "measured in separate windows of a few seconds: CPU time and page faults from "
        f"/proc/PID/stat with nothing attached ({params['native_s']:g} s); system calls "
        "counted by `perf stat` (tracepoints, the server is not stopped) and by kind by "
        f"`strace -c -f` (which slows the server: counts only, {params['strace_s']:g} s); "
        f"fullduplex's Python functions sampled by `py-spy record -r {params['pyspy_rate_hz']}` "
        f"({params['pyspy_s']:g} s); user-space instructions from "
        "`valgrind --tool=callgrind --instr-atstart=no`, switched on and off with "
        f"`callgrind_control -i` ({params['callgrind_s']:g} s), each object file's exclusive "
        "instructions. For the system calls and instructions the load generator is stopped "
        "and the server left to drain before and after the window, which then holds an "
        "exact number of messages: the bytes the server wrote in it over the size of one "
        "echo. Instruction and system call counts repeat from run to run; CPU times vary "
        "with what else the machine does.",
        "",
    ]
    for cell in PROFILE_CELLS:
        ours, theirs = records.get((cell, "fullduplex")), records.get((cell, "picows"))
        if ours is None and theirs is None:
            continue
        out += [f"### {TITLES[cell]}", ""]
        out += profile_table(ours, theirs)
        out.append("")
        for record in (ours, theirs):
            if record is not None and "error" in record:
                out += [f"{record['server']} failed: {record['error']}", ""]
        if ours is not None and theirs is not None:
            out += [" ".join(profile_findings(cell, ours, theirs)), ""]
        top = _get(ours, "python", "top_self")
        if top:
            out += [
                f"fullduplex's Python functions by self time (py-spy, "
                f"{_get(ours, 'python', 'samples'):,} samples while busy). A sample is "
                "charged to the innermost Python function, including the C code and system "
                "calls it is in: `Runner.run` is uvloop's own loop and its reads, `_flush` "
                "includes its `writev`.",
                "",
                "| function | self % |",
                "|---|--:|",
            ]
            out += [f"| `{entry['function']}` | {entry['self_pct']:.1f} |" for entry in top]
            out.append("")
    return out


# --- chart --------------------------------------------------------------------------------------


def chart(results: Results, path: Path, run_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in TITLES if any(k == c for k, _ in results)]
    columns = 3
    rows = (len(cells) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(15, 4.2 * rows), squeeze=False)
    for ax, cell in zip(axes.flat, cells, strict=False):
        key = "kib_per_connection" if cell == "f" else "msgs_per_s"
        servers = [s for s in _servers(results, cell) if s != "c-echo"]
        medians = [median(results, cell, s, key) or 0 for s in servers]
        lows = [
            m - min(r[key] for r in results[cell, s]) for m, s in zip(medians, servers, strict=True)
        ]
        highs = [
            max(r[key] for r in results[cell, s]) - m for m, s in zip(medians, servers, strict=True)
        ]
        bars = ax.bar(
            [LABELS.get(s, s) for s in servers],
            medians,
            yerr=[lows, highs],
            capsize=3,
            color=[COLORS[s] for s in servers],
        )
        ax.bar_label(
            bars, labels=[f"{m:,.0f}" if m >= 100 else f"{m:.2f}" for m in medians], fontsize=8
        )
        ax.set_title(TITLES[cell], fontsize=10)
        ax.set_ylabel("KiB per idle connection (lower is better)" if cell == "f" else "messages/s")
        ax.tick_params(axis="x", labelsize=8, labelrotation=20)
        ax.margins(y=0.15)
    for ax in list(axes.flat)[len(cells) :]:
        ax.set_visible(False)
    figure.suptitle(
        f"fullduplex benchmark, run {run_id}: medians, bars span the rounds", fontsize=12
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(run_id: str | None = None, results_path: Path = RESULTS) -> None:
    """Write the page for a run of every cell; for a run of some cells, the page of the last
    run of every cell with that run's tables added as a section of their own."""
    header, results, failures, elapsed = load(results_path, run_id)
    newer = None
    if not covers_every_cell(header):
        newer = header, results, failures
        header, results, failures, elapsed = load(results_path, last_full_run(results_path))
    MARKDOWN.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(header, results, failures, elapsed, load_profile(PROFILE))
    if newer is not None:
        text += "\n" + "\n".join(partial_section(*newer)) + "\n"
    MARKDOWN.write_text(text + kept_sections(MARKDOWN))
    chart(results, CHART, header["run_id"])


def kept_sections(path: Path) -> str:
    """The sections other benchmarks write into the page (bench/realtime/run.py's), between
    ``<!-- NAME: begin -->`` and ``<!-- NAME: end -->`` lines: a rewrite keeps them."""
    if not path.exists():
        return ""
    pattern = re.compile(r"^<!-- ([\w/.-]+): begin -->$.*?^<!-- \1: end -->$", re.S | re.M)
    return "".join(f"\n{match.group(0)}\n" for match in pattern.finditer(path.read_text()))


def covers_every_cell(header: dict[str, Any]) -> bool:
    return set(TITLES) <= set(header["params"]["cells"])


def last_full_run(path: Path) -> str:
    """The newest finished run of every cell in ``path``."""
    headers = {}
    finished = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        if entry["type"] == "run":
            headers[entry["run_id"]] = entry
        elif entry["type"] == "run_end":
            finished.append(entry["run_id"])
    full = [r for r in finished if covers_every_cell(headers[r])]
    if not full:
        raise SystemExit(f"no finished run of every cell in {path}")
    return full[-1]


def partial_section(
    header: dict[str, Any], results: Results, failures: list[dict[str, Any]]
) -> list[str]:
    """A run of some cells, after the page of the last full run: its targets and tables."""
    params, machine = header["params"], header["machine"]
    cells = ", ".join(params["cells"])
    background = [
        r["background_cpu_pct"]
        for rows in results.values()
        for r in rows
        if "background_cpu_pct" in r
    ]
    out = [
        f"## Newer run of cells {cells}: `{header['run_id']}`",
        "",
        f"`{header['command']}` at `{header['versions']['fullduplex_git']}` "
        f"({header['started']}); {params['rounds']} rounds of {params['warmup_s']} s warmup + "
        f"{params['duration_s']} s, medians, same method and machine as above. Load average at "
        f"start: {' '.join(machine['loadavg_at_start'])}.",
    ]
    if background:
        spread = (
            f"background CPU: median {statistics.median(background):.0f}% of a core, up to "
            f"{max(background):.0f}%"
        )
        if statistics.median(background) < 5:
            out.append(f"The machine was quiet during this run ({spread}).")
        else:
            out.append(
                f"The machine was shared with other work ({spread}), so judge by the ratios "
                "measured side by side in this run."
            )
    out += ["", "| target | measured | met |", "|---|--:|:-:|"]
    for target in TARGETS:
        value, met = target.evaluate(results)
        if value != "not measured":
            out.append(f"| {target.text} | {value} | {met} |")
    for cell, title in TITLES.items():
        if not any(c == cell for c, _ in results):
            continue
        out += ["", f"### {title} (run `{header['run_id']}`)", ""]
        if cell == "f":
            out += idle_table(results)
        elif cell.startswith("h-"):
            out += client_table(results, cell)
        else:
            out += echo_table(results, cell)
    if failures:
        out += ["", f"Failed rounds: {len(failures)}."]
    return out


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else None)
