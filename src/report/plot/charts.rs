//! Which charts a sweep or a timeline gets, and what goes into each.
//!
//! The default charts answer the questions seed 000 tells an operator to ask
//! (when does memory run out, how big does the batch get, do latencies meet
//! the objectives, where does the KV budget go, how close to full does the
//! cache run); a custom chart plots any column against any other.

use crate::error::Error;

use super::axis::Axis;
use super::figure::{
    Body, Figure, Layer, LegendEntry, Line, NEUTRAL, PALETTE, Point, Reference, Sample, Stroke,
};
use super::table::{Sweep, Table, Timeline};

/// A chart and the file stem it is written under (`tpot` -> `tpot.png`).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedFigure {
    /// File stem, without extension.
    pub name: String,
    /// The chart.
    pub figure: Figure,
}

/// Timelines longer than this are reduced to [`BUCKETS`] buckets per line.
pub const DOWNSAMPLE_ABOVE: usize = 20_000;
/// Buckets a long timeline is reduced to: about two per horizontal pixel of
/// the plot, each keeping its minimum and maximum so spikes survive.
pub const BUCKETS: usize = 2_000;

/// How a column's values are shown: a factor from the CSV's unit and the unit
/// that results.
pub(super) fn measure(name: &str) -> (f64, &'static str) {
    let base = name.strip_suffix("_ci95").unwrap_or(name);
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    match base {
        "step_s" | "slo_tpot_p99" => (1e3, "ms"),
        "time" | "duration_s" | "slo_ttft_p99" => (1.0, "s"),
        "oom_rate" | "kv_time_above_90" | "prefix_hit_rate" => (100.0, "%"),
        "host_hit_rate" | "ssd_hit_rate" | "remote_hit_rate" | "total_hit_rate" => (100.0, "%"),
        "pcie_h2d_util" | "pcie_d2h_util" | "ssd_util" | "nic_util" => (100.0, "%"),
        "host_hit_tokens" | "ssd_hit_tokens" | "remote_hit_tokens" | "recompute_avoided_tokens" => {
            (1.0, "tokens")
        }
        "host_stored_bytes"
        | "host_loaded_bytes"
        | "ssd_stored_bytes"
        | "ssd_loaded_bytes"
        | "remote_stored_bytes"
        | "remote_loaded_bytes" => (1e-9, "GB"),
        "host_evicted_blocks" | "ssd_evicted_blocks" | "remote_evicted_blocks" => (1.0, "blocks"),
        "loads_declined" => (1.0, "loads"),
        "throughput_tok_s" => (1.0, "tokens/s"),
        "goodput_rps" => (1.0, "requests/s"),
        "kv_bytes_per_token" => (1.0 / 1024.0, "KiB"),
        "prefix_hit_tokens" => (1.0, "tokens"),
        "running"
        | "waiting"
        | "batch_ceiling"
        | "batch_ceiling_inflight"
        | "batch_peak"
        | "batch_mean" => (1.0, "sequences"),
        n if n.starts_with("batch_bound_") => (100.0, "%"),
        "requests" | "ok" | "oom" | "unservable" | "crashed" | "timeout" => (1.0, "requests"),
        n if n.starts_with("tpot_") => (1e3, "ms"),
        n if n.starts_with("ttft_") || n.starts_with("e2e_") => (1.0, "s"),
        n if n.ends_with("_frac") || n.starts_with("waste_") => (100.0, "%"),
        n if n.ends_with("_bytes") => (1.0 / GIB, "GiB"),
        n if n.ends_with("rate") => (1.0, "requests/s"),
        n if n.ends_with("users") => (1.0, "users"),
        _ => (1.0, ""),
    }
}

/// `name (unit)`, or the bare name for unitless columns.
fn titled(name: &str) -> String {
    match measure(name).1 {
        "" => name.to_string(),
        unit => format!("{name} ({unit})"),
    }
}

/// A file-name-safe version of a column name: letters, digits, `.`, `-` and
/// `_` kept, anything else (and a leading dot, which would hide the file) `_`.
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// The column named `name`, or a usage error listing the columns there are.
fn resolve(table: &Table, name: &str, flag: &str) -> Result<usize, Error> {
    table.column(name).ok_or_else(|| {
        Error::Usage(format!(
            "{}: no column `{name}` for {flag}; columns are: {}",
            table.path().display(),
            table.headers().join(", ")
        ))
    })
}

/// Rows split into lines: one group per distinct value of the key columns,
/// each sorted by x.
struct Grouping {
    /// Position of each row on the x axis (`None`: no x value, not plotted).
    xs: Vec<Option<f64>>,
    /// The x cell of each row as written (for titles: a tick label may round).
    x_texts: Vec<String>,
    /// The x axis.
    x_axis: Axis,
    /// The key column names, for the legend heading.
    key_names: Vec<String>,
    groups: Vec<Group>,
}

struct Group {
    label: String,
    /// Row indexes in increasing x.
    rows: Vec<usize>,
}

impl Grouping {
    /// Groups `table`'s rows for lines along `x_col`. Lines are separated by
    /// `series` and, when x is a sweep axis, by every other sweep axis too (so
    /// a three-axis sweep never draws a zig-zag through unrelated points).
    fn new(
        table: &Table,
        axes: &[usize],
        x_col: usize,
        series: Option<usize>,
    ) -> Result<Grouping, Error> {
        let (xs, x_axis) = if table.is_numeric(x_col) {
            let xs = table.numbers(x_col)?;
            let values: Vec<f64> = xs.iter().flatten().copied().collect();
            (xs, Axis::auto_padded(&values))
        } else {
            let mut names: Vec<String> = Vec::new();
            let xs = table
                .texts(x_col)
                .map(|t| {
                    let i = names.iter().position(|n| n == t).unwrap_or_else(|| {
                        names.push(t.to_string());
                        names.len() - 1
                    });
                    Some(i as f64)
                })
                .collect();
            (xs, Axis::categories(names))
        };
        let mut key_cols: Vec<usize> = series.into_iter().collect();
        if axes.contains(&x_col) {
            key_cols.extend(axes.iter().filter(|&&a| a != x_col && Some(a) != series));
        }
        let mut groups: Vec<(Vec<&str>, Group)> = Vec::new();
        let texts: Vec<Vec<&str>> = key_cols.iter().map(|&c| table.texts(c).collect()).collect();
        for (row, x) in xs.iter().enumerate() {
            if x.is_none() {
                continue;
            }
            let key: Vec<&str> = texts.iter().map(|t| t[row]).collect();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, g)) => g.rows.push(row),
                None => groups.push((
                    key.clone(),
                    Group {
                        label: key.join(", "),
                        rows: vec![row],
                    },
                )),
            }
        }
        let mut groups: Vec<Group> = groups.into_iter().map(|(_, g)| g).collect();
        for g in &mut groups {
            // Stable: rows with equal x keep file order.
            g.rows
                .sort_by(|&a, &b| xs[a].partial_cmp(&xs[b]).expect("finite"));
        }
        Ok(Grouping {
            xs,
            x_texts: table.texts(x_col).map(str::to_string).collect(),
            x_axis,
            key_names: key_cols
                .iter()
                .map(|&c| table.headers()[c].clone())
                .collect(),
            groups,
        })
    }

    fn color(&self, group: usize) -> plotters::style::RGBColor {
        PALETTE[group % PALETTE.len()]
    }

    /// One line per group through column `y` (scaled), with error bars from
    /// `<y>_ci95` when the file has it.
    fn lines(&self, table: &Table, y: &str, style: LineStyle) -> Result<Vec<Line>, Error> {
        let (scale, _) = measure(y);
        let ys = table.numbers_of(y)?;
        let errs = match table.column(&format!("{y}_ci95")) {
            Some(c) => table.numbers(c)?,
            None => vec![None; ys.len()],
        };
        Ok(self
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| Line {
                color: self.color(g),
                stroke: style.stroke,
                width: style.width,
                markers: style.markers,
                points: group
                    .rows
                    .iter()
                    .map(|&r| Point {
                        x: self.xs[r].expect("grouped rows have x"),
                        y: ys[r].map(|v| v * scale),
                        err: errs[r].map(|v| v * scale),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Legend rows naming the groups (none when there is a single unnamed one).
    fn legend(&self) -> Vec<LegendEntry> {
        if self.key_names.is_empty() {
            return Vec::new();
        }
        self.groups
            .iter()
            .enumerate()
            .map(|(g, group)| LegendEntry {
                label: group.label.clone(),
                color: self.color(g),
                sample: Sample::Solid,
            })
            .collect()
    }

    fn legend_title(&self) -> Option<String> {
        (!self.key_names.is_empty()).then(|| self.key_names.join(", "))
    }
}

#[derive(Clone, Copy)]
struct LineStyle {
    stroke: Stroke,
    width: u32,
    markers: bool,
}

const SOLID: LineStyle = LineStyle {
    stroke: Stroke::Solid,
    width: 3,
    markers: true,
};
const DASHED: LineStyle = LineStyle {
    stroke: Stroke::Dashed,
    width: 2,
    markers: true,
};
const DOTTED: LineStyle = LineStyle {
    stroke: Stroke::Dotted,
    width: 3,
    markers: true,
};

/// Every value a y axis must show: points with their error bars, and the
/// reference lines.
fn y_values(lines: &[Line], refs: &[Reference]) -> Vec<f64> {
    let mut v: Vec<f64> = Vec::new();
    for p in lines.iter().flat_map(|l| &l.points) {
        if let Some(y) = p.y {
            v.push(y);
            if let Some(e) = p.err {
                v.push(y + e);
                // A lower bound under zero is clamped at draw time; it must
                // not push a positive metric off a log axis.
                if y - e > 0.0 {
                    v.push(y - e);
                }
            }
        }
    }
    v.extend(refs.iter().map(|r| r.y));
    v
}

fn style_entry(label: &str, sample: Sample) -> LegendEntry {
    LegendEntry {
        label: label.to_string(),
        color: NEUTRAL,
        sample,
    }
}

/// The default load axis of a sweep: the first numeric axis whose key ends in
/// `rate`, `users` or `concurrency`, else the first numeric axis, else the
/// first axis, else the point index.
pub fn default_x(sweep: &Sweep) -> usize {
    let t = &sweep.table;
    let numeric: Vec<usize> = sweep
        .axes
        .iter()
        .copied()
        .filter(|&a| t.is_numeric(a))
        .collect();
    let loadish = |&a: &usize| {
        let h = &t.headers()[a];
        ["rate", "users", "concurrency"]
            .iter()
            .any(|s| h.ends_with(s))
    };
    numeric
        .iter()
        .copied()
        .find(loadish)
        .or(numeric.first().copied())
        .or(sweep.axes.first().copied())
        .unwrap_or(0)
}

/// The default series of a sweep: the first non-numeric axis other than x,
/// else the first other axis, else none.
pub fn default_series(sweep: &Sweep, x: usize) -> Option<usize> {
    let t = &sweep.table;
    let others = || sweep.axes.iter().copied().filter(move |&a| a != x);
    others()
        .find(|&a| !t.is_numeric(a))
        .or_else(|| others().next())
}

/// The sweep's default charts: `wall` (the headline: OOM rate, batch and
/// TPOT p99 side by side), `oom_rate`, `batch`, `tpot`, `ttft_p99`, `waste`, along `x` (default: the load axis) split by `series` (default: see
/// [`default_series`]); and `hit_rate_tiers` when the sweep's KV tiers below
/// HBM stored anything.
pub fn sweep_figures(
    sweep: &Sweep,
    x: Option<&str>,
    series: Option<&str>,
) -> Result<Vec<NamedFigure>, Error> {
    let t = &sweep.table;
    let x_col = match x {
        Some(name) => resolve(t, name, "--x")?,
        None => default_x(sweep),
    };
    let series_col = match series {
        Some(name) => Some(resolve(t, name, "--series")?),
        None => default_series(sweep, x_col),
    };
    let g = Grouping::new(t, &sweep.axes, x_col, series_col)?;
    let x_name = t.headers()[x_col].clone();
    let x_title = titled(&x_name);

    let line_figure = |title: String,
                       subtitle: Option<String>,
                       y_title: &str,
                       lines: Vec<Line>,
                       refs: Vec<Reference>,
                       y: Axis,
                       styles: Vec<LegendEntry>| {
        let mut legend = g.legend();
        legend.extend(styles);
        Figure {
            title,
            subtitle,
            x_title: x_title.clone(),
            y_title: y_title.to_string(),
            x: g.x_axis.clone(),
            y,
            body: Body::Lines(lines),
            references: refs,
            legend_title: g.legend_title(),
            legend,
        }
    };

    let mut out = Vec::new();

    // OOM rate: always linear from 0, because 0 % is the answer most loads give.
    let lines = g.lines(t, "oom_rate", SOLID)?;
    let values = y_values(&lines, &[]);
    let max = values.iter().copied().fold(0.0, f64::max);
    let oom = line_figure(
        format!("OOM rate vs {x_name}"),
        Some("requests failed for memory (oom, crashed, unservable), % of arrivals".into()),
        "OOM rate (%)",
        lines,
        Vec::new(),
        Axis::linear_nice(0.0, max, true),
        Vec::new(),
    );

    // Batch: what the scheduler reached against what the memory holds, at
    // the run's in-flight footprint (if the file has it: older sweeps do
    // not) and at full length.
    let mut lines = g.lines(t, "batch_peak", SOLID)?;
    let mut styles = vec![style_entry("observed peak", Sample::Solid)];
    if t.column("batch_ceiling_inflight").is_some() {
        lines.extend(g.lines(t, "batch_ceiling_inflight", DOTTED)?);
        styles.push(style_entry("fits in flight", Sample::Dotted));
    }
    lines.extend(g.lines(t, "batch_ceiling", DASHED)?);
    styles.push(style_entry("fits at full length", Sample::Dashed));
    let y = Axis::auto(&y_values(&lines, &[]), true);
    let batch = line_figure(
        format!("Batch size vs {x_name}"),
        Some(
            "solid: observed peak · dotted: sequences that fit at the run's in-flight KV per \
             sequence · dashed: at full length (prompt + output)"
                .into(),
        ),
        "sequences in the batch",
        lines,
        Vec::new(),
        y,
        styles,
    );

    // TPOT in milliseconds, p50 and p99, against the objective.
    let (tpot_scale, _) = measure("tpot_p99");
    let refs: Vec<Reference> = sweep
        .slo_tpot_p99
        .map(|s| Reference {
            y: s * tpot_scale,
            label: format!("SLO: TPOT p99 ≤ {} ms", short(s * tpot_scale)),
        })
        .into_iter()
        .collect();
    let p99 = g.lines(t, "tpot_p99", DASHED)?;
    let mut lines = g.lines(t, "tpot_p50", SOLID)?;
    lines.extend(p99.iter().cloned());
    let y = Axis::auto(&y_values(&lines, &refs), true);
    let tpot = line_figure(
        format!("Time per output token vs {x_name}"),
        Some("solid: p50 · dashed: p99".into()),
        "TPOT (ms)",
        lines,
        refs.clone(),
        y,
        vec![
            style_entry("p50", Sample::Solid),
            style_entry("p99", Sample::Dashed),
        ],
    );

    // The headline: where each configuration hits the memory wall, what
    // batch it reached, and the TPOT it paid on the way, side by side.
    let p99: Vec<Line> = p99
        .into_iter()
        .map(|l| Line {
            stroke: Stroke::Solid,
            width: SOLID.width,
            ..l
        })
        .collect();
    let tpot_y = Axis::auto(&y_values(&p99, &refs), true);
    let panel = |fig: &Figure, title: &str, subtitle: &str| Figure {
        title: title.to_string(),
        subtitle: Some(subtitle.to_string()),
        ..fig.clone()
    };
    // The wall's batch panel keeps the peak and the full-length ceiling: a
    // peak above that line is a server admitting more than it can finish,
    // which is where the OOM rate leaves 0. (The in-flight ceiling, noisy
    // once a server crashes, stays in `batch`.)
    let mut wall_batch = g.lines(t, "batch_peak", SOLID)?;
    wall_batch.extend(g.lines(t, "batch_ceiling", DASHED)?);
    let mut legend = g.legend();
    legend.push(style_entry("observed peak", Sample::Solid));
    legend.push(style_entry("fits at full length", Sample::Dashed));
    out.push(NamedFigure {
        name: "wall".into(),
        figure: Figure {
            title: format!("The memory wall: OOM rate, batch and TPOT vs {x_name}"),
            subtitle: Some(
                "OOM rate leaves 0 where a configuration runs out of KV memory; its batch stops \
                 growing there; TPOT climbs with the batch until then"
                    .into(),
            ),
            legend,
            body: Body::Panels(vec![
                panel(&oom, "OOM rate", "% of requests failed for memory"),
                Figure {
                    y: Axis::auto(&y_values(&wall_batch, &[]), true),
                    body: Body::Lines(wall_batch),
                    ..panel(
                        &batch,
                        "Batch",
                        "peak, and sequences that fit at full length",
                    )
                },
                Figure {
                    title: "TPOT p99".into(),
                    subtitle: Some("time per output token, 99th percentile".into()),
                    y_title: "TPOT p99 (ms)".into(),
                    y: tpot_y,
                    body: Body::Lines(p99),
                    ..tpot.clone()
                },
            ]),
            ..oom.clone()
        },
    });
    out.push(NamedFigure {
        name: "oom_rate".into(),
        figure: oom,
    });
    out.push(NamedFigure {
        name: "batch".into(),
        figure: batch,
    });
    out.push(NamedFigure {
        name: "tpot".into(),
        figure: tpot,
    });

    // TTFT p99 in seconds, against the objective.
    let refs: Vec<Reference> = sweep
        .slo_ttft_p99
        .map(|s| Reference {
            y: s,
            label: format!("SLO: TTFT p99 ≤ {} s", short(s)),
        })
        .into_iter()
        .collect();
    let lines = g.lines(t, "ttft_p99", SOLID)?;
    let y = Axis::auto(&y_values(&lines, &refs), true);
    out.push(NamedFigure {
        name: "ttft_p99".into(),
        figure: line_figure(
            format!("Time to first token (p99) vs {x_name}"),
            Some("queueing plus prefill; a wall here means requests wait for memory".into()),
            "TTFT p99 (s)",
            lines,
            refs,
            y,
            Vec::new(),
        ),
    });

    out.push(NamedFigure {
        name: "waste".into(),
        figure: waste_figure(sweep, &g, &x_name)?,
    });
    if let Some(figure) = tier_hit_figure(sweep, &g, &x_name)? {
        out.push(NamedFigure {
            name: "hit_rate_tiers".into(),
            figure,
        });
    }
    Ok(out)
}

/// The KV tiers below HBM a sweep table's columns describe, with their
/// colours in the hit-rate chart (HBM's prefix cache is [`PALETTE`]`[0]`).
const TIERS: [(&str, plotters::style::RGBColor); 3] = [
    ("host", PALETTE[1]),
    ("ssd", PALETTE[2]),
    ("remote", PALETTE[3]),
];

/// Prompt tokens served from HBM's prefix cache and loaded from each tier
/// below it, as stacked bars of shares of the prompt tokens looked up, one
/// bar per sweep point (in the order of the other charts' lines). `None`
/// unless some point's tiers stored anything: a sweep without tiers writes
/// zeros in their columns (and an older sweep.csv has none), and a tier
/// that stored nothing cannot have been hit. Tiers that stored nothing at
/// any point are left out.
fn tier_hit_figure(sweep: &Sweep, g: &Grouping, x_name: &str) -> Result<Option<Figure>, Error> {
    let t = &sweep.table;
    let mut active = Vec::new();
    for (tier, color) in TIERS {
        let stored = format!("{tier}_stored_bytes");
        let rate = format!("{tier}_hit_rate");
        if t.column(&stored).is_none() || t.column(&rate).is_none() {
            continue;
        }
        if t.numbers_of(&stored)?
            .into_iter()
            .flatten()
            .any(|v| v > 0.0)
        {
            active.push((tier, rate, color));
        }
    }
    if active.is_empty() || t.column("prefix_hit_rate").is_none() {
        return Ok(None);
    }
    let rows: Vec<usize> = g
        .groups
        .iter()
        .flat_map(|gr| gr.rows.iter().copied())
        .collect();
    let group_of: Vec<&str> = g
        .groups
        .iter()
        .flat_map(|gr| gr.rows.iter().map(|_| gr.label.as_str()))
        .collect();
    let categories: Vec<String> = rows
        .iter()
        .zip(&group_of)
        .map(|(&r, label)| {
            if g.key_names.is_empty() {
                g.x_texts[r].clone()
            } else {
                format!("{}, {label}", g.x_texts[r])
            }
        })
        .collect();
    let layer = |column: &str, color| -> Result<Layer, Error> {
        let values = t.numbers_of(column)?;
        Ok(Layer {
            color,
            values: rows.iter().map(|&r| values[r].map(|v| v * 100.0)).collect(),
        })
    };
    let mut layers = vec![layer("prefix_hit_rate", PALETTE[0])?];
    let mut legend = vec![LegendEntry {
        label: "HBM (prefix cache)".into(),
        color: PALETTE[0],
        sample: Sample::Block,
    }];
    for (tier, rate, color) in &active {
        layers.push(layer(rate, *color)?);
        legend.push(LegendEntry {
            label: (*tier).to_string(),
            color: *color,
            sample: Sample::Block,
        });
    }
    // Top layer first, as the bars stack.
    legend.reverse();
    let max_total = (0..rows.len())
        .map(|i| layers.iter().filter_map(|l| l.values[i]).sum::<f64>())
        .fold(0.0, f64::max);
    let y = if max_total <= 100.0 {
        Axis::linear(0.0, 110.0)
    } else {
        Axis::linear_nice(0.0, max_total * 1.08, true)
    };
    let mut x_title = titled(x_name);
    for key in &g.key_names {
        x_title.push_str(", ");
        x_title.push_str(key);
    }
    Ok(Some(Figure {
        title: format!("Prompt tokens served from cache, by tier, vs {x_name}"),
        subtitle: Some(
            "% of prompt tokens looked up at admission: found in HBM, or loaded from a tier \
             below it; the rest was prefilled"
                .into(),
        ),
        x_title,
        y_title: "share of prompt tokens (%)".into(),
        x: Axis::categories(categories),
        y,
        body: Body::StackedBars {
            layers,
            total_unit: " %".into(),
        },
        references: Vec::new(),
        legend_title: Some("served from".into()),
        legend,
    }))
}

/// The memory breakdown as stacked bars, one per group, each at the group's
/// highest load point.
fn waste_figure(sweep: &Sweep, g: &Grouping, x_name: &str) -> Result<Figure, Error> {
    let t = &sweep.table;
    const PARTS: [(&str, &str, plotters::style::RGBColor); 4] = [
        ("waste_used", "used (token states)", PALETTE[0]),
        ("waste_reserved", "reserved (future tokens)", PALETTE[4]),
        ("waste_internal", "internal fragmentation", PALETTE[1]),
        ("waste_external", "external fragmentation", PALETTE[5]),
    ];
    let columns = PARTS
        .iter()
        .map(|(c, _, _)| t.numbers_of(c))
        .collect::<Result<Vec<_>, _>>()?;
    // Each group's last row in x order is its highest load.
    let picks: Vec<usize> = g
        .groups
        .iter()
        .filter_map(|gr| gr.rows.last().copied())
        .collect();
    let x_label = |r: usize| g.x_texts[r].clone();
    let categories: Vec<String> = g
        .groups
        .iter()
        .zip(&picks)
        .map(|(gr, &r)| {
            if g.key_names.is_empty() {
                format!("{x_name} = {}", x_label(r))
            } else {
                gr.label.clone()
            }
        })
        .collect();
    let layers: Vec<Layer> = PARTS
        .iter()
        .zip(&columns)
        .map(|((_, _, color), col)| Layer {
            color: *color,
            values: picks.iter().map(|&r| col[r].map(|v| v * 100.0)).collect(),
        })
        .collect();
    let highest = picks.iter().map(|&r| g.xs[r]).collect::<Vec<_>>();
    let title = if highest.windows(2).all(|w| w[0] == w[1]) && !picks.is_empty() {
        format!(
            "KV memory breakdown at the highest load, {x_name} = {}",
            x_label(picks[0])
        )
    } else {
        format!("KV memory breakdown at each series' highest {x_name}")
    };
    let max_total = (0..picks.len())
        .map(|i| layers.iter().filter_map(|l| l.values[i]).sum::<f64>())
        .fold(0.0, f64::max);
    // Whole budget on the axis (the unfilled part is free memory), with room
    // above 100 % for the totals.
    let y = if max_total <= 100.0 {
        Axis::linear(0.0, 110.0)
    } else {
        Axis::linear_nice(0.0, max_total * 1.08, true)
    };
    Ok(Figure {
        title,
        subtitle: Some("time-averaged share of the KV budget; the rest is free".into()),
        x_title: g.legend_title().unwrap_or_default(),
        y_title: "share of the KV budget (%)".into(),
        x: Axis::categories(categories),
        y,
        body: Body::StackedBars {
            layers,
            total_unit: " %".into(),
        },
        references: Vec::new(),
        legend_title: Some("memory".into()),
        legend: PARTS
            .iter()
            .rev()
            .map(|(_, label, color)| LegendEntry {
                label: label.to_string(),
                color: *color,
                sample: Sample::Block,
            })
            .collect(),
    })
}

/// A number in few characters (for reference labels).
fn short(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// One chart of column `y` against column `x` (default: the load axis for a
/// sweep, `time` for a timeline), split by `series`; named `<y>_vs_<x>`.
pub fn custom_figure(
    table: &Table,
    sweep: Option<&Sweep>,
    x: Option<&str>,
    y: &str,
    series: Option<&str>,
) -> Result<NamedFigure, Error> {
    let y_col = resolve(table, y, "--y")?;
    let y_name = table.headers()[y_col].clone();
    let x_col = match (x, sweep) {
        (Some(name), _) => resolve(table, name, "--x")?,
        (None, Some(s)) => default_x(s),
        (None, None) => resolve(table, "time", "--x")?,
    };
    let series_col = series.map(|s| resolve(table, s, "--series")).transpose()?;
    let axes = sweep.map(|s| s.axes.as_slice()).unwrap_or(&[]);
    let g = Grouping::new(table, axes, x_col, series_col)?;
    // Check the y column before drawing anything, to name the bad cell.
    table.numbers(y_col)?;
    let style = if sweep.is_some() {
        SOLID
    } else {
        LineStyle {
            stroke: Stroke::Solid,
            width: 2,
            markers: false,
        }
    };
    let mut lines = g.lines(table, &y_name, style)?;
    if sweep.is_none() {
        for l in &mut lines {
            l.points = downsample(&l.points);
        }
    }
    let (scale, _) = measure(&y_name);
    let slo = sweep.and_then(|s| match y_name.as_str() {
        "tpot_p99" => s.slo_tpot_p99,
        "ttft_p99" => s.slo_ttft_p99,
        _ => None,
    });
    let refs: Vec<Reference> = slo
        .map(|s| Reference {
            y: s * scale,
            label: format!("SLO ≤ {} {}", short(s * scale), measure(&y_name).1),
        })
        .into_iter()
        .collect();
    let y_axis = Axis::auto(&y_values(&lines, &refs), true);
    let x_name = table.headers()[x_col].clone();
    let legend = g.legend();
    Ok(NamedFigure {
        name: format!("{}_vs_{}", sanitize(&y_name), sanitize(&x_name)),
        figure: Figure {
            title: format!("{y_name} vs {x_name}"),
            subtitle: None,
            x_title: titled(&x_name),
            y_title: titled(&y_name),
            x: g.x_axis.clone(),
            y: y_axis,
            body: Body::Lines(lines),
            references: refs,
            legend_title: g.legend_title(),
            legend,
        },
    })
}

/// Reduces a long line to the minimum and maximum of each of [`BUCKETS`]
/// equal x intervals, in x order: deterministic, and a spike one step wide
/// still reaches its height on the chart. Short lines pass through.
pub fn downsample(points: &[Point]) -> Vec<Point> {
    if points.len() <= DOWNSAMPLE_ABOVE {
        return points.to_vec();
    }
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.x), hi.max(p.x))
        });
    let width = (hi - lo) / BUCKETS as f64;
    let bucket = |x: f64| {
        if width > 0.0 {
            (((x - lo) / width) as usize).min(BUCKETS - 1)
        } else {
            0
        }
    };
    let mut out = Vec::with_capacity(2 * BUCKETS);
    let mut i = 0;
    while i < points.len() {
        let b = bucket(points[i].x);
        let mut j = i;
        let (mut min, mut max): (Option<usize>, Option<usize>) = (None, None);
        while j < points.len() && bucket(points[j].x) == b {
            if let Some(y) = points[j].y {
                if min.is_none_or(|m| y < points[m].y.expect("set")) {
                    min = Some(j);
                }
                if max.is_none_or(|m| y > points[m].y.expect("set")) {
                    max = Some(j);
                }
            }
            j += 1;
        }
        match (min, max) {
            (Some(a), Some(b)) if a == b => out.push(points[a]),
            (Some(a), Some(b)) => {
                out.push(points[a.min(b)]);
                out.push(points[a.max(b)]);
            }
            // A bucket without values keeps the gap in the line.
            _ => out.push(Point {
                x: points[i].x,
                y: None,
                err: None,
            }),
        }
        i = j;
    }
    out
}

/// The columns of a timeline its default charts draw, as numbers (`None`:
/// an empty cell, or one a chart cannot place).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineSeries {
    /// `time`, seconds.
    pub time: Vec<Option<f64>>,
    /// `running`.
    pub running: Vec<Option<f64>>,
    /// `waiting`.
    pub waiting: Vec<Option<f64>>,
    /// `kv_frac`.
    pub kv_frac: Vec<Option<f64>>,
    /// `waste_used`.
    pub waste_used: Vec<Option<f64>>,
}

impl TimelineSeries {
    /// The series of a `timeline.csv` read as a table.
    pub fn of(t: &Table) -> Result<TimelineSeries, Error> {
        Ok(TimelineSeries {
            time: t.numbers_of("time")?,
            running: t.numbers_of("running")?,
            waiting: t.numbers_of("waiting")?,
            kv_frac: t.numbers_of("kv_frac")?,
            waste_used: t.numbers_of("waste_used")?,
        })
    }
}

/// The timeline's default charts: `occupancy` and `queue`.
pub fn timeline_figures(tl: &Timeline) -> Result<Vec<NamedFigure>, Error> {
    Ok(timeline_series_figures(&TimelineSeries::of(&tl.table)?))
}

/// [`timeline_figures`] of a timeline's columns, however they were read.
pub fn timeline_series_figures(t: &TimelineSeries) -> Vec<NamedFigure> {
    let time = &t.time;
    let series = |ys: &[Option<f64>], scale: f64| -> Vec<Point> {
        let pts: Vec<Point> = time
            .iter()
            .zip(ys)
            .filter_map(|(x, y)| {
                x.map(|x| Point {
                    x,
                    y: y.map(|v| v * scale),
                    err: None,
                })
            })
            .collect();
        downsample(&pts)
    };
    let times: Vec<f64> = time.iter().flatten().copied().collect();
    let x_axis = Axis::linear_padded(
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let line = |color, width, points| Line {
        color,
        stroke: Stroke::Solid,
        width,
        markers: false,
        points,
    };

    // Occupancy, with the share of time spent above the warning level.
    let frac = &t.kv_frac;
    let (mut above, mut total, mut peak) = (0.0, 0.0, 0.0f64);
    for (i, (x, f)) in time.iter().zip(frac).enumerate() {
        let (Some(x), Some(f)) = (x, f) else { continue };
        peak = peak.max(*f);
        // A row holds until the next row starts.
        if let Some(Some(next)) = time.get(i + 1) {
            let dt = (next - x).max(0.0);
            total += dt;
            if *f > 0.9 {
                above += dt;
            }
        }
    }
    let held = series(&t.kv_frac, 100.0);
    let used = series(&t.waste_used, 100.0);
    let warning = Reference {
        y: 90.0,
        label: "90 % warning".into(),
    };
    let max_y = held
        .iter()
        .chain(&used)
        .filter_map(|p| p.y)
        .fold(100.0, f64::max);
    let occupancy = Figure {
        title: "KV cache occupancy over time".into(),
        subtitle: Some(format!(
            "peak {:.1} % of the KV budget; above 90 % for {:.1} % of the time",
            peak * 100.0,
            if total > 0.0 {
                above / total * 100.0
            } else {
                0.0
            }
        )),
        x_title: "time (s)".into(),
        y_title: "share of the KV budget (%)".into(),
        x: x_axis.clone(),
        y: if max_y <= 100.0 {
            Axis::linear(0.0, 105.0)
        } else {
            Axis::linear_nice(0.0, max_y, true)
        },
        body: Body::Lines(vec![line(PALETTE[0], 2, held), line(PALETTE[2], 1, used)]),
        legend: vec![
            LegendEntry {
                label: "held by sequences".into(),
                color: PALETTE[0],
                sample: Sample::Solid,
            },
            LegendEntry {
                label: "storing tokens".into(),
                color: PALETTE[2],
                sample: Sample::Solid,
            },
        ],
        references: vec![warning],
        legend_title: None,
    };

    let running = series(&t.running, 1.0);
    let waiting = series(&t.waiting, 1.0);
    let peak_of = |pts: &[Point]| pts.iter().filter_map(|p| p.y).fold(0.0, f64::max);
    let (peak_run, peak_wait) = (peak_of(&running), peak_of(&waiting));
    let queue = Figure {
        title: "Running and waiting sequences over time".into(),
        subtitle: Some(format!(
            "peak running {peak_run:.0}, peak waiting {peak_wait:.0}"
        )),
        x_title: "time (s)".into(),
        y_title: "sequences".into(),
        x: x_axis,
        y: Axis::linear_nice(0.0, peak_run.max(peak_wait), true),
        body: Body::Lines(vec![
            line(PALETTE[0], 2, running),
            line(PALETTE[1], 2, waiting),
        ]),
        references: Vec::new(),
        legend_title: None,
        legend: vec![
            LegendEntry {
                label: "running (in the batch)".into(),
                color: PALETTE[0],
                sample: Sample::Solid,
            },
            LegendEntry {
                label: "waiting for admission".into(),
                color: PALETTE[1],
                sample: Sample::Solid,
            },
        ],
    };
    vec![
        NamedFigure {
            name: "occupancy".into(),
            figure: occupancy,
        },
        NamedFigure {
            name: "queue".into(),
            figure: queue,
        },
    ]
}
