"""Type stubs of ``kvsim._kvsim``, the native module (Rust, PyO3) that the
``kvsim`` package wraps. Tables cross as columns: ``(name, kind, data,
mask)`` with kind ``"i8"`` (data: int64 bytes), ``"f8"`` (float64 bytes, NaN
where absent), ``"opt_i8"`` (int64 bytes, and a mask of bool bytes, true where
absent), ``"bool"`` (bool bytes) or ``"str"`` (a list of str or None)."""

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

__version__: str

# (name, kind, data, mask): data a bytearray, or a list of str or None for
# kind "str"; mask a bytearray for kind "opt_i8", else None.
_Column = Tuple[str, str, Any, Any]
_Path = Union[str, "os.PathLike[str]"]

class KvsimError(ValueError):
    """An error of kvsim, with the message the command line prints after ``error:``."""

    path: Optional[str]
    """The file the error is about (a scenario, a data file), or None."""
    key: Optional[str]
    """The dotted scenario key at fault, or None."""
    reason: str
    """What is wrong, without the file and key."""
    line: Optional[int]
    """The line of a data file at fault, or None."""
    exit_code: int
    """What the command line exits with for this error (2 bad input, 3 a limit)."""
    partial: Any
    """From ``kvsim.sweep``: the finished points' table (a DataFrame); else None."""

class KvsimWarning(UserWarning):
    """A warning of kvsim: a ``warning:`` or ``note:`` line of the command line."""

class Scenario:
    """A scenario: a TOML table and the path that names it."""

    @staticmethod
    def from_toml(
        path: _Path,
        overrides: Union[Mapping[str, Any], Sequence[str], None] = None,
    ) -> Scenario: ...
    @staticmethod
    def from_dict(d: Mapping[str, Any], path: Optional[_Path] = None) -> Scenario: ...
    def with_overrides(
        self, overrides: Union[Mapping[str, Any], Sequence[str]]
    ) -> Scenario: ...
    @property
    def name(self) -> Optional[str]: ...
    @property
    def path(self) -> str: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def to_toml(self) -> str: ...
    def validate(self) -> None: ...

class _Run:
    """A finished run's records and timeline, each handed over once."""

    def requests(self) -> List[_Column]: ...
    def timeline(self) -> List[_Column]: ...

def run(
    scenario: Scenario,
    seed: Optional[int] = None,
    *,
    max_events: Optional[int] = None,
    time_limit: Optional[float] = None,
    allow_large: bool = False,
) -> Dict[str, Any]: ...
def sweep(
    scenario: Scenario,
    axes: Optional[Mapping[str, Sequence[Any]]] = None,
    threads: Optional[int] = None,
    *,
    max_events: Optional[int] = None,
    time_limit: Optional[float] = None,
    allow_large: bool = False,
) -> List[_Column]: ...
def plan(
    scenario: Scenario,
    slo: Optional[str] = None,
    threads: Optional[int] = None,
    *,
    crossover: bool = False,
    allow_large: bool = False,
) -> Dict[str, Any]: ...
def kv(
    model: Optional[str] = None,
    *,
    hf_config: Optional[_Path] = None,
    layers: Optional[int] = None,
    kv_heads: Optional[int] = None,
    head_dim: Optional[int] = None,
    seq_len: int = 8192,
    batch: int = 1,
    kv_dtype: str = "bf16",
    block_size: int = 16,
) -> Dict[str, Any]: ...
def catalog(kind: Optional[str] = None) -> Dict[str, List[Dict[str, Any]]]: ...
