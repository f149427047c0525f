//! `kvsim._kvsim`: kvsim's library behind the `kvsim` Python package.
//!
//! Each function calls what the command line calls (`kvsim::cli::embed`,
//! `kvsim::scenario`, `kvsim::report::columnar`), so a scenario means the same
//! from Python and from the shell, and its errors read the same. What this
//! file adds is the crossing: Python values to TOML and back, tables as
//! columns of bytes (NumPy reads them without a copy per cell), errors as
//! `KvsimError`, warnings as `KvsimWarning`, and Ctrl-C: the work runs on a
//! thread of its own with the GIL released while the calling thread checks
//! Python's signals every 50 ms and stops kvsim when one is pending.
//!
//! `python/kvsim/__init__.py` turns the columns into pandas DataFrames.

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::exceptions::{PyUserWarning, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
};

use kvsim::cli::embed;
use kvsim::cli::{CatalogKind, GuardArgs, KvArgs};
use kvsim::report::columnar::ColumnSink;

pyo3::create_exception!(
    kvsim,
    KvsimError,
    PyValueError,
    "An error of kvsim, with the message the command line prints after \
     `error:`. Attributes: `path` (the file, or None), `key` (the dotted \
     scenario key, or None), `reason`, `line` (of a data file, or None), \
     `exit_code` (what the command line would exit with) and `partial` (from \
     `sweep`, the finished points' table; else None)."
);

pyo3::create_exception!(
    kvsim,
    KvsimWarning,
    PyUserWarning,
    "A warning of kvsim: what the command line prints on stderr as a \
     `warning:` or `note:` line."
);

/// How often the calling thread checks for Ctrl-C while kvsim works.
const POLL: Duration = Duration::from_millis(50);

/// Stack of the thread a call's work runs on: the command line runs on the
/// main thread's 8 MiB.
const WORKER_STACK: usize = 8 << 20;

/// Interrupt flags not in use. kvsim's stop flags are `&'static`; each call
/// takes one (set by Ctrl-C during that call only) and puts it back, so
/// flags are only ever as many as the calls that ran at once.
static FREE_FLAGS: Mutex<Vec<&'static AtomicBool>> = Mutex::new(Vec::new());

/// A call's interrupt flag, cleared, returned to [`FREE_FLAGS`] on drop.
struct Flag(&'static AtomicBool);

impl Flag {
    fn take() -> Flag {
        let free = FREE_FLAGS.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let flag = free.unwrap_or_else(|| Box::leak(Box::new(AtomicBool::new(false))));
        flag.store(false, Ordering::SeqCst);
        Flag(flag)
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        FREE_FLAGS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.0);
    }
}

/// Runs `work` on a thread of its own with the GIL released; every
/// [`POLL`] the calling thread checks Python's signals, and on the first
/// pending one (Ctrl-C raises KeyboardInterrupt) sets the flag `work` was
/// given, waits for `work` to stop, and returns that exception.
fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&'static AtomicBool) -> T + Send,
{
    let flag = Flag::take();
    let stop = flag.0;
    let (out, signal) = py.detach(move || {
        let mut signal: Option<PyErr> = None;
        let out = std::thread::scope(|s| {
            let (done, finished) = std::sync::mpsc::channel::<()>();
            let worker = std::thread::Builder::new()
                .name("kvsim".into())
                .stack_size(WORKER_STACK)
                .spawn_scoped(s, move || {
                    let out = work(stop);
                    drop(done);
                    out
                })
                .expect("cannot start a thread");
            // Ends when `done` is dropped: `work` returned or panicked.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(POLL)
            {
                if signal.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        stop.store(true, Ordering::SeqCst);
                        signal = Some(e);
                    }
                }
            }
            worker.join()
        });
        (out, signal)
    });
    drop(flag);
    let out = out.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    match signal {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `e` as a [`KvsimError`] with its parts as attributes; Ctrl-C, which
/// [`detached`] already turned into KeyboardInterrupt, never reaches here.
fn error(py: Python<'_>, e: &kvsim::Error) -> PyErr {
    use kvsim::Error as E;
    let err = KvsimError::new_err(e.to_string());
    let mut cause = e;
    while let E::SweepPoint { source, .. } = cause {
        cause = source;
    }
    let shown = |p: &std::path::Path| Some(p.display().to_string());
    let (path, key, reason, line) = match cause {
        E::Scenario { path, source } => (
            shown(path),
            (!source.key.is_empty()).then(|| source.key.clone()),
            source.reason.clone(),
            None,
        ),
        E::DataFile { path, line, reason } => (shown(path), None, reason.clone(), *line),
        E::Limit { path, reason } => (shown(path), None, reason.clone(), None),
        E::Io { path, source } => (shown(path), None, source.to_string(), None),
        E::Usage(m) => (None, None, m.clone(), None),
        E::Interrupted { kept } => (None, None, kept.clone(), None),
        E::SweepPoint { .. } => unreachable!("unwrapped above"),
    };
    let value = err.value(py);
    // Setting attributes on a fresh exception cannot fail.
    let _ = value.setattr("path", path);
    let _ = value.setattr("key", key);
    let _ = value.setattr("reason", reason);
    let _ = value.setattr("line", line);
    let _ = value.setattr("exit_code", e.exit_code());
    // `kvsim.sweep` puts the finished points' table here.
    let _ = value.setattr("partial", py.None());
    err
}

/// A usage error (the command line's exit 2) about an argument.
fn usage(py: Python<'_>, message: String) -> PyErr {
    error(py, &kvsim::Error::Usage(message))
}

/// Issues each of `lines` (as the command line prints them on stderr) as a
/// [`KvsimWarning`], without the `warning: ` the command line puts first,
/// pointing at the caller of the `kvsim` function.
fn warn_all(py: Python<'_>, lines: &[String]) -> PyResult<()> {
    let category = py.get_type::<KvsimWarning>();
    for line in lines {
        let text = line.strip_prefix("warning: ").unwrap_or(line);
        let text = CString::new(text.replace('\0', " ")).expect("no NUL left");
        PyErr::warn(py, category.as_any(), &text, 2)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- values

/// A Python value as TOML (`at` names it in errors).
fn to_toml(v: &Bound<'_, PyAny>, at: &str) -> Result<toml::Value, String> {
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(toml::Value::Boolean(b.is_true()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s
            .extract::<String>()
            .map(toml::Value::String)
            .map_err(|e| format!("`{at}`: {e}"));
    }
    if v.is_instance_of::<PyInt>() {
        return v
            .extract::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("`{at}`: {v} does not fit a 64-bit integer"));
    }
    if v.is_instance_of::<PyFloat>() {
        return v
            .extract::<f64>()
            .map(toml::Value::Float)
            .map_err(|e| format!("`{at}`: {e}"));
    }
    if let Ok(m) = v.cast::<PyMapping>() {
        return to_table(m.as_any(), at).map(toml::Value::Table);
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in v.try_iter().map_err(|e| e.to_string())?.enumerate() {
            let item = item.map_err(|e| e.to_string())?;
            out.push(to_toml(&item, &format!("{at}[{i}]"))?);
        }
        return Ok(toml::Value::Array(out));
    }
    if v.is_none() {
        return Err(format!(
            "`{at}` is None, which TOML cannot hold: leave the key out instead"
        ));
    }
    // NumPy's scalars and other numbers.
    if v.hasattr("__index__").unwrap_or(false) {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(toml::Value::Integer(i));
        }
    }
    if v.hasattr("__float__").unwrap_or(false) {
        if let Ok(x) = v.extract::<f64>() {
            return Ok(toml::Value::Float(x));
        }
    }
    let kind = v
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    Err(format!(
        "`{at}` is a {kind}, which TOML cannot hold (give a bool, int, float, str, list or dict)"
    ))
}

/// A Python mapping with string keys as a TOML table.
fn to_table(m: &Bound<'_, PyAny>, at: &str) -> Result<toml::Table, String> {
    let m = m
        .cast::<PyMapping>()
        .map_err(|_| format!("`{at}` must be a dict"))?;
    let mut out = toml::Table::new();
    let items = m.items().map_err(|e| e.to_string())?;
    for item in items.iter() {
        let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) =
            item.extract().map_err(|e: PyErr| e.to_string())?;
        let key: String = k.extract().map_err(|_| {
            format!(
                "`{at}` has the key {}, not a string",
                k.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            )
        })?;
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        out.insert(key, to_toml(&v, &path)?);
    }
    Ok(out)
}

/// A TOML value as Python.
fn toml_to_py<'py>(py: Python<'py>, v: &toml::Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        toml::Value::String(s) => s.into_pyobject(py)?.into_any(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any(),
        toml::Value::Float(x) => x.into_pyobject(py)?.into_any(),
        toml::Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any(),
        toml::Value::Datetime(d) => d.to_string().into_pyobject(py)?.into_any(),
        toml::Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| toml_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        toml::Value::Table(t) => table_to_py(py, t)?.into_any(),
    })
}

fn table_to_py<'py>(py: Python<'py>, t: &toml::Table) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in t {
        d.set_item(k, toml_to_py(py, v)?)?;
    }
    Ok(d)
}

/// A JSON value as Python (`None` for null, int for whole numbers).
fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => py.None().into_bound(py),
        J::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        J::String(s) => s.into_pyobject(py)?.into_any(),
        J::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        J::Object(o) => {
            let d = PyDict::new(py);
            for (k, v) in o {
                d.set_item(k, json_to_py(py, v)?)?;
            }
            d.into_any()
        }
    })
}

// ---------------------------------------------------------------- tables

/// A bytearray of a fixed length, filled from the front.
struct Filling<'py> {
    array: Bound<'py, PyByteArray>,
    len: usize,
    at: usize,
}

impl<'py> Filling<'py> {
    /// A bytearray of `len` bytes, not yet written (every byte is written
    /// before Python sees it: [`PyColumns::finish`] checks).
    fn new(py: Python<'py>, len: usize) -> PyResult<Self> {
        let size = pyo3::ffi::Py_ssize_t::try_from(len)
            .map_err(|_| pyo3::exceptions::PyMemoryError::new_err("table too large"))?;
        // SAFETY: a null source asks CPython for `size` bytes left as they
        // are; the result is a new reference or null with an exception set.
        let array = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                pyo3::ffi::PyByteArray_FromStringAndSize(std::ptr::null(), size),
            )?
        };
        Ok(Filling {
            array: array.cast_into::<PyByteArray>()?,
            len,
            at: 0,
        })
    }

    /// Appends `bytes`; past the end, nothing (the length check in
    /// [`PyColumns::finish`] then fails).
    fn push<const N: usize>(&mut self, bytes: [u8; N]) {
        if self.at + N > self.len {
            self.at = usize::MAX / 2;
            return;
        }
        // SAFETY: the bytearray is ours alone (no Python code has seen it)
        // and `at + N <= len`, its length, so the bytes written are in it.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.array.data().add(self.at), N);
        }
        self.at += N;
    }

    fn full(&self) -> bool {
        self.at == self.len
    }
}

/// One column on its way to Python.
enum Col<'py> {
    /// Fixed-size values: kind `i8`, `f8` or `bool`.
    Fixed(&'static str, Filling<'py>),
    /// Whole numbers with gaps: the values and the mask (true where absent).
    Opt(Filling<'py>, Filling<'py>),
    /// Words or None.
    Text(Vec<Bound<'py, PyAny>>),
}

/// A table on its way to Python: a list of columns `(name, kind, data,
/// mask)`, kind `i8` (data: int64 bytes), `f8` (float64 bytes, NaN where
/// absent), `opt_i8` (int64 bytes and a mask of bool bytes, true where
/// absent), `bool` (bool bytes) or `str` (a list of str or None). The bytes
/// are bytearrays, which `numpy.frombuffer` views without a copy (and
/// writable), each filled straight from kvsim's records, block by block.
struct PyColumns<'py> {
    py: Python<'py>,
    rows: usize,
    columns: Vec<(String, Col<'py>)>,
    /// The first error (an allocation that failed); later values are skipped.
    error: Option<PyErr>,
    /// The words of text columns so far, one Python string each, shared.
    words: Vec<(&'static str, Bound<'py, PyString>)>,
}

impl<'py> PyColumns<'py> {
    fn new(py: Python<'py>) -> Self {
        PyColumns {
            py,
            rows: 0,
            columns: Vec::new(),
            error: None,
            words: Vec::new(),
        }
    }

    /// The column `name`, made by `new` (for [`Self::rows`] rows) if there
    /// is none yet; None after an error.
    fn column(
        &mut self,
        name: &str,
        new: impl FnOnce(Python<'py>, usize) -> PyResult<Col<'py>>,
    ) -> Option<&mut Col<'py>> {
        if self.error.is_some() {
            return None;
        }
        let at = match self.columns.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => match new(self.py, self.rows) {
                Ok(c) => {
                    self.columns.push((name.to_string(), c));
                    self.columns.len() - 1
                }
                Err(e) => {
                    self.error = Some(e);
                    return None;
                }
            },
        };
        Some(&mut self.columns[at].1)
    }

    fn fixed<T, const N: usize>(
        &mut self,
        name: &str,
        kind: &'static str,
        values: impl Iterator<Item = T>,
        to_bytes: fn(T) -> [u8; N],
    ) {
        let new = |py, rows: usize| Ok(Col::Fixed(kind, Filling::new(py, rows * N)?));
        if let Some(Col::Fixed(_, data)) = self.column(name, new) {
            for v in values {
                data.push(to_bytes(v));
            }
        }
    }

    fn ints(&mut self, name: &str, values: impl Iterator<Item = i64>) {
        self.fixed(name, "i8", values, i64::to_ne_bytes);
    }

    fn floats(&mut self, name: &str, values: impl Iterator<Item = f64>) {
        self.fixed(name, "f8", values, f64::to_ne_bytes);
    }

    fn bools(&mut self, name: &str, values: impl Iterator<Item = bool>) {
        self.fixed(name, "bool", values, |b| [u8::from(b)]);
    }

    fn opt_ints(&mut self, name: &str, values: impl Iterator<Item = Option<i64>>) {
        let new = |py, rows: usize| {
            Ok(Col::Opt(
                Filling::new(py, rows * 8)?,
                Filling::new(py, rows)?,
            ))
        };
        if let Some(Col::Opt(data, mask)) = self.column(name, new) {
            for v in values {
                data.push(v.unwrap_or(0).to_ne_bytes());
                mask.push([u8::from(v.is_none())]);
            }
        }
    }

    fn strings(&mut self, name: &str, values: impl Iterator<Item = Option<String>>) {
        let py = self.py;
        let new = |_, rows| Ok(Col::Text(Vec::with_capacity(rows)));
        if let Some(Col::Text(items)) = self.column(name, new) {
            items.extend(values.map(|v| match v {
                Some(s) => PyString::new(py, &s).into_any(),
                None => py.None().into_bound(py),
            }));
        }
    }

    /// The list of columns, or the first error.
    fn finish(self) -> PyResult<Bound<'py, PyList>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let py = self.py;
        let none = || py.None().into_bound(py);
        let mut out = Vec::with_capacity(self.columns.len());
        for (name, col) in self.columns {
            let (kind, data, mask, full) = match col {
                Col::Fixed(kind, d) => (kind, d.array.clone().into_any(), none(), d.full()),
                Col::Opt(d, m) => (
                    "opt_i8",
                    d.array.clone().into_any(),
                    m.array.clone().into_any(),
                    d.full() && m.full(),
                ),
                Col::Text(items) => {
                    let full = items.len() == self.rows;
                    ("str", PyList::new(py, items)?.into_any(), none(), full)
                }
            };
            if !full {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                    "kvsim: column `{name}` does not have the table's {} rows",
                    self.rows
                )));
            }
            out.push(PyTuple::new(
                py,
                [
                    PyString::new(py, &name).into_any(),
                    PyString::new(py, kind).into_any(),
                    data,
                    mask,
                ],
            )?);
        }
        PyList::new(py, out)
    }
}

impl ColumnSink for PyColumns<'_> {
    fn rows(&mut self, n: usize) {
        self.rows = n;
    }

    fn int(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = i64>) {
        self.ints(name, values);
    }

    fn opt_int(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = Option<i64>>) {
        self.opt_ints(name, values);
    }

    fn float(&mut self, name: &'static str, values: impl ExactSizeIterator<Item = f64>) {
        self.floats(name, values);
    }

    fn text(
        &mut self,
        name: &'static str,
        values: impl ExactSizeIterator<Item = Option<&'static str>>,
    ) {
        let py = self.py;
        let mut words = std::mem::take(&mut self.words);
        let new = |_, rows| Ok(Col::Text(Vec::with_capacity(rows)));
        if let Some(Col::Text(items)) = self.column(name, new) {
            items.extend(values.map(|w| match w {
                None => py.None().into_bound(py),
                Some(w) => match words.iter().find(|(s, _)| *s == w) {
                    Some((_, p)) => p.clone().into_any(),
                    None => {
                        let p = PyString::new(py, w);
                        words.push((w, p.clone()));
                        p.into_any()
                    }
                },
            }));
        }
        self.words = words;
    }
}

/// Whether `s` is a number as kvsim writes one in a CSV cell (Rust's `{}`
/// of an integer or a float: `3`, `-0.25`, `1e-7`, `inf`, `NaN`).
fn is_number(s: &str) -> bool {
    matches!(s, "inf" | "-inf" | "NaN")
        || (s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
            && s.parse::<f64>().is_ok())
}

/// A CSV column (its `name` and `cells`) typed as pandas would read it,
/// except that whole numbers with empty cells stay whole (a nullable
/// column): all whole numbers (unless `float`: a column of a float metric
/// whose values happen to be whole), all numbers (NaN where empty; an
/// all-empty column too), all `true`/`false`, or text (None where empty).
fn typed_column(out: &mut PyColumns<'_>, name: &str, cells: Vec<String>, float: bool) {
    let present = || cells.iter().filter(|c| !c.is_empty());
    if cells.iter().all(String::is_empty) {
        return out.floats(name, cells.iter().map(|_| f64::NAN));
    }
    if !float && present().all(|c| c.parse::<i64>().is_ok()) {
        if cells.iter().all(|c| !c.is_empty()) {
            return out.ints(name, cells.iter().map(|c| c.parse().unwrap_or(0)));
        }
        return out.opt_ints(name, cells.iter().map(|c| c.parse().ok()));
    }
    if present().all(|c| is_number(c)) {
        return out.floats(name, cells.iter().map(|c| c.parse().unwrap_or(f64::NAN)));
    }
    if cells.iter().all(|c| c == "true" || c == "false") {
        return out.bools(name, cells.iter().map(|c| c == "true"));
    }
    out.strings(
        name,
        cells.into_iter().map(|c| (!c.is_empty()).then_some(c)),
    );
}

/// Which numeric columns of a kvsim table hold floats even when every value
/// is whole.
#[derive(Copy, Clone)]
enum Table {
    /// `sweep.csv`: after `replicates`, every metric but the whole-number
    /// ones (counts), and the `_ci95` and `slo_` columns; the axes before it
    /// as their values are.
    Sweep,
    /// `plan.csv` and `crossover.csv`: every column but the counts
    /// ([`PLAN_COUNTS`]) and the candidate axes (dotted keys).
    Plan,
}

/// The whole-number columns of `plan.csv` and `crossover.csv`.
const PLAN_COUNTS: [&str; 10] = [
    "rank",
    "tp",
    "replicas",
    "gpus",
    "deployment_gpus",
    "copies",
    "probes",
    "shapes_simulated",
    "shapes_pruned",
    "shapes_infeasible",
];

/// Whether each column of `header` (of a `kind` table) holds floats.
fn float_columns(kind: Table, header: &[String]) -> Vec<bool> {
    match kind {
        Table::Sweep => {
            let counts = kvsim::metrics::directions::COUNTS;
            let first = header
                .iter()
                .position(|h| h == "replicates")
                .map_or(header.len(), |i| i + 1);
            header
                .iter()
                .enumerate()
                .map(|(i, h)| i >= first && !counts.contains(&h.as_str()))
                .collect()
        }
        Table::Plan => header
            .iter()
            .map(|h| !h.contains('.') && !PLAN_COUNTS.contains(&h.as_str()))
            .collect(),
    }
}

/// A text table of `kind` (its header and rows of cells) as typed columns.
fn text_table<'py>(
    py: Python<'py>,
    kind: Table,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
) -> PyResult<Bound<'py, PyList>> {
    let floats = float_columns(kind, &header);
    let rows_n = rows.len();
    let mut columns: Vec<Vec<String>> = header
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for row in rows {
        for (c, cell) in columns.iter_mut().zip(row) {
            c.push(cell);
        }
    }
    let mut out = PyColumns::new(py);
    out.rows = rows_n;
    for ((name, cells), float) in header.iter().zip(columns).zip(floats) {
        typed_column(&mut out, name, cells, float);
    }
    out.finish()
}

/// A CSV that kvsim wrote, read into its header and rows.
fn read_csv(bytes: &[u8]) -> Result<(Vec<String>, Vec<Vec<String>>), csv::Error> {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers()?.iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.map(|rec| rec.iter().map(String::from).collect()))
        .collect::<Result<_, _>>()?;
    Ok((header, rows))
}

// ---------------------------------------------------------------- scenario

/// A scenario: a TOML table, as read from a file or given as a dict, and
/// the path that names it in messages and against which its data files
/// (traces, empirical lengths) resolve.
///
/// A Scenario is not validated when made: `run` validates it as
/// `kvsim run` does, `sweep` and `plan` each point and candidate as their
/// commands do (a sweep's base need not be a valid run by itself). Call
/// `validate()` to check it as `kvsim run` would.
#[pyclass(module = "kvsim", frozen, name = "Scenario")]
struct Scenario {
    table: toml::Table,
    path: PathBuf,
}

/// The path that names a scenario made from a dict.
const DICT_PATH: &str = "<dict>";

#[pymethods]
impl Scenario {
    /// Reads the scenario file at `path` (as `kvsim run PATH` does), then
    /// applies `overrides` (see `with_overrides`).
    #[staticmethod]
    #[pyo3(signature = (path, overrides=None))]
    fn from_toml(
        py: Python<'_>,
        path: PathBuf,
        overrides: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Scenario> {
        let table = kvsim::scenario::read_table(&path).map_err(|e| error(py, &e))?;
        let s = Scenario { table, path };
        match overrides {
            Some(o) => s.with_overrides(py, o),
            None => Ok(s),
        }
    }

    /// A scenario from a dict shaped like the TOML file (nested dicts for
    /// tables). `path` names it in messages (default `<dict>`), and
    /// relative data paths in it resolve against `path`'s directory (by
    /// default the working directory).
    #[staticmethod]
    #[pyo3(signature = (d, path=None))]
    fn from_dict(
        py: Python<'_>,
        d: &Bound<'_, PyAny>,
        path: Option<PathBuf>,
    ) -> PyResult<Scenario> {
        let path = path.unwrap_or_else(|| PathBuf::from(DICT_PATH));
        let table = to_table(d, "").map_err(|reason| {
            error(
                py,
                &kvsim::Error::Scenario {
                    path: path.clone(),
                    source: kvsim::SpecError::new("", reason),
                },
            )
        })?;
        Ok(Scenario { table, path })
    }

    /// A copy with keys overridden, as `--set KEY.PATH=VALUE` overrides
    /// them: a dict of dotted keys to values
    /// (`{"traffic.arrival.rate": 8, "cache.policy": "paged"}`), or a list
    /// of the command line's `"KEY.PATH=VALUE"` strings (values parsed as
    /// TOML, else taken as bare strings). Quote a part that holds dots:
    /// `'sweep."traffic.arrival.rate"'`.
    fn with_overrides(&self, py: Python<'_>, overrides: &Bound<'_, PyAny>) -> PyResult<Scenario> {
        let mut table = self.table.clone();
        if let Ok(m) = overrides.cast::<PyMapping>() {
            for item in m.items()?.iter() {
                let (k, v): (String, Bound<'_, PyAny>) = item.extract().map_err(|_| {
                    usage(
                        py,
                        "overrides: every key must be a dotted key path (a str)".into(),
                    )
                })?;
                let value = to_toml(&v, &k).map_err(|e| usage(py, format!("--set {k}: {e}")))?;
                let shown = format!("--set {k}={value}");
                kvsim::scenario::apply_override(&mut table, &k, value)
                    .map_err(|e| usage(py, format!("{shown}: {e}")))?;
            }
        } else if overrides.is_instance_of::<PyString>() {
            return Err(usage(
                py,
                "overrides: give a dict of dotted keys to values, or a list of \
                 \"KEY.PATH=VALUE\" strings, not one string"
                    .into(),
            ));
        } else {
            let sets: Vec<String> = overrides.extract().map_err(|_| {
                usage(
                    py,
                    "overrides: give a dict of dotted keys to values, or a list of \
                     \"KEY.PATH=VALUE\" strings"
                        .into(),
                )
            })?;
            kvsim::scenario::apply_cli_overrides(&mut table, &sets).map_err(|e| error(py, &e))?;
        }
        Ok(Scenario {
            table,
            path: self.path.clone(),
        })
    }

    /// The scenario's `name` (None if it has none).
    #[getter]
    fn name(&self) -> Option<String> {
        self.table
            .get("name")
            .and_then(toml::Value::as_str)
            .map(String::from)
    }

    /// The path that names it (its file, or `<dict>`).
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The scenario table as nested dicts (overrides applied).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        table_to_py(py, &self.table)
    }

    /// The scenario as TOML text.
    fn to_toml(&self, py: Python<'_>) -> PyResult<String> {
        toml::to_string(&self.table).map_err(|e| usage(py, format!("cannot write TOML: {e}")))
    }

    /// Validates the scenario as `kvsim run` does; raises KvsimError if it
    /// is not a valid run.
    fn validate(&self, py: Python<'_>) -> PyResult<()> {
        kvsim::scenario::Scenario::from_table(self.table.clone(), &self.path)
            .map(|_| ())
            .map_err(|e| error(py, &e))
    }

    fn __repr__(&self) -> String {
        match self.name() {
            Some(n) => format!("Scenario(name={n:?}, path={:?})", self.path()),
            None => format!("Scenario(path={:?})", self.path()),
        }
    }
}

// ---------------------------------------------------------------- commands

/// The guard of `--max-events`, `--time-limit` and `--allow-large`,
/// refusing what the command line's parser refuses.
fn guard(
    py: Python<'_>,
    max_events: Option<u64>,
    time_limit: Option<f64>,
    allow_large: bool,
) -> PyResult<GuardArgs> {
    if max_events == Some(0) {
        return Err(usage(py, "max_events=0: must be at least 1".into()));
    }
    if let Some(t) = time_limit {
        if !(t.is_finite() && t > 0.0) {
            return Err(usage(
                py,
                format!("time_limit={t}: expected a positive number of seconds"),
            ));
        }
    }
    Ok(GuardArgs {
        max_events,
        time_limit,
        allow_large,
    })
}

fn check_threads(py: Python<'_>, threads: Option<usize>) -> PyResult<()> {
    match threads {
        Some(0) => Err(usage(py, "threads=0: must be at least 1".into())),
        _ => Ok(()),
    }
}

/// `requests.csv`'s inputs: the records, each request's replica and a
/// disaggregated run's flights.
type RequestParts = (
    Vec<kvsim::metrics::RequestRecord>,
    Option<Vec<u32>>,
    Option<Vec<kvsim::metrics::disagg::FlightTimes>>,
);

/// A finished run's records and timeline, kept until Python asks for them
/// as tables (each once: asking hands it over).
#[pyclass(module = "kvsim._kvsim", name = "_Run")]
struct Run {
    /// `requests.csv`'s inputs.
    requests: Option<RequestParts>,
    /// `timeline.csv`'s inputs: the rows and each row's replica.
    timeline: Option<(Vec<kvsim::metrics::TimelineRow>, Option<Vec<u32>>)>,
}

#[pymethods]
impl Run {
    /// The columns of requests.csv; the records are freed.
    fn requests<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let (records, replica_of, flights) = self.requests.take().ok_or_else(|| taken(py))?;
        let mut out = PyColumns::new(py);
        kvsim::report::columnar::write_requests(
            &records,
            replica_of.as_deref(),
            flights.as_deref(),
            &mut out,
        );
        out.finish()
    }

    /// The columns of timeline.csv; the rows are freed.
    fn timeline<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let (rows, replica_of) = self.timeline.take().ok_or_else(|| taken(py))?;
        let mut out = PyColumns::new(py);
        kvsim::report::columnar::write_timeline(&rows, replica_of.as_deref(), &mut out);
        out.finish()
    }
}

fn taken(py: Python<'_>) -> PyErr {
    usage(py, "this table of the run was already handed over".into())
}

/// Runs one scenario as `kvsim run` does and returns, without writing a
/// file, a dict: `summary` (summary.json), `seed`, `simulate_s` (wall
/// seconds of the simulation) and `run` (a `_Run` that hands over the
/// requests and timeline columns when asked).
#[pyfunction]
#[pyo3(signature = (scenario, seed=None, *, max_events=None, time_limit=None, allow_large=false))]
fn run<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, Scenario>,
    seed: Option<u64>,
    max_events: Option<u64>,
    time_limit: Option<f64>,
    allow_large: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let guard = guard(py, max_events, time_limit, allow_large)?;
    let s = scenario.get();
    let (table, path) = (s.table.clone(), s.path.clone());
    let (result, warnings) = detached(py, move |stop| {
        let mut warnings = Vec::new();
        let result = embed::run(table, &path, seed, &guard, stop, &mut |w| warnings.push(w));
        (result, warnings)
    })?;
    warn_all(py, &warnings)?;
    let r = result.map_err(|e| error(py, &e))?;
    let out = r.output;
    let (replica_of_request, replica_of_row, flights) = match out.cluster {
        Some(c) => (
            Some(c.replica_of_request),
            Some(c.replica_of_row),
            c.flights,
        ),
        None => (None, None, None),
    };
    let handle = Run {
        requests: Some((out.records, replica_of_request, flights)),
        timeline: Some((out.timeline, replica_of_row)),
    };
    let dict = PyDict::new(py);
    dict.set_item("summary", json_to_py(py, &r.summary)?)?;
    dict.set_item("seed", r.seed)?;
    dict.set_item("simulate_s", r.simulate_s)?;
    dict.set_item("run", Bound::new(py, handle)?)?;
    Ok(dict)
}

/// Runs a scenario's sweep as `kvsim sweep` does and returns the columns of
/// sweep.csv. `axes` (a dict of dotted keys to lists of values) replaces
/// the scenario's `[sweep]` table when given. A failed point raises
/// KvsimError with the finished points' columns as its `partial_columns`.
#[pyfunction]
#[pyo3(signature = (scenario, axes=None, threads=None, *, max_events=None, time_limit=None, allow_large=false))]
fn sweep<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, Scenario>,
    axes: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
    max_events: Option<u64>,
    time_limit: Option<f64>,
    allow_large: bool,
) -> PyResult<Bound<'py, PyList>> {
    let guard = guard(py, max_events, time_limit, allow_large)?;
    check_threads(py, threads)?;
    let s = scenario.get();
    let mut table = s.table.clone();
    let path = s.path.clone();
    if let Some(axes) = axes {
        let grid = to_table(axes, "sweep").map_err(|reason| {
            error(
                py,
                &kvsim::Error::Scenario {
                    path: path.clone(),
                    source: kvsim::SpecError::new("sweep", reason),
                },
            )
        })?;
        table.insert("sweep".into(), toml::Value::Table(grid));
    }
    let (result, warnings) = detached(py, move |stop| {
        let mut warnings = Vec::new();
        let result = embed::sweep(&table, &path, threads, &guard, stop, &mut |w| {
            warnings.push(w)
        })
        .map(|r| (r.table, r.error));
        (result, warnings)
    })?;
    warn_all(py, &warnings)?;
    let (t, failed) = result.map_err(|e| error(py, &e))?;
    let columns = text_table(py, Table::Sweep, t.header, t.rows)?;
    if let Some(e) = failed {
        let err = error(py, &e);
        err.value(py).setattr("partial_columns", columns)?;
        return Err(err);
    }
    Ok(columns)
}

/// Plans a scenario as `kvsim plan` does (with `crossover`, as
/// `kvsim plan --crossover`) and returns a dict: `table` (the columns of
/// plan.csv or crossover.csv), `feasible` and `crossover_ratio`. `slo` is
/// `--slo`'s text, e.g. `"ttft_p99=2,tpot_p99=0.05"`.
#[pyfunction]
#[pyo3(signature = (scenario, slo=None, threads=None, *, crossover=false, allow_large=false))]
fn plan<'py>(
    py: Python<'py>,
    scenario: &Bound<'py, Scenario>,
    slo: Option<String>,
    threads: Option<usize>,
    crossover: bool,
    allow_large: bool,
) -> PyResult<Bound<'py, PyDict>> {
    check_threads(py, threads)?;
    let s = scenario.get();
    let (table, path) = (s.table.clone(), s.path.clone());
    let (result, warnings) = detached(py, move |stop| {
        let mut warnings = Vec::new();
        let result = embed::plan(
            &table,
            &path,
            slo.as_deref(),
            threads,
            allow_large,
            crossover,
            stop,
            &mut |w| warnings.push(w),
        )
        .and_then(|r| {
            let table = read_csv(&r.csv).map_err(|e| {
                kvsim::Error::io(&path, std::io::Error::other(format!("plan table: {e}")))
            })?;
            Ok((table, r.feasible, r.crossover_ratio))
        });
        (result, warnings)
    })?;
    warn_all(py, &warnings)?;
    let ((header, rows), feasible, ratio) = result.map_err(|e| error(py, &e))?;
    let out = PyDict::new(py);
    out.set_item("table", text_table(py, Table::Plan, header, rows)?)?;
    out.set_item("feasible", feasible)?;
    out.set_item("crossover_ratio", ratio)?;
    Ok(out)
}

/// `kvsim kv --json`: the KV cache bytes of a model (a catalog name, or a
/// Hugging Face config.json, or an explicit shape) at `seq_len` tokens and
/// `batch` sequences.
#[pyfunction]
#[pyo3(signature = (model=None, *, hf_config=None, layers=None, kv_heads=None, head_dim=None,
    seq_len=8192, batch=1, kv_dtype="bf16", block_size=16))]
#[allow(clippy::too_many_arguments)]
fn kv<'py>(
    py: Python<'py>,
    model: Option<String>,
    hf_config: Option<PathBuf>,
    layers: Option<u32>,
    kv_heads: Option<u32>,
    head_dim: Option<u32>,
    seq_len: u64,
    batch: u64,
    kv_dtype: &str,
    block_size: u32,
) -> PyResult<Bound<'py, PyAny>> {
    // What the command line's parser refuses.
    let shape = [
        ("layers", layers),
        ("kv_heads", kv_heads),
        ("head_dim", head_dim),
    ];
    let given: Vec<&str> = shape
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| *n)
        .collect();
    for (name, set) in [
        ("model", model.is_some()),
        ("hf_config", hf_config.is_some()),
    ] {
        if set && !given.is_empty() {
            return Err(usage(
                py,
                format!("`{name}` cannot be used with `{}`", given.join("`, `")),
            ));
        }
    }
    if model.is_some() && hf_config.is_some() {
        return Err(usage(py, "`hf_config` cannot be used with `model`".into()));
    }
    if !given.is_empty() && given.len() < shape.len() {
        return Err(usage(
            py,
            "an explicit shape needs all of `layers`, `kv_heads` and `head_dim`".into(),
        ));
    }
    if !(1..=1_048_576).contains(&block_size) {
        return Err(usage(
            py,
            format!("block_size={block_size}: must be in 1..=1048576"),
        ));
    }
    let kv_dtype = kv_dtype
        .parse()
        .map_err(|e: String| usage(py, format!("--kv-dtype {kv_dtype}: {e}")))?;
    let args = KvArgs {
        model,
        hf_config,
        layers,
        kv_heads,
        head_dim,
        seq_len,
        batch,
        kv_dtype,
        block_size,
        json: true,
    };
    let report = embed::kv_json(&args).map_err(|e| error(py, &e))?;
    json_to_py(py, &report)
}

/// `kvsim catalog --json`: the built-in models, GPUs and engine presets
/// (`kind`: "models", "gpus" or "engines"; all by default), each with its
/// public source.
#[pyfunction]
#[pyo3(signature = (kind=None))]
fn catalog<'py>(py: Python<'py>, kind: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    let kind = match kind {
        None => None,
        Some("models") => Some(CatalogKind::Models),
        Some("gpus") => Some(CatalogKind::Gpus),
        Some("engines") => Some(CatalogKind::Engines),
        Some(other) => {
            return Err(usage(
                py,
                format!("kind={other:?}: expected \"models\", \"gpus\" or \"engines\""),
            ));
        }
    };
    json_to_py(py, &embed::catalog_json(kind))
}

/// kvsim's library, for the `kvsim` package.
#[pymodule]
fn _kvsim(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Scenario>()?;
    m.add_class::<Run>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(kv, m)?)?;
    m.add_function(wrap_pyfunction!(catalog, m)?)?;
    m.add("KvsimError", py.get_type::<KvsimError>())?;
    m.add("KvsimWarning", py.get_type::<KvsimWarning>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
