"""kvsim from Python: a discrete-event simulator of LLM serving whose subject
is the KV cache, built from the same Rust core as the ``kvsim`` command.

The API mirrors the command line, with the same scenario semantics, seeds and
error messages, and returns pandas DataFrames built in memory (no files)::

    import kvsim

    s = kvsim.Scenario.from_toml("scenarios/quickstart.toml")
    r = kvsim.run(s.with_overrides({"traffic.arrival.rate": 40}))
    r.summary["metrics"]["oom_rate"], r.requests, r.timeline
    table = kvsim.sweep(s, {"traffic.arrival.rate": [10, 20, 40]})
    kvsim.kv("llama-3.1-8b", seq_len=32768), kvsim.catalog("gpus")
    kvsim.plan(kvsim.Scenario.from_toml("scenarios/plan-llama70b.toml")).table

Errors raise :class:`KvsimError` (a :class:`ValueError`) with the message the
command line prints; warnings are :class:`KvsimWarning`; Ctrl-C (a notebook's
interrupt) stops a run, sweep or plan and raises :class:`KeyboardInterrupt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _kvsim
from ._kvsim import KvsimError, KvsimWarning, Scenario, catalog, kv

__all__ = [
    "KvsimError",
    "KvsimWarning",
    "PlanResult",
    "RunResult",
    "Scenario",
    "catalog",
    "kv",
    "plan",
    "run",
    "sweep",
]

__version__: str = _kvsim.__version__

# (name, kind, data, mask): data a bytearray, or a list of str or None for
# kind "str"; mask a bytearray for kind "opt_i8", else None.
_Column = Tuple[str, str, Any, Any]


def _frame(columns: List[_Column]) -> pd.DataFrame:
    """A DataFrame from the native module's columns (see ``_kvsim.pyi``)."""
    data: Dict[str, Any] = {}
    for name, kind, values, mask in columns:
        if kind == "f8":
            data[name] = np.frombuffer(values, dtype=np.float64)
        elif kind == "i8":
            data[name] = np.frombuffer(values, dtype=np.int64)
        elif kind == "opt_i8":
            data[name] = pd.arrays.IntegerArray(
                np.frombuffer(values, dtype=np.int64),
                np.frombuffer(mask, dtype=np.bool_),
            )
        elif kind == "bool":
            data[name] = np.frombuffer(values, dtype=np.bool_)
        else:
            data[name] = pd.Series(values, dtype=object)
    # The arrays view the bytearrays the native module filled (writable,
    # owned by nothing else): no copy.
    return pd.DataFrame(data, copy=False)


class RunResult:
    """One run: what ``kvsim run`` writes, in memory.

    The summary is ready at once; each table is built the first time it is
    read (a loop that reads only metrics never pays for them) and then kept.

    Attributes:
        summary: ``summary.json`` as a dict (the same keys and numbers).
        seed: the seed the run used.
        simulate_s: wall-clock seconds of the simulation alone.
    """

    __slots__ = ("summary", "seed", "simulate_s", "_run", "_requests", "_timeline")

    def __init__(self, out: Dict[str, Any]) -> None:
        self.summary: Dict[str, Any] = out["summary"]
        self.seed: int = out["seed"]
        self.simulate_s: float = out["simulate_s"]
        self._run = out["run"]
        self._requests: Optional[pd.DataFrame] = None
        self._timeline: Optional[pd.DataFrame] = None

    @property
    def metrics(self) -> Dict[str, Any]:
        """``summary["metrics"]``: the run's metrics (OOM rate, TTFT, TPOT, ...)."""
        metrics: Dict[str, Any] = self.summary["metrics"]
        return metrics

    @property
    def requests(self) -> pd.DataFrame:
        """``requests.csv`` as a DataFrame: one row per request, in arrival
        order, the same columns; times in seconds, NaN where the CSV cell is
        empty; whole-number columns with gaps are nullable ``Int64``."""
        if self._requests is None:
            self._requests = _frame(self._run.requests())
        return self._requests

    @property
    def timeline(self) -> pd.DataFrame:
        """``timeline.csv`` as a DataFrame, the same columns (fractions
        unrounded: the CSV keeps six decimals)."""
        if self._timeline is None:
            self._timeline = _frame(self._run.timeline())
        return self._timeline

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"RunResult(scenario={self.summary['scenario']!r}, seed={self.seed}, "
            f"requests={m['requests']}, oom_rate={m['oom_rate']})"
        )


@dataclass(frozen=True)
class PlanResult:
    """A plan: what ``kvsim plan`` writes, in memory.

    Attributes:
        table: ``plan.csv`` (ranked candidates, their sustainable rate,
            replicas and cost) or, for a crossover, ``crossover.csv``.
        feasible: whether some candidate meets the objectives (for a
            crossover: whether both modes were feasible at some ratio); the
            command line exits 1 when not.
        crossover_ratio: for a crossover, the input/output length ratio from
            which disaggregation wins (None if it does not, or no crossover).
    """

    table: pd.DataFrame
    feasible: bool
    crossover_ratio: Optional[float]


def _number(v: Any) -> str:
    """``v`` as ``--slo`` text: a float's shortest form, else ``str(v)``
    (which kvsim then refuses with its own message)."""
    try:
        return repr(float(v))
    except (TypeError, ValueError):
        return str(v)


def run(
    scenario: Scenario,
    seed: Optional[int] = None,
    *,
    max_events: Optional[int] = None,
    time_limit: Optional[float] = None,
    allow_large: bool = False,
) -> RunResult:
    """Simulates ``scenario`` as ``kvsim run`` does and returns its results.

    Args:
        scenario: the scenario (validated here, as ``kvsim run`` validates it).
        seed: overrides the scenario's seed (``--seed``).
        max_events: stop a run that needs more events (``--max-events``).
        time_limit: stop after this many seconds of wall time (``--time-limit``).
        allow_large: run even when projected to need more memory than the
            machine has (``--allow-large``).

    Raises:
        KvsimError: bad input, or a limit stopped the run.
        KeyboardInterrupt: Ctrl-C stopped the run.
    """
    out = _kvsim.run(
        scenario,
        seed,
        max_events=max_events,
        time_limit=time_limit,
        allow_large=allow_large,
    )
    return RunResult(out)


def sweep(
    scenario: Scenario,
    axes: Optional[Mapping[str, Sequence[Any]]] = None,
    threads: Optional[int] = None,
    *,
    max_events: Optional[int] = None,
    time_limit: Optional[float] = None,
    allow_large: bool = False,
) -> pd.DataFrame:
    """Runs every point of a sweep grid as ``kvsim sweep`` does, in parallel.

    Args:
        scenario: the base scenario.
        axes: the grid, dotted keys to lists of values, first axis outermost
            (``{"traffic.arrival.users": [8, 16, 32]}``); it replaces the
            scenario's ``[sweep]`` table. Default: that table.
        threads: worker threads (``--threads``; default one per core). The
            results do not depend on it. The GIL is released meanwhile.
        max_events, time_limit, allow_large: as for :func:`run`
            (``time_limit`` bounds the whole sweep).

    Returns:
        ``sweep.csv`` as a DataFrame: one row per point, the same columns.

    Raises:
        KvsimError: bad input, or a point failed; then its ``partial``
            attribute holds the finished points' table.
        KeyboardInterrupt: Ctrl-C stopped the sweep.
    """
    try:
        columns = _kvsim.sweep(
            scenario,
            axes,
            threads,
            max_events=max_events,
            time_limit=time_limit,
            allow_large=allow_large,
        )
    except KvsimError as e:
        partial = getattr(e, "partial_columns", None)
        if partial is not None:
            e.partial = _frame(partial)
            delattr(e, "partial_columns")
        raise
    return _frame(columns)


def plan(
    scenario: Scenario,
    slo: Union[str, Mapping[str, float], None] = None,
    threads: Optional[int] = None,
    *,
    crossover: bool = False,
    allow_large: bool = False,
) -> PlanResult:
    """Plans capacity from the scenario's ``[plan]`` table as ``kvsim plan`` does.

    Args:
        scenario: the scenario with its ``[plan]`` table.
        slo: objectives over the scenario's ``[slo]`` (``--slo``), as text
            (``"ttft_p99=2,tpot_p99=0.05"``) or a dict (``{"ttft_p99": 2}``).
        threads: worker threads (``--threads``; default one per core).
        crossover: compare colocated and disaggregated deployments across
            ``[plan.crossover]`` ratios instead (``--crossover``).
        allow_large: as for :func:`run`.

    Raises:
        KvsimError: bad input.
        KeyboardInterrupt: Ctrl-C stopped the plan.
    """
    if slo is not None and not isinstance(slo, str):
        slo = ",".join(f"{k}={_number(v)}" for k, v in slo.items())
    out = _kvsim.plan(
        scenario, slo, threads, crossover=crossover, allow_large=allow_large
    )
    return PlanResult(
        table=_frame(out["table"]),
        feasible=out["feasible"],
        crossover_ratio=out["crossover_ratio"],
    )
