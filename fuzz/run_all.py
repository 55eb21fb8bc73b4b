"""Run the fuzz suite target by target (one process at a time, at nice 19) and keep a
summary in benchmarks/results/fuzz.json, rewritten as the run progresses.

    python fuzz/run_all.py                          # hypothesis suite, 1 000 000 inputs each
    python fuzz/run_all.py --inputs 20000           # a quick run
    python fuzz/run_all.py --driver atheris         # the atheris harnesses instead
    python fuzz/run_all.py --driver both --targets relay_setup,sphinx

For each target and driver the summary holds: inputs fed, distinct inputs, seconds,
inputs/s, crashes, contract and bounds violations (with reproducers, hex, truncated; the
full summaries are in fuzz/runs/), calls per entry point, RSS and the bounded sizes
checked at the end. Violations do not stop a run (``--keep-going`` / HORNET_FUZZ_KEEP_GOING).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from targets import NAMES  # noqa: E402  (after the path set-up)

DEFAULT_OUT = REPO / "benchmarks" / "results" / "fuzz.json"
RUNS = HERE / "runs"
_KEEP = (
    "driver",
    "status",
    "entry_points",
    "expected_inputs",
    "inputs",
    "distinct_inputs",
    "seconds",
    "inputs_per_s",
    "crashes",
    "contract_violations",
    "bounds_violations",
    "violations",
    "calls",
    "rss_mb",
    "bounds",
    "outcomes",
    "examples",
    "hypothesis_drawn",
    "prng_expanded",
)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _git(*args: str) -> str:
    command = ["git", "-C", str(REPO), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)  # noqa: S603
    return done.stdout.strip()


def _commit() -> str:
    try:
        head, dirty = _git("rev-parse", "HEAD"), _git("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def _lite(summary: dict[str, Any], full_path: Path) -> dict[str, Any]:
    lite = {k: summary[k] for k in _KEEP if k in summary}
    reproducers = summary.get("reproducers", {})
    lite["reproducers"] = {
        sig: (hexdata[:600] + (f"... ({len(hexdata) // 2} bytes)" if len(hexdata) > 600 else ""))
        for sig, hexdata in list(reproducers.items())[:10]
    }
    lite["full_summary"] = str(full_path.relative_to(REPO))
    return lite


class Results:
    """benchmarks/results/fuzz.json: the runs (command, commit, machine, status) and, per
    target and driver, the latest summary. ``merge`` keeps what earlier runs recorded."""

    _RUN_KEYS = (
        "command",
        "started",
        "finished",
        "status",
        "git_commit",
        "inputs_per_target",
        "hypothesis_batch",
        "seed",
        "machine",
        "drivers",
        "targets_run",
    )

    def __init__(self, out: Path, run: dict[str, Any], *, merge: bool) -> None:
        self.out = out
        self.run = {**run, "status": "running"}
        runs: list[dict[str, Any]] = []
        targets: dict[str, Any] = {}
        if merge and out.exists():
            old = json.loads(out.read_text())
            targets = old.get("targets", {})
            # Files written before runs were listed kept one run's fields at the top.
            runs = old.get("runs") or [{k: old[k] for k in self._RUN_KEYS if k in old}]
        self.data: dict[str, Any] = {
            "description": "hornet fuzzing: inputs per network-facing entry "
            "point; see fuzz/README.md",
            "runs": [*runs, self.run],
            "targets": targets,
        }

    def update(self, name: str, driver: str, entry: dict[str, Any]) -> None:
        self.data["targets"].setdefault(name, {})[driver] = entry
        self.write()

    def write(self) -> None:
        self.data["status"] = self.run["status"]
        self.data["updated"] = _now()
        targets = self.data["targets"].values()
        runs = [run for per_driver in targets for run in per_driver.values()]
        self.data["totals"] = {
            "inputs": sum(r.get("inputs", 0) for r in runs),
            "distinct_inputs": sum(r.get("distinct_inputs", 0) for r in runs),
            "crashes": sum(r.get("crashes", 0) for r in runs),
            "contract_violations": sum(r.get("contract_violations", 0) for r in runs),
            "bounds_violations": sum(r.get("bounds_violations", 0) for r in runs),
            "seconds": round(sum(r.get("seconds", 0) for r in runs), 1),
        }
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=1) + "\n")
        tmp.replace(self.out)


def _command(
    name: str, driver: str, args: argparse.Namespace, summary: Path
) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    if driver == "hypothesis":
        env.update(
            HORNET_FUZZ_EXAMPLES=str(args.inputs),
            HORNET_FUZZ_BATCH=str(args.batch),
            HORNET_FUZZ_SEED=str(args.seed),
            HORNET_FUZZ_KEEP_GOING="1",
            HORNET_FUZZ_SUMMARY=str(summary),
        )
        return [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "fuzz",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            f"tests/fuzz/test_fuzz.py::test_fuzz_target[{name}]",
        ], env
    command = [
        sys.executable,
        str(HERE / f"fuzz_{name}.py"),
        f"-atheris_runs={args.inputs}",
        "--keep-going",
        f"--summary={summary}",
        f"--seed={args.seed}",
    ]
    if driver == "fallback":
        command.append("--fallback")
    return command, env


def run_one(name: str, driver: str, args: argparse.Namespace, results: Results) -> None:
    RUNS.mkdir(exist_ok=True)
    summary = RUNS / f"{name}.{driver}.summary.json"
    summary.unlink(missing_ok=True)
    log = RUNS / f"{name}.{driver}.log"
    command, env = _command(name, driver, args, summary)
    started = time.monotonic()
    print(f"[{_now()}] {name} ({driver}): {' '.join(command[1:])}", flush=True)
    with log.open("w") as handle:
        streams: dict[str, Any] = {"stdout": handle, "stderr": subprocess.STDOUT}
        process = subprocess.Popen(command, cwd=REPO, env=env, **streams)  # noqa: S603
        seen = 0.0
        while process.poll() is None:
            time.sleep(args.poll)
            if summary.exists() and summary.stat().st_mtime != seen:
                seen = summary.stat().st_mtime
                with contextlib.suppress(OSError, ValueError):  # a summary mid-write
                    partial = json.loads(summary.read_text())
                    results.update(name, driver, _lite(partial, summary) | {"status": "running"})
    entry: dict[str, Any] = {"status": "no summary"}
    if summary.exists():
        entry = _lite(json.loads(summary.read_text()), summary)
    entry["exit_code"] = process.returncode
    entry["wall_seconds"] = round(time.monotonic() - started, 1)
    entry["log"] = str(log.relative_to(REPO))
    if process.returncode != 0 and not entry.get("violations"):
        entry["status"] = "failed (see log)"
    results.update(name, driver, entry)
    print(
        f"[{_now()}] {name} ({driver}): {entry.get('inputs')} inputs, "
        f"{entry.get('distinct_inputs')} distinct, {entry.get('seconds')} s, crashes "
        f"{entry.get('crashes')}, contract {entry.get('contract_violations')}, exit "
        f"{process.returncode}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="distinct inputs per target")
    parser.add_argument("--targets", default=",".join(NAMES), help="comma-separated names")
    parser.add_argument(
        "--driver", choices=("hypothesis", "atheris", "fallback", "both"), default="hypothesis"
    )
    parser.add_argument("--batch", type=int, default=16, help="inputs per hypothesis example")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--merge", action="store_true", help="keep the other targets already in --out"
    )
    parser.add_argument("--poll", type=float, default=20.0, help="seconds between updates")
    args = parser.parse_args()
    os.nice(max(0, 19 - os.nice(0)))  # share the machine: lowest priority
    names = [n for n in args.targets.split(",") if n]
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    drivers = ["hypothesis", "atheris"] if args.driver == "both" else [args.driver]
    results = Results(
        args.out,
        {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "started": _now(),
            "git_commit": _commit(),
            "inputs_per_target": args.inputs,
            "drivers": drivers,
            "targets_run": names,
            "hypothesis_batch": args.batch,
            "seed": args.seed,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "nice": os.nice(0),
            },
        },
        merge=args.merge,
    )
    results.write()
    for name in names:
        for driver in drivers:
            run_one(name, driver, args, results)
    results.run["status"] = "done"
    results.run["finished"] = _now()
    results.write()
    bad = results.data["totals"]["crashes"] + results.data["totals"]["contract_violations"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
