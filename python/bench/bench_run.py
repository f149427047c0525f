"""What calling kvsim from Python costs over the command line's simulation.

    python python/bench/bench_run.py [SCENARIO] [--requests N] [--repeat K]

(from the repository's root, with the package installed and a release
binary built: `cargo build --release`; $KVSIM_BIN names another binary).

For a run of N requests (default 100,000) of SCENARIO (default
scenarios/quickstart.toml), K times each (default 7), each going first in
turn (and the command line's files flushed to disk before the next
measurement):

- the command line: `kvsim run SCENARIO --set requests=N`, whose last line
  says how long it simulated ("simulated N requests in X s of wall time":
  from reading the scenario to the finished run, before it writes its
  files; two decimals);
- Python: `kvsim.run(scenario)` timed around the call (the scenario made
  beforehand, as the command line's figure starts from the file), with the
  engine's own time inside it (`RunResult.simulate_s`, the same engine call
  the command line makes), then the requests and timeline DataFrames built
  from the run (`.requests`, `.timeline`).

It prints the medians and the fastest of each, and how much more
`kvsim.run` costs than the command line's simulation and than the engine
alone; with the two tables too.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import kvsim

REPO = Path(__file__).resolve().parents[2]


def kvsim_bin() -> Path:
    if "KVSIM_BIN" in os.environ:
        return Path(os.environ["KVSIM_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / "kvsim"


def cli_seconds(binary: Path, scenario: str, requests: int, out: str) -> float:
    p = subprocess.run(
        [str(binary), "run", scenario, "--set", f"requests={requests}", "--out", out],
        capture_output=True,
        text=True,
        check=True,
    )
    # The files it wrote (tens of MB) would be flushed to disk while the next
    # measurement runs.
    os.sync()
    m = re.search(r"simulated \d+ requests in ([0-9.]+) s of wall time", p.stdout)
    if not m:
        raise SystemExit(f"unexpected output of kvsim run:\n{p.stdout}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default="scenarios/quickstart.toml")
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    binary = kvsim_bin()
    if not binary.exists():
        raise SystemExit(f"no kvsim binary at {binary}: cargo build --release")

    scenario = kvsim.Scenario.from_toml(a.scenario, [f"requests={a.requests}"])
    cli, run, engine, tables = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        # One of each first, untimed: page cache, allocator, imports.
        cli_seconds(binary, a.scenario, a.requests, tmp + "/out")
        kvsim.run(scenario).timeline
        for i in range(a.repeat):
            # Each goes first in turn, so neither always follows the other.
            if i % 2 == 0:
                cli.append(cli_seconds(binary, a.scenario, a.requests, tmp + "/out"))
            gc.collect()
            started = time.perf_counter()
            r = kvsim.run(scenario)
            ran = time.perf_counter()
            r.requests, r.timeline
            built = time.perf_counter()
            run.append(ran - started)
            engine.append(r.simulate_s)
            tables.append(built - ran)
            rows = (len(r.requests), len(r.timeline))
            del r
            if i % 2 == 1:
                cli.append(cli_seconds(binary, a.scenario, a.requests, tmp + "/out"))

    print(f"{a.scenario}, {a.requests:,} requests ({rows[0]:,} request rows, "
          f"{rows[1]:,} timeline rows), {a.repeat} of each:")
    # Medians, and minimums: on a shared machine other work only ever adds
    # time, so the fastest of several runs is the least disturbed.
    for label, pick in (("median", statistics.median), ("fastest", min)):
        c, p, e = pick(cli), pick(run), pick(engine)
        both = pick([x + y for x, y in zip(run, tables)])
        print(f"  {label}:")
        print(f"    kvsim run (CLI), its simulation       {c:8.3f} s")
        print(f"    engine alone, inside kvsim.run        {e:8.3f} s")
        print(f"    kvsim.run (Python)                    {p:8.3f} s   "
              f"{100 * (p / c - 1):+.1f} % vs the CLI, {100 * (p / e - 1):+.1f} % vs the engine")
        print(f"    kvsim.run, then both DataFrames       {both:8.3f} s   "
              f"{100 * (both / c - 1):+.1f} % vs the CLI")


if __name__ == "__main__":
    main()
