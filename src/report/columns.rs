//! The columns of a run's per-request and per-step tables (`requests.*`,
//! `timeline.*`), defined once for every format that writes them: the CSV
//! writer ([`super::fastcsv`]) and the Parquet writer (`super::parquet`) read
//! the same cells, so the two formats hold the same values by construction.

use std::ops::Range;

use super::fastcsv::Text;
use crate::metrics::disagg::FlightTimes;
use crate::metrics::{RequestRecord, TimelineRow};
use crate::units::{SimDuration, SimTime};

/// What a column holds, which fixes its Parquet type (and, in CSV, only how
/// its cells are spelt).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// A count or an index, always present (Parquet `INT64`).
    Int,
    /// A count or an index that may be absent (Parquet optional `INT64`).
    OptInt,
    /// Seconds, always present (Parquet `DOUBLE`; CSV 9 decimals).
    Secs,
    /// Seconds, possibly absent (Parquet optional `DOUBLE`; CSV 9 decimals).
    OptSecs,
    /// A fraction, always present (Parquet `DOUBLE`; CSV 6 decimals, and
    /// Parquet holds the same 6-decimal value).
    Frac,
    /// A word, possibly absent (Parquet optional `BYTE_ARRAY` UTF-8 string).
    OptText,
}

/// One cell as every writer sees it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Cell {
    /// Absent: an empty CSV field, a Parquet null.
    Null,
    /// A count or an index.
    Int(u64),
    /// An instant or a span in nanoseconds, written as seconds.
    Nanos(u64),
    /// A fraction, written with 6 decimals.
    Frac(f64),
    /// A word (never quoted: no separator, quote or line break in it).
    Text(&'static str),
}

/// A table of a run: named columns of [`Cell`]s, row by row.
pub trait Rows: Sync {
    /// The columns, in file order.
    fn columns(&self) -> &[(&'static str, ColumnKind)];
    /// Number of data rows.
    fn len(&self) -> usize;
    /// Whether there are no data rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell of data row `row` in column `col`.
    fn cell(&self, row: usize, col: usize) -> Cell;

    /// Calls `f` with the cells of column `col` in `rows`, in order: the
    /// Parquet writer's way through a table, column by column.
    #[inline]
    fn column_cells(&self, col: usize, rows: Range<usize>, f: &mut impl FnMut(Cell))
    where
        Self: Sized,
    {
        for row in rows {
            f(self.cell(row, col));
        }
    }

    /// Appends data row `row` as a CSV line: its cells, then a newline. A
    /// table may spell its rows faster than cell by cell, never differently.
    #[inline]
    fn push_csv_row(&self, row: usize, out: &mut Text) {
        for col in 0..self.columns().len() {
            if col > 0 {
                out.push(b',');
            }
            out.cell(self.cell(row, col));
        }
        out.push(b'\n');
    }
}

/// A column of `requests.*`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Req {
    Id,
    Arrival,
    Admitted,
    FirstToken,
    Finished,
    PromptTokens,
    OutputTokens,
    OutputTarget,
    MaxTokens,
    Samples,
    Session,
    Turn,
    Preemptions,
    Outcome,
    HbmHitTokens,
    TierHitTokens,
    Queue,
    Load,
    Prefill,
    Replica,
    Transfer,
    FirstStep,
    DecodeStall,
    KvTransferBytes,
    PrefillReplica,
}

impl Req {
    const BASE: [Req; 19] = [
        Req::Id,
        Req::Arrival,
        Req::Admitted,
        Req::FirstToken,
        Req::Finished,
        Req::PromptTokens,
        Req::OutputTokens,
        Req::OutputTarget,
        Req::MaxTokens,
        Req::Samples,
        Req::Session,
        Req::Turn,
        Req::Preemptions,
        Req::Outcome,
        Req::HbmHitTokens,
        Req::TierHitTokens,
        Req::Queue,
        Req::Load,
        Req::Prefill,
    ];
    const DISAGG: [Req; 5] = [
        Req::Transfer,
        Req::FirstStep,
        Req::DecodeStall,
        Req::KvTransferBytes,
        Req::PrefillReplica,
    ];

    const fn column(self) -> (&'static str, ColumnKind) {
        use ColumnKind::*;
        match self {
            Req::Id => ("id", Int),
            Req::Arrival => ("arrival", Secs),
            Req::Admitted => ("admitted", OptSecs),
            Req::FirstToken => ("first_token", OptSecs),
            Req::Finished => ("finished", OptSecs),
            Req::PromptTokens => ("prompt_tokens", Int),
            Req::OutputTokens => ("output_tokens", Int),
            Req::OutputTarget => ("output_target", Int),
            Req::MaxTokens => ("max_tokens", Int),
            Req::Samples => ("samples", Int),
            Req::Session => ("session", OptInt),
            Req::Turn => ("turn", Int),
            Req::Preemptions => ("preemptions", Int),
            Req::Outcome => ("outcome", OptText),
            Req::HbmHitTokens => ("hbm_hit_tokens", Int),
            Req::TierHitTokens => ("tier_hit_tokens", Int),
            Req::Queue => ("queue_s", OptSecs),
            Req::Load => ("load_s", OptSecs),
            Req::Prefill => ("prefill_s", OptSecs),
            Req::Replica => ("replica", Int),
            Req::Transfer => ("transfer_s", OptSecs),
            Req::FirstStep => ("first_step_s", OptSecs),
            Req::DecodeStall => ("decode_stall_s", OptSecs),
            Req::KvTransferBytes => ("kv_transfer_bytes", Int),
            Req::PrefillReplica => ("prefill_replica", OptInt),
        }
    }
}

fn at(t: Option<SimTime>) -> Cell {
    t.map_or(Cell::Null, |t| Cell::Nanos(t.as_nanos()))
}

fn span(d: Option<SimDuration>) -> Cell {
    d.map_or(Cell::Null, |d| Cell::Nanos(d.as_nanos()))
}

/// `requests.*`: one row per request, in arrival order; times in seconds.
/// After `outcome`: prompt tokens found in HBM's prefix cache and loaded from
/// KV tiers at first admission, and TTFT's parts as the summary defines them
/// (`queue_s` to first admission, `load_s` loading from tiers, `prefill_s`
/// the rest; absent where the request never got that far). A cluster's run
/// adds `replica` (for a disaggregated one, the decode replica); a
/// disaggregated run's `prefill_s` is the prefill alone, and `transfer_s`,
/// `first_step_s`, `decode_stall_s`, `kv_transfer_bytes` and
/// `prefill_replica` follow.
pub struct Requests<'a> {
    records: &'a [RequestRecord],
    replica_of: Option<&'a [u32]>,
    flights: Option<&'a [FlightTimes]>,
    cols: Vec<Req>,
    columns: Vec<(&'static str, ColumnKind)>,
}

impl<'a> Requests<'a> {
    /// The table of `records`, with a `replica` column when `replica_of` (one
    /// entry per record) is given and the disaggregation columns when
    /// `flights` (one per record) is.
    pub fn new(
        records: &'a [RequestRecord],
        replica_of: Option<&'a [u32]>,
        flights: Option<&'a [FlightTimes]>,
    ) -> Self {
        let mut cols = Req::BASE.to_vec();
        if replica_of.is_some() {
            cols.push(Req::Replica);
        }
        if flights.is_some() {
            cols.extend(Req::DISAGG);
        }
        let columns = cols.iter().map(|c| c.column()).collect();
        Requests {
            records,
            replica_of,
            flights,
            cols,
            columns,
        }
    }

    /// The cell of row `row` in column `which`.
    #[inline(always)]
    fn cell_of(&self, which: Req, row: usize) -> Cell {
        let r = &self.records[row];
        let flight = || self.flights.map(|f| f[row]).unwrap_or_default();
        let int = |v: u32| Cell::Int(u64::from(v));
        match which {
            Req::Id => Cell::Int(r.id),
            Req::Arrival => Cell::Nanos(r.arrival.as_nanos()),
            Req::Admitted => at(r.admitted),
            Req::FirstToken => at(r.first_token),
            Req::Finished => at(r.finished),
            Req::PromptTokens => int(r.prompt_tokens),
            Req::OutputTokens => int(r.output_tokens),
            Req::OutputTarget => int(r.output_target),
            Req::MaxTokens => int(r.max_tokens),
            Req::Samples => int(r.samples),
            Req::Session => r.session.map_or(Cell::Null, Cell::Int),
            Req::Turn => int(r.turn),
            Req::Preemptions => int(r.preemptions),
            Req::Outcome => r.outcome.map_or(Cell::Null, |o| Cell::Text(o.name())),
            Req::HbmHitTokens => int(r.hbm_hit_tokens),
            Req::TierHitTokens => int(r.tier_hit_tokens),
            Req::Queue => span(r.queue()),
            Req::Load => span(r.admitted.map(|_| r.load)),
            Req::Prefill => span(match self.flights {
                Some(f) => f[row].prefill_end.and_then(|e| Some(e - r.admitted?)),
                None => r.prefill(),
            }),
            Req::Replica => int(self.replica_of.map_or(0, |of| of[row])),
            Req::Transfer => {
                let f = flight();
                span(f.prefill_end.and_then(|p| Some(f.transfer_end? - p)))
            }
            Req::FirstStep => {
                let f = flight();
                span(f.transfer_end.and_then(|t| Some(r.first_token? - t)))
            }
            Req::DecodeStall => span(flight().stall),
            Req::KvTransferBytes => Cell::Int(flight().bytes),
            Req::PrefillReplica => match flight().prefill_replica {
                u32::MAX => Cell::Null,
                p => int(p),
            },
        }
    }
}

impl Rows for Requests<'_> {
    fn columns(&self) -> &[(&'static str, ColumnKind)] {
        &self.columns
    }

    fn len(&self) -> usize {
        self.records.len()
    }

    #[inline]
    fn cell(&self, row: usize, col: usize) -> Cell {
        self.cell_of(self.cols[col], row)
    }

    fn column_cells(&self, col: usize, rows: Range<usize>, f: &mut impl FnMut(Cell)) {
        /// The loop over `rows` of column `which`, compiled once per column
        /// (`which` a constant in each), so no row asks which column it is.
        #[inline(always)]
        fn each(t: &Requests, which: Req, rows: Range<usize>, f: &mut impl FnMut(Cell)) {
            for row in rows {
                f(t.cell_of(which, row));
            }
        }
        macro_rules! by_column {
            ($($c:ident),*) => {
                match self.cols[col] {
                    $(Req::$c => each(self, Req::$c, rows, f),)*
                }
            };
        }
        by_column!(
            Id,
            Arrival,
            Admitted,
            FirstToken,
            Finished,
            PromptTokens,
            OutputTokens,
            OutputTarget,
            MaxTokens,
            Samples,
            Session,
            Turn,
            Preemptions,
            Outcome,
            HbmHitTokens,
            TierHitTokens,
            Queue,
            Load,
            Prefill,
            Replica,
            Transfer,
            FirstStep,
            DecodeStall,
            KvTransferBytes,
            PrefillReplica
        )
    }

    /// The base columns straight from the record (most of `requests.csv`'s
    /// bytes), the optional ones cell by cell.
    #[inline]
    fn push_csv_row(&self, row: usize, out: &mut Text) {
        let r = &self.records[row];
        let opt = |out: &mut Text, t: Option<u64>| {
            out.push(b',');
            if let Some(ns) = t {
                out.secs(ns);
            }
        };
        let int = |out: &mut Text, v: u32| {
            out.push(b',');
            out.u64(u64::from(v));
        };
        out.u64(r.id);
        out.push(b',');
        out.secs(r.arrival.as_nanos());
        opt(out, r.admitted.map(SimTime::as_nanos));
        opt(out, r.first_token.map(SimTime::as_nanos));
        opt(out, r.finished.map(SimTime::as_nanos));
        int(out, r.prompt_tokens);
        int(out, r.output_tokens);
        int(out, r.output_target);
        int(out, r.max_tokens);
        int(out, r.samples);
        out.push(b',');
        if let Some(s) = r.session {
            out.u64(s);
        }
        int(out, r.turn);
        int(out, r.preemptions);
        out.push(b',');
        if let Some(o) = r.outcome {
            out.extend(o.name().as_bytes());
        }
        int(out, r.hbm_hit_tokens);
        int(out, r.tier_hit_tokens);
        opt(out, r.queue().map(SimDuration::as_nanos));
        opt(out, r.admitted.map(|_| r.load.as_nanos()));
        if self.flights.is_none() {
            opt(out, r.prefill().map(SimDuration::as_nanos));
        } else {
            out.push(b',');
            out.cell(self.cell(row, Req::BASE.len() - 1));
        }
        for col in Req::BASE.len()..self.cols.len() {
            out.push(b',');
            out.cell(self.cell(row, col));
        }
        out.push(b'\n');
    }
}

/// The columns of `timeline.*`, the `replica` column aside.
const TIMELINE: [(&str, ColumnKind); 10] = [
    ("time", ColumnKind::Secs),
    ("running", ColumnKind::Int),
    ("waiting", ColumnKind::Int),
    ("kv_used_bytes", ColumnKind::Int),
    ("kv_frac", ColumnKind::Frac),
    ("waste_used", ColumnKind::Frac),
    ("waste_reserved", ColumnKind::Frac),
    ("waste_internal", ColumnKind::Frac),
    ("waste_external", ColumnKind::Frac),
    ("step_s", ColumnKind::Secs),
];

/// `timeline.*`: the server at each recorded step, with a last `replica`
/// column for a cluster's run (each replica's rows in turn).
pub struct Timeline<'a> {
    rows: &'a [TimelineRow],
    replica_of: Option<&'a [u32]>,
    columns: Vec<(&'static str, ColumnKind)>,
}

impl<'a> Timeline<'a> {
    /// The table of `rows`, with a `replica` column when `replica_of` (one
    /// entry per row) is given.
    pub fn new(rows: &'a [TimelineRow], replica_of: Option<&'a [u32]>) -> Self {
        let mut columns = TIMELINE.to_vec();
        if replica_of.is_some() {
            columns.push(("replica", ColumnKind::Int));
        }
        Timeline {
            rows,
            replica_of,
            columns,
        }
    }
}

impl Rows for Timeline<'_> {
    fn columns(&self) -> &[(&'static str, ColumnKind)] {
        &self.columns
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    #[inline]
    fn cell(&self, row: usize, col: usize) -> Cell {
        let r = &self.rows[row];
        let l = &r.levels;
        match col {
            0 => Cell::Nanos(r.time.as_nanos()),
            1 => Cell::Int(u64::from(r.running)),
            2 => Cell::Int(u64::from(r.waiting)),
            3 => Cell::Int(r.kv_used_bytes()),
            4 => Cell::Frac(l.share(l.kv)),
            5 => Cell::Frac(l.share(l.used)),
            6 => Cell::Frac(l.share(l.reserved)),
            7 => Cell::Frac(l.share(l.internal)),
            8 => Cell::Frac(l.share(l.external)),
            9 => Cell::Nanos(r.step.as_nanos()),
            _ => Cell::Int(u64::from(self.replica_of.map_or(0, |of| of[row]))),
        }
    }

    #[inline]
    fn push_csv_row(&self, row: usize, out: &mut Text) {
        let r = &self.rows[row];
        out.secs(r.time.as_nanos());
        out.push(b',');
        out.u64(u64::from(r.running));
        out.push(b',');
        out.u64(u64::from(r.waiting));
        out.push(b',');
        out.u64(r.kv_used_bytes());
        let levels = r.fractions();
        for x in [
            levels.kv,
            levels.used,
            levels.reserved,
            levels.internal,
            levels.external,
        ] {
            out.push(b',');
            out.frac(x);
        }
        out.push(b',');
        out.secs(r.step.as_nanos());
        if let Some(of) = self.replica_of {
            out.push(b',');
            out.u64(u64::from(of[row]));
        }
        out.push(b'\n');
    }
}
