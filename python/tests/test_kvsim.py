"""Tests of the kvsim Python package: every function, its errors and its
agreement with the command line (the same scenario and seed give the same
numbers as `kvsim run`, `kvsim sweep`, `kvsim plan`, `kvsim kv` and
`kvsim catalog`).

The command line is the release binary: $KVSIM_BIN, else
$CARGO_TARGET_DIR/release/kvsim, else target/release/kvsim in the repository
(`ci/python.sh` builds it).
"""

from __future__ import annotations

import ast
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kvsim

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.toml"
# Small enough to run in a blink, long enough to exercise the engine.
SMALL = ["requests=400"]


def kvsim_bin() -> Path:
    if "KVSIM_BIN" in os.environ:
        return Path(os.environ["KVSIM_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / "kvsim"


@pytest.fixture(scope="session")
def cli():
    """Runs the kvsim binary in the repository; returns the finished process."""
    binary = kvsim_bin()
    if not binary.exists():
        pytest.fail(f"no kvsim binary at {binary}: build it with `cargo build --release`")

    def call(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(
            [str(binary), *args], cwd=REPO, capture_output=True, text=True, timeout=600
        )
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    return call


def cli_error(p: subprocess.CompletedProcess) -> str:
    """The message the command line prints after `error: ` (to the end of
    stderr: a message may span lines)."""
    at = p.stderr.find("error: ")
    assert at == 0 or (at > 0 and p.stderr[at - 1] == "\n"), p.stderr
    return p.stderr[at + len("error: ") :].rstrip("\n")


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def quickstart(*overrides: str) -> kvsim.Scenario:
    return kvsim.Scenario.from_toml(QUICKSTART, [*SMALL, *overrides])


def cli_run(cli, tmp_path, *overrides: str, scenario=QUICKSTART, extra=()):
    out = tmp_path / "run"
    cli("run", str(scenario), *sets([*SMALL, *overrides]), "--out", str(out), *extra)
    summary = json.loads((out / "summary.json").read_text())
    return summary, out


def assert_frame_matches_csv(frame: pd.DataFrame, path: Path, decimals: dict):
    """`frame` is the CSV at `path`: the same columns, and each cell the
    CSV's text read back (floats rounded as the CSV rounds them)."""
    csv = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert list(frame.columns) == list(csv.columns)
    assert len(frame) == len(csv)
    for name in frame.columns:
        col = frame[name]
        if col.dtype == np.float64:
            d = decimals.get(name, 9)
            ours = ["" if math.isnan(x) else f"{x:.{d}f}" for x in col]
        else:
            ours = ["" if pd.isna(x) else str(x) for x in col]
        assert ours == list(csv[name]), name


def assert_frame_is_csv_text(frame: pd.DataFrame, path: Path):
    """`frame` is the CSV at `path` (a sweep or plan table, whose numbers
    are written exactly): the same columns, and each cell the same value."""
    csv = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert list(frame.columns) == list(csv.columns)
    assert len(frame) == len(csv)
    for name in frame.columns:
        col = frame[name]
        for ours, cell in zip(col, csv[name]):
            if col.dtype == np.float64:
                theirs = float(cell) if cell else math.nan
                assert ours == theirs or (math.isnan(ours) and math.isnan(theirs)), name
            elif col.dtype == bool:
                assert str(ours).lower() == cell, name
            else:
                assert ("" if pd.isna(ours) else str(ours)) == cell, name


# ---------------------------------------------------------------- scenario


def test_scenario_from_toml_reads_the_file():
    s = kvsim.Scenario.from_toml(QUICKSTART)
    assert s.name == "quickstart"
    assert s.path == str(QUICKSTART)
    d = s.to_dict()
    assert d["model"]["preset"] == "llama-3.1-8b"
    assert d["traffic"]["arrival"] == {"kind": "poisson", "rate": 25.0}
    assert "quickstart" in repr(s)
    s.validate()
    # Accepts a str as well as a Path.
    assert kvsim.Scenario.from_toml(str(QUICKSTART)).to_dict() == d


def test_overrides_as_a_dict_or_as_set_strings_are_the_same():
    a = kvsim.Scenario.from_toml(QUICKSTART).with_overrides(
        {"traffic.arrival.rate": 40, "cache.policy": "contiguous", "requests": 300}
    )
    b = kvsim.Scenario.from_toml(
        QUICKSTART,
        ["traffic.arrival.rate=40", "cache.policy=contiguous", "requests=300"],
    )
    assert a.to_dict() == b.to_dict()
    assert a.to_dict()["traffic"]["arrival"]["rate"] == 40
    # The original is unchanged.
    assert kvsim.Scenario.from_toml(QUICKSTART).to_dict()["cache"]["policy"] == "paged"
    # NumPy scalars are numbers.
    c = kvsim.Scenario.from_toml(QUICKSTART).with_overrides(
        {"traffic.arrival.rate": np.float64(2.5), "requests": np.int64(7)}
    )
    assert c.to_dict()["traffic"]["arrival"]["rate"] == 2.5
    assert c.to_dict()["requests"] == 7


def test_from_dict_round_trips_and_runs_like_the_file():
    s = quickstart()
    d = kvsim.Scenario.from_dict(s.to_dict())
    assert d.path == "<dict>"
    assert d.name == "quickstart"
    a = kvsim.run(s).summary
    b = kvsim.run(d).summary
    assert a["metrics"] == b["metrics"]
    # TOML text round-trips too.
    assert "[model]" in s.to_toml()


def test_from_dict_resolves_data_files_against_its_path():
    s = kvsim.Scenario.from_toml(REPO / "scenarios" / "mooncake-replay.toml")
    d = s.to_dict()
    kvsim.Scenario.from_dict(d, path=s.path).validate()
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.Scenario.from_dict(d).validate()
    assert "<dict>" in str(e.value) or "data" in str(e.value)


# ---------------------------------------------------------------- run


def test_run_gives_the_cli_numbers(cli, tmp_path):
    summary, out = cli_run(cli, tmp_path)
    r = kvsim.run(quickstart())
    # The whole summary.json: every key and every number.
    assert r.summary == summary
    assert r.seed == 7
    assert r.metrics is r.summary["metrics"]
    assert r.simulate_s > 0
    assert_frame_matches_csv(r.requests, out / "requests.csv", {})
    six = {c: 6 for c in ["kv_frac", "waste_used", "waste_reserved", "waste_internal", "waste_external"]}
    assert_frame_matches_csv(r.timeline, out / "timeline.csv", six)
    assert r.requests["id"].dtype == np.int64
    assert r.requests["arrival"].dtype == np.float64
    assert str(r.requests["session"].dtype) == "Int64"
    assert len(r.requests) == r.metrics["requests"] == 400
    # A table is built once and kept.
    assert r.requests is r.requests
    # Tables are the caller's to change.
    r.requests.loc[0, "prompt_tokens"] = -1
    assert r.requests.loc[0, "prompt_tokens"] == -1
    assert "quickstart" in repr(r)


def test_run_with_a_seed_is_the_cli_with_that_seed(cli, tmp_path):
    summary, _ = cli_run(cli, tmp_path, extra=["--seed", "3"])
    r = kvsim.run(quickstart(), seed=3)
    assert r.seed == 3
    assert r.summary == summary
    assert r.metrics != kvsim.run(quickstart()).metrics
    # The same seed, the same numbers.
    assert kvsim.run(quickstart(), seed=3).summary == r.summary


def test_cluster_run_gives_the_cli_numbers_and_replica_columns(cli, tmp_path):
    summary, out = cli_run(cli, tmp_path, "hardware.replicas=2", "traffic.arrival.rate=50")
    r = kvsim.run(quickstart("hardware.replicas=2", "traffic.arrival.rate=50"))
    assert r.summary == summary
    assert r.requests.columns[-1] == "replica"
    assert set(r.requests["replica"]) == {0, 1}
    assert_frame_matches_csv(r.requests, out / "requests.csv", {})


def test_disaggregated_run_gives_the_cli_numbers_and_flight_columns(cli, tmp_path):
    scenario = REPO / "scenarios" / "disagg-70b-short-prompts.toml"
    out = tmp_path / "run"
    cli("run", str(scenario), "--set", "requests=60", "--out", str(out))
    summary = json.loads((out / "summary.json").read_text())
    r = kvsim.run(kvsim.Scenario.from_toml(scenario, ["requests=60"]))
    assert r.summary == summary
    assert "kv_transfer_bytes" in r.requests.columns
    assert_frame_matches_csv(r.requests, out / "requests.csv", {})


def test_version_is_the_simulators():
    assert kvsim.__version__ == kvsim.run(quickstart()).summary["kvsim_version"]


# ---------------------------------------------------------------- sweep

SWEPT = ['sweep."traffic.arrival.rate"=[10, 40]', 'sweep."cache.policy"=["paged", "contiguous"]']


def test_sweep_gives_the_cli_table(cli, tmp_path):
    out = tmp_path / "sweep"
    cli("sweep", str(QUICKSTART), *sets([*SMALL, *SWEPT]), "--out", str(out), "--no-plots")
    t = kvsim.sweep(quickstart(*SWEPT))
    assert len(t) == 4
    assert_frame_is_csv_text(t, out / "sweep.csv")
    assert t["point"].dtype == np.int64
    assert t["oom_rate"].dtype == np.float64
    assert t["cache.policy"].tolist() == ["paged", "contiguous", "paged", "contiguous"]


def test_sweep_axes_replace_the_scenarios_grid_and_threads_do_not_change_it():
    s = quickstart(*SWEPT)
    axes = {"traffic.arrival.rate": [10, 40], "cache.policy": ["paged", "contiguous"]}
    a = kvsim.sweep(s, threads=1)
    b = kvsim.sweep(quickstart(), axes, threads=2)
    pd.testing.assert_frame_equal(a, b)
    # Given axes replace the file's [sweep] table: one axis, two points.
    c = kvsim.sweep(s, {"traffic.arrival.rate": [10, 40]})
    assert len(c) == 2 and "cache.policy" not in c.columns
    # No axes: one point, which is `kvsim run`.
    one = kvsim.sweep(quickstart(), {})
    assert len(one) == 1
    assert one["tpot_p99"][0] == kvsim.run(quickstart()).metrics["tpot_p99"]


def test_a_failed_sweep_point_raises_with_the_finished_points(cli, tmp_path):
    bad = ['sweep."traffic.arrival.rate"=[10, 1e-300]']
    p = cli("sweep", str(QUICKSTART), *sets([*SMALL, *bad]), "--out", str(tmp_path / "s"), "--no-plots", ok=False)
    assert p.returncode == 2
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.sweep(quickstart(*bad))
    # The same point, file, key and reason; what was kept differs.
    assert str(e.value).split("; ")[0] == cli_error(p).split("; ")[0]
    assert e.value.key == "traffic.arrival.rate"
    assert e.value.path == str(QUICKSTART)
    assert e.value.exit_code == 2
    assert len(e.value.partial) == 1
    assert e.value.partial["traffic.arrival.rate"][0] == 10


def test_a_sweep_grid_that_is_not_a_list_gives_the_cli_message(cli, tmp_path):
    p = cli("sweep", str(QUICKSTART), "--set", 'sweep."requests"=5', "--out", str(tmp_path / "s"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.sweep(quickstart(), {"requests": 5})
    assert str(e.value) == cli_error(p)


def test_sweep_releases_the_gil():
    s = quickstart("requests=20000")
    done = threading.Event()
    result = {}

    def work():
        started = time.monotonic()
        result["t"] = kvsim.sweep(s, {"traffic.arrival.rate": [20, 30, 40, 50]}, threads=1)
        result["s"] = time.monotonic() - started
        done.set()

    t = threading.Thread(target=work)
    t.start()
    # The main thread runs Python throughout: the longest it waits between
    # two turns of this loop is far shorter than the sweep.
    last, longest = time.monotonic(), 0.0
    while not done.is_set():
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    t.join()
    assert len(result["t"]) == 4
    assert longest < result["s"] / 2, (longest, result["s"])


def test_ctrl_c_stops_a_long_sweep_and_the_next_call_runs():
    # Far more work than the test waits for: 64 runs of 400,000 requests
    # (tens of seconds).
    s = quickstart("requests=400000", "output.timeline_interval_s=10")
    axes = {"traffic.arrival.rate": [float(r) for r in range(10, 74)]}
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        kvsim.sweep(s, axes, threads=2)
    elapsed = time.monotonic() - started
    timer.join()
    assert elapsed < 5, elapsed
    # The interrupt was this call's: the next one runs to the end.
    assert kvsim.run(quickstart()).metrics["requests"] == 400


def test_ctrl_c_stops_a_long_run():
    # Seconds of work, stopped after half of one.
    s = quickstart("requests=3000000", "output.timeline_interval_s=10")
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        kvsim.run(s)
    timer.join()
    assert time.monotonic() - started < 3


# ---------------------------------------------------------------- plan

PLAN = REPO / "scenarios" / "plan-llama70b.toml"
PLAN_SMALL = [
    "requests=200",
    "plan.replicates=1",
    'plan.candidates."hardware.gpu"=["h100-sxm", "h200"]',
    'plan.candidates."hardware.tp"=[4]',
    'plan.candidates."cache.policy"=["paged"]',
]


def test_plan_gives_the_cli_table(cli, tmp_path):
    out = tmp_path / "plan"
    p = cli("plan", str(PLAN), *sets(PLAN_SMALL), "--out", str(out), ok=False)
    assert p.returncode in (0, 1), p.stderr
    r = kvsim.plan(kvsim.Scenario.from_toml(PLAN, PLAN_SMALL), threads=2)
    assert len(r.table) == 2
    assert_frame_is_csv_text(r.table, out / "plan.csv")
    assert r.feasible == (p.returncode == 0)
    assert r.crossover_ratio is None


def test_plan_slo_as_text_or_dict_is_the_clis_slo(cli, tmp_path):
    s = kvsim.Scenario.from_toml(PLAN, PLAN_SMALL)
    a = kvsim.plan(s, slo="ttft_p99=1,tpot_p99=0.03")
    b = kvsim.plan(s, slo={"ttft_p99": 1, "tpot_p99": 0.03})
    pd.testing.assert_frame_equal(a.table, b.table)
    p = cli("plan", str(PLAN), *sets(PLAN_SMALL), "--slo", "nope=1", "--out", str(tmp_path / "p"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.plan(s, slo={"nope": 1})
    assert str(e.value) == cli_error(p)


def test_plan_crossover_errors_like_the_cli(cli, tmp_path):
    p = cli("plan", str(PLAN), "--crossover", "--out", str(tmp_path / "p"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.plan(kvsim.Scenario.from_toml(PLAN), crossover=True)
    assert str(e.value) == cli_error(p)


# ---------------------------------------------------------------- kv, catalog


def test_kv_is_the_clis_json(cli):
    for args, kw in [
        (["--model", "llama-3.1-8b", "--seq-len", "32768", "--batch", "4"], dict(model="llama-3.1-8b", seq_len=32768, batch=4)),
        (["--model", "gemma-3-27b", "--kv-dtype", "fp8", "--block-size", "32"], dict(model="gemma-3-27b", kv_dtype="fp8", block_size=32)),
        (["--layers", "32", "--kv-heads", "8", "--head-dim", "128"], dict(layers=32, kv_heads=8, head_dim=128)),
    ]:
        expected = json.loads(cli("kv", *args, "--json").stdout)
        assert kvsim.kv(**kw) == expected, args
    assert kvsim.kv("llama-3.1-8b")["seq_len"] == 8192


def test_kv_errors_are_the_clis(cli):
    p = cli("kv", "--model", "nope", ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.kv("nope")
    assert str(e.value) == cli_error(p)
    assert e.value.exit_code == 2
    p = cli("kv", "--model", "llama-3.1-8b", "--seq-len", str(2**40), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.kv("llama-3.1-8b", seq_len=2**40)
    assert str(e.value) == cli_error(p)
    with pytest.raises(kvsim.KvsimError, match="cannot be used with"):
        kvsim.kv("llama-3.1-8b", layers=32)
    with pytest.raises(kvsim.KvsimError, match="needs all of"):
        kvsim.kv(layers=32)
    with pytest.raises(kvsim.KvsimError, match="unknown dtype"):
        kvsim.kv("llama-3.1-8b", kv_dtype="fp7")
    with pytest.raises(kvsim.KvsimError, match="block_size"):
        kvsim.kv("llama-3.1-8b", block_size=0)
    with pytest.raises(kvsim.KvsimError, match="give --model"):
        kvsim.kv()


def test_catalog_is_the_clis_json(cli):
    assert kvsim.catalog() == json.loads(cli("catalog", "--json").stdout)
    gpus = kvsim.catalog("gpus")
    assert list(gpus) == ["gpus"]
    assert gpus == json.loads(cli("catalog", "gpus", "--json").stdout)
    assert any(g["name"] == "h100-sxm" for g in gpus["gpus"])
    assert list(kvsim.catalog("models")) == ["models"]
    assert list(kvsim.catalog("engines")) == ["engines"]
    with pytest.raises(kvsim.KvsimError, match="expected"):
        kvsim.catalog("tpus")


# ---------------------------------------------------------------- errors


def test_errors_are_kvsim_errors_and_value_errors():
    assert issubclass(kvsim.KvsimError, ValueError)
    assert issubclass(kvsim.KvsimWarning, UserWarning)


def test_a_missing_file_gives_the_cli_message(cli, tmp_path):
    missing = tmp_path / "missing.toml"
    p = cli("run", str(missing), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.Scenario.from_toml(missing)
    assert str(e.value) == cli_error(p)
    assert e.value.path == str(missing)
    assert e.value.exit_code == 2
    assert e.value.key is None and e.value.partial is None


def test_a_bad_data_file_gives_the_cli_message_and_line(cli, tmp_path):
    trace = tmp_path / "bad.jsonl"
    trace.write_text(
        '{"timestamp": 0, "input_length": 100, "output_length": 10, "hash_ids": [1]}\n'
        '{"timestamp": "x"}\n'
    )
    d = kvsim.Scenario.from_toml(REPO / "scenarios" / "mooncake-replay.toml").to_dict()
    d["traffic"]["arrival"]["path"] = str(trace)
    scenario = tmp_path / "bad-trace.toml"
    scenario.write_text(kvsim.Scenario.from_dict(d).to_toml())
    p = cli("run", str(scenario), "--out", str(tmp_path / "r"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.run(kvsim.Scenario.from_dict(d, path=scenario))
    assert str(e.value) == cli_error(p)
    assert e.value.path == str(trace)
    assert e.value.line == 2


def test_a_bad_value_gives_the_cli_message_file_and_key(cli, tmp_path):
    p = cli("run", str(QUICKSTART), "--set", "traffic.arrival.rate=fast", "--out", str(tmp_path / "r"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.run(kvsim.Scenario.from_toml(QUICKSTART, {"traffic.arrival.rate": "fast"}))
    assert str(e.value) == cli_error(p)
    assert e.value.path == str(QUICKSTART)
    assert e.value.key == "traffic.arrival.rate"
    assert "expected a number" in e.value.reason
    # validate() says the same.
    with pytest.raises(kvsim.KvsimError) as v:
        kvsim.Scenario.from_toml(QUICKSTART, ["traffic.arrival.rate=fast"]).validate()
    assert str(v.value) == str(e.value)


def test_an_unknown_key_gives_the_cli_message(cli, tmp_path):
    p = cli("run", str(QUICKSTART), "--set", "cache.polcy=paged", "--out", str(tmp_path / "r"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.run(kvsim.Scenario.from_toml(QUICKSTART, {"cache.polcy": "paged"}))
    assert str(e.value) == cli_error(p)


def test_an_override_through_a_value_gives_the_cli_message(cli, tmp_path):
    p = cli("run", str(QUICKSTART), "--set", "cache.policy.x=1", "--out", str(tmp_path / "r"), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.Scenario.from_toml(QUICKSTART, ["cache.policy.x=1"])
    assert str(e.value) == cli_error(p)
    with pytest.raises(kvsim.KvsimError) as d:
        kvsim.Scenario.from_toml(QUICKSTART, {"cache.policy.x": 1})
    assert str(d.value) == cli_error(p)
    with pytest.raises(kvsim.KvsimError, match="None"):
        kvsim.Scenario.from_toml(QUICKSTART, {"seed": None})
    with pytest.raises(kvsim.KvsimError, match="not one string"):
        kvsim.Scenario.from_toml(QUICKSTART, "seed=1")


def test_a_toml_syntax_error_names_the_file_and_line(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nrequests = = 3\n')
    p = cli("run", str(bad), ok=False)
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.Scenario.from_toml(bad)
    assert str(e.value) == cli_error(p)
    assert "line 2" in str(e.value)


def test_from_dict_refuses_what_toml_cannot_hold():
    with pytest.raises(kvsim.KvsimError, match="`traffic.arrival.rate` is None"):
        kvsim.Scenario.from_dict({"traffic": {"arrival": {"rate": None}}})
    with pytest.raises(kvsim.KvsimError, match="not a string"):
        kvsim.Scenario.from_dict({1: 2})
    with pytest.raises(kvsim.KvsimError, match="is a object"):
        kvsim.Scenario.from_dict({"x": object()})


def test_a_limit_stops_a_run_like_the_cli(cli, tmp_path):
    p = cli("run", str(QUICKSTART), *sets(SMALL), "--max-events", "100", "--out", str(tmp_path / "r"), ok=False)
    assert p.returncode == 3
    with pytest.raises(kvsim.KvsimError) as e:
        kvsim.run(quickstart(), max_events=100)
    assert e.value.exit_code == 3
    # What was kept differs: the command line names its directory.
    assert str(e.value).split("; ")[:2] == cli_error(p).split("; ")[:2]
    with pytest.raises(kvsim.KvsimError, match="at least 1"):
        kvsim.run(quickstart(), max_events=0)
    with pytest.raises(kvsim.KvsimError, match="positive"):
        kvsim.run(quickstart(), time_limit=-1)
    with pytest.raises(kvsim.KvsimError, match="at least 1"):
        kvsim.sweep(quickstart(), threads=0)


def test_warnings_are_the_clis_stderr_lines(cli, tmp_path):
    o = ["scheduler.chunked_prefill=false", "scheduler.max_batched_tokens=2048"]
    p = cli("run", str(QUICKSTART), *sets([*SMALL, *o]), "--out", str(tmp_path / "r"))
    expected = [l[len("warning: ") :] for l in p.stderr.splitlines() if l.startswith("warning: ")]
    assert expected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kvsim.run(quickstart(*o))
    got = [str(w.message) for w in caught if issubclass(w.category, kvsim.KvsimWarning)]
    assert got == expected
    # The warning points at the caller.
    assert all(Path(w.filename).name == "test_kvsim.py" for w in caught)


# ---------------------------------------------------------------- docs


def test_the_readme_example_runs(monkeypatch):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(REPO)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["r"].metrics["tpot_p50"] > 0
    assert len(scope["grid"]) == 4


def test_the_plotting_example_runs(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "policies.png"
    p = subprocess.run(
        [sys.executable, str(REPO / "examples" / "python_sweep.py"), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    assert out.stat().st_size > 10_000
    assert "quantized" in p.stdout


# ---------------------------------------------------------------- stubs


def test_the_stub_declares_every_native_name():
    stub = ast.parse((Path(kvsim.__file__).parent / "_kvsim.pyi").read_text())
    declared = {n.name for n in stub.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    declared |= {n.target.id for n in stub.body if isinstance(n, ast.AnnAssign)}
    native = {n for n in dir(kvsim._kvsim) if not n.startswith("__") and not n.startswith("_")}
    assert native <= declared, native - declared
    for name in kvsim.__all__:
        assert getattr(kvsim, name).__doc__, name
    assert (Path(kvsim.__file__).parent / "py.typed").exists()
