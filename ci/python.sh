#!/usr/bin/env bash
# The Python package (python/): lints its crate, builds and installs it the
# way its README says (`pip install ./python`) into a fresh virtual
# environment made from this machine's Python, and runs its tests, which
# compare it with the kvsim binary. Without a usable Python (3.9 or later,
# with venv) it says so and skips.
#
# Cargo builds into CARGO_TARGET_DIR (default: this repository's target/),
# so the crates kvsim shares with the package compile once.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "ci/python.sh: no $PY on this machine: the Python package's tests are skipped"
  exit 0
fi
if ! "$PY" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "ci/python.sh: $("$PY" --version 2>&1) lacks venv/ensurepip or is older than 3.9:" \
    "the Python package's tests are skipped"
  exit 0
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
# The interpreter PyO3's build reads its configuration from.
PYO3_PYTHON=$(command -v "$PY")
export PYO3_PYTHON
started=$(date +%s)

# The package's crate, linted like kvsim (the root's clippy covers kvsim).
cargo clippy -p kvsim-py --all-targets -- -D warnings

venv="$CARGO_TARGET_DIR/python-venv"
rm -rf "$venv"
"$PY" -m venv "$venv"
# pytest, and matplotlib for the plotting example's test.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check pytest matplotlib
# The README's install command; it pulls numpy and pandas too.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python

# The binary the tests compare with (an earlier CI step built it).
export KVSIM_BIN="$CARGO_TARGET_DIR/release/kvsim"
[ -x "$KVSIM_BIN" ] || cargo build --release

# pytest's own script (`python -m pytest` would put the working directory
# first on sys.path): the installed package is what is tested.
"$venv/bin/pytest" -q -p no:cacheprovider python/tests
echo "ci/python.sh: $(( $(date +%s) - started )) s"
