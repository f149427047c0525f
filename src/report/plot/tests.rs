//! Unit tests of the chart choices: axes, series, units, grouping, errors.
//! Rendering to files is tested end to end in `tests/kvsim/plots.rs`.

use std::path::Path;

use super::*;

/// A sweep over `rates` x `policies` with the given extra axis columns and
/// metrics computed from the row (rate, policy index).
fn sweep_csv(rates: &[f64], policies: &[&str], slo: bool) -> String {
    let mut s = String::from(
        "point,traffic.arrival.rate,cache.policy,replicates,oom_rate,batch_ceiling,batch_peak,\
         tpot_p50,tpot_p99,tpot_p99_ci95,ttft_p99,waste_used,waste_reserved,waste_internal,\
         waste_external,future_metric,slo_ttft_p99,slo_tpot_p99\n",
    );
    let mut point = 0;
    for (pi, p) in policies.iter().enumerate() {
        for &r in rates {
            let k = pi as f64 + 1.0;
            s += &format!(
                "{point},{r},{p},3,{},{},{},{},{},{},{},{},0.05,0.02,{},x,{},{}\n",
                (r / 100.0 * k).min(1.0),
                100.0 / k,
                (r * 5.0).min(100.0 / k),
                0.01 * k + r * 1e-4,
                0.02 * k + r * 1e-3,
                0.001,
                0.1 * r * k,
                (0.05 * r * k).min(0.8),
                0.1 * (k - 1.0),
                if slo { "2" } else { "" },
                if slo { "0.05" } else { "" },
            );
            point += 1;
        }
    }
    s
}

/// `csv` with the cell at 1-based `line` in column `col` replaced by `value`.
fn set_cell(csv: &str, line: usize, col: &str, value: &str) -> String {
    let mut lines: Vec<String> = csv.lines().map(str::to_string).collect();
    let idx = lines[0].split(',').position(|h| h == col).expect("column");
    let mut cells: Vec<&str> = lines[line - 1].split(',').collect();
    cells[idx] = value;
    lines[line - 1] = cells.join(",");
    lines.join("\n") + "\n"
}

fn table(csv: &str) -> Table {
    Table::parse(Path::new("sweep.csv"), csv.as_bytes()).expect("parses")
}

fn sweep(csv: &str) -> Sweep {
    Sweep::new(table(csv)).expect("valid sweep")
}

fn data_error(e: Error) -> (Option<u64>, String) {
    match e {
        Error::DataFile { line, reason, .. } => (line, reason),
        other => panic!("expected a data-file error, got {other:?}"),
    }
}

#[test]
fn load_axis_and_series_are_chosen_from_the_axis_columns() {
    let s = sweep(&sweep_csv(&[1.0, 2.0, 4.0], &["paged", "contiguous"], true));
    assert_eq!(s.axes, vec![1, 2]);
    assert_eq!(default_x(&s), 1, "traffic.arrival.rate");
    assert_eq!(default_series(&s, 1), Some(2), "cache.policy");
    assert_eq!(s.slo_tpot_p99, Some(0.05));
    assert_eq!(s.slo_ttft_p99, Some(2.0));
}

#[test]
fn a_load_suffix_wins_over_an_earlier_numeric_axis() {
    let csv = "point,cache.block_size,traffic.arrival.users,replicates,x\n\
               0,16,1,1,0\n1,16,8,1,0\n2,32,1,1,0\n3,32,8,1,0\n";
    let s = sweep(csv);
    assert_eq!(default_x(&s), 2, "users is the load");
    // No string axis: the other axis separates the lines.
    assert_eq!(default_series(&s, 2), Some(1));
}

#[test]
fn a_single_axis_sweep_has_one_unnamed_series() {
    let csv = "point,traffic.arrival.rate,replicates,oom_rate,batch_ceiling,batch_peak,tpot_p50,\
               tpot_p99,ttft_p99,waste_used,waste_reserved,waste_internal,waste_external\n\
               0,1,1,0,10,2,0.01,0.02,0.1,0.2,0.1,0,0\n1,2,1,0.1,10,9,0.02,0.03,0.5,0.4,0.1,0,0\n";
    let s = sweep(csv);
    assert_eq!(default_series(&s, 1), None);
    let figs = sweep_figures(&s, None, None).unwrap();
    let tpot = &figs[3].figure;
    assert_eq!(tpot.legend_title, None);
    // Only the style key: no series entries to explain.
    assert_eq!(tpot.legend.len(), 2);
    let waste = &figs[5].figure;
    assert!(
        waste.title.contains("traffic.arrival.rate = 2"),
        "{}",
        waste.title
    );
}

#[test]
fn default_sweep_charts_have_the_fixed_names_and_units() {
    let s = sweep(&sweep_csv(&[1.0, 2.0, 4.0], &["paged", "contiguous"], true));
    let figs = sweep_figures(&s, None, None).unwrap();
    let names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["wall", "oom_rate", "batch", "tpot", "ttft_p99", "waste"]
    );
    let tpot = &figs[3].figure;
    assert_eq!(tpot.y_title, "TPOT (ms)");
    assert_eq!(tpot.x_title, "traffic.arrival.rate (requests/s)");
    assert_eq!(tpot.legend_title.as_deref(), Some("cache.policy"));
    let labels: Vec<&str> = tpot.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["paged", "contiguous", "p50", "p99"]);
    // The objective, in milliseconds like the axis.
    assert_eq!(tpot.references.len(), 1);
    assert!((tpot.references[0].y - 50.0).abs() < 1e-9);
    assert!(tpot.references[0].label.contains("50 ms"));
    // p50 solid and p99 dashed, one each per policy, in milliseconds, with
    // the CI of p99 as error bars.
    let Body::Lines(lines) = &tpot.body else {
        panic!("lines")
    };
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.stroke == crate::report::plot::Stroke::Dashed)
            .count(),
        2
    );
    let p99_paged = &lines[2];
    assert!((p99_paged.points[0].y.unwrap() - 21.0).abs() < 1e-9);
    assert_eq!(p99_paged.points[0].err, Some(1.0));
    assert_eq!(lines[0].points[0].err, None, "no tpot_p50_ci95 column");
    // OOM rate in percent, on a linear axis from zero.
    let oom = &figs[1].figure;
    assert!(!oom.y.is_log());
    assert_eq!(oom.y.bounds().0, 0.0);
    let Body::Lines(lines) = &oom.body else {
        panic!("lines")
    };
    assert!((lines[1].points[2].y.unwrap() - 8.0).abs() < 1e-9);
}

#[test]
fn no_slo_means_no_reference_line() {
    let s = sweep(&sweep_csv(&[1.0, 2.0, 4.0], &["paged"], false));
    let figs = sweep_figures(&s, None, None).unwrap();
    assert!(figs.iter().all(|f| f.figure.references.is_empty()));
}

#[test]
fn wide_loads_get_a_log_x_axis() {
    let s = sweep(&sweep_csv(&[0.5, 4.0, 64.0], &["paged"], true));
    let figs = sweep_figures(&s, None, None).unwrap();
    assert!(figs[1].figure.x.is_log());
    let s = sweep(&sweep_csv(&[1.0, 2.0, 4.0], &["paged"], true));
    let figs = sweep_figures(&s, None, None).unwrap();
    assert!(!figs[1].figure.x.is_log());
}

#[test]
fn waste_bars_take_each_series_at_its_highest_load() {
    let s = sweep(&sweep_csv(&[4.0, 1.0, 2.0], &["paged", "contiguous"], true));
    let figs = sweep_figures(&s, None, None).unwrap();
    let waste = &figs[5].figure;
    assert!(
        waste.title.contains("traffic.arrival.rate = 4"),
        "{}",
        waste.title
    );
    let Body::StackedBars { layers, .. } = &waste.body else {
        panic!("bars")
    };
    assert_eq!(layers.len(), 4);
    // used = 0.05 * rate * k at rate 4: 20 % for paged, 40 % for contiguous.
    let used: Vec<f64> = layers[0].values.iter().map(|v| v.unwrap()).collect();
    assert!(
        (used[0] - 20.0).abs() < 1e-9 && (used[1] - 40.0).abs() < 1e-9,
        "{used:?}"
    );
    assert_eq!(waste.x.label(1.0), "contiguous");
}

/// `csv` with KV tier columns after its other columns: HBM serves 10 % of
/// prompt tokens at every point, the host tier 20 % times the point's rate
/// (having stored the rate in GB, or nothing unless `host_stored`), the SSD
/// tier nothing (having stored `ssd_stored` bytes), and no remote tier.
fn with_tiers(csv: &str, host_stored: bool, ssd_stored: u64) -> String {
    let mut lines = csv.lines();
    let mut out = lines.next().unwrap().to_string();
    out += ",prefix_hit_rate,host_hit_rate,ssd_hit_rate,remote_hit_rate,host_stored_bytes,\
            ssd_stored_bytes,remote_stored_bytes\n";
    for line in lines {
        let rate: f64 = line.split(',').nth(1).unwrap().parse().unwrap();
        let host = if host_stored { rate * 1e9 } else { 0.0 };
        let hits = if host_stored { 0.2 * rate } else { 0.0 };
        out += &format!("{line},0.1,{hits},0,0,{host},{ssd_stored},0\n");
    }
    out
}

#[test]
fn tiers_that_stored_something_get_a_hit_rate_chart() {
    let plain = sweep_csv(&[1.0, 2.0, 4.0], &["paged", "contiguous"], true);
    // No tier columns, or tier columns of zeros (a sweep without tiers): no
    // chart.
    for csv in [plain.clone(), with_tiers(&plain, false, 0)] {
        let figs = sweep_figures(&sweep(&csv), None, None).unwrap();
        assert!(figs.iter().all(|f| f.name != "hit_rate_tiers"));
    }
    let s = sweep(&with_tiers(&plain, true, 0));
    let figs = sweep_figures(&s, None, None).unwrap();
    let names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "wall",
            "oom_rate",
            "batch",
            "tpot",
            "ttft_p99",
            "waste",
            "hit_rate_tiers"
        ]
    );
    let fig = &figs[6].figure;
    // One bar per point, in the lines' order: each policy along the rate.
    assert_eq!(fig.x.label(0.0), "1, paged");
    assert_eq!(fig.x.label(3.0), "1, contiguous");
    assert_eq!(
        fig.x_title,
        "traffic.arrival.rate (requests/s), cache.policy"
    );
    let Body::StackedBars { layers, total_unit } = &fig.body else {
        panic!("bars")
    };
    assert_eq!(total_unit, " %");
    // HBM and host: the SSD tier stored nothing, no remote tier.
    assert_eq!(layers.len(), 2);
    let host: Vec<f64> = layers[1].values.iter().map(|v| v.unwrap()).collect();
    assert!(
        host.iter()
            .zip([20.0, 40.0, 80.0, 20.0, 40.0, 80.0])
            .all(|(a, b)| (a - b).abs() < 1e-9),
        "{host:?}"
    );
    assert!(
        layers[0]
            .values
            .iter()
            .all(|v| (v.unwrap() - 10.0).abs() < 1e-9)
    );
    let labels: Vec<&str> = fig.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(labels, ["host", "HBM (prefix cache)"]);
    // A tier that stored something is drawn even where it was never hit.
    let figs = sweep_figures(&sweep(&with_tiers(&plain, true, 5)), None, None).unwrap();
    let Body::StackedBars { layers, .. } = &figs[6].figure.body else {
        panic!("bars")
    };
    assert_eq!(layers.len(), 3);
    let measure = charts::measure;
    assert_eq!(measure("host_hit_rate"), (100.0, "%"));
    assert_eq!(measure("ssd_loaded_bytes"), (1e-9, "GB"));
    assert_eq!(measure("remote_evicted_blocks"), (1.0, "blocks"));
    assert_eq!(measure("ttft_load_p99"), (1.0, "s"));
}

#[test]
fn a_third_axis_splits_lines_instead_of_zig_zagging() {
    let mut csv = String::from(
        "point,traffic.arrival.rate,cache.policy,hardware.gpu,replicates,oom_rate,batch_ceiling,\
         batch_peak,tpot_p50,tpot_p99,ttft_p99,waste_used,waste_reserved,waste_internal,waste_external\n",
    );
    let mut i = 0;
    for gpu in ["H100", "A100"] {
        for pol in ["paged", "contiguous"] {
            for r in [1, 2] {
                csv += &format!("{i},{r},{pol},{gpu},1,0,1,1,0.01,0.02,0.1,0.1,0,0,0\n");
                i += 1;
            }
        }
    }
    let s = sweep(&csv);
    let figs = sweep_figures(&s, None, None).unwrap();
    let oom = &figs[1].figure;
    assert_eq!(
        oom.legend_title.as_deref(),
        Some("cache.policy, hardware.gpu")
    );
    let labels: Vec<&str> = oom.legend.iter().map(|e| e.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "paged, H100",
            "contiguous, H100",
            "paged, A100",
            "contiguous, A100"
        ]
    );
    let Body::Lines(lines) = &oom.body else {
        panic!("lines")
    };
    assert!(lines.iter().all(|l| l.points.len() == 2));
    // Distinct colours, fixed order.
    assert_eq!(lines[0].color, PALETTE[0]);
    assert_eq!(lines[3].color, PALETTE[3]);
}

#[test]
fn options_override_x_and_series() {
    let s = sweep(&sweep_csv(&[1.0, 2.0], &["paged", "contiguous"], true));
    let figs = sweep_figures(&s, Some("cache.policy"), Some("traffic.arrival.rate")).unwrap();
    let oom = &figs[1].figure;
    assert_eq!(
        oom.x.label(0.0),
        "paged",
        "a string column becomes categories"
    );
    assert_eq!(oom.legend_title.as_deref(), Some("traffic.arrival.rate"));
    let e = sweep_figures(&s, Some("nope"), None).unwrap_err();
    assert!(matches!(&e, Error::Usage(m) if m.contains("`nope`")), "{e}");
}

#[test]
fn custom_chart_is_named_after_its_columns() {
    let s = sweep(&sweep_csv(&[1.0, 2.0], &["paged", "contiguous"], true));
    let f = custom_figure(&s.table, Some(&s), None, "tpot_p99", None).unwrap();
    assert_eq!(f.name, "tpot_p99_vs_traffic.arrival.rate");
    assert_eq!(f.figure.y_title, "tpot_p99 (ms)");
    // The objective of that very metric is drawn.
    assert_eq!(f.figure.references.len(), 1);
    // Other axes still separate the lines when x is an axis.
    assert_eq!(f.figure.legend.len(), 2);
    let f = custom_figure(
        &s.table,
        Some(&s),
        Some("batch_peak"),
        "tpot_p99",
        Some("cache.policy"),
    )
    .unwrap();
    assert_eq!(f.name, "tpot_p99_vs_batch_peak");
    assert_eq!(f.figure.x_title, "batch_peak (sequences)");
}

#[test]
fn custom_chart_errors_name_the_column() {
    let s = sweep(&sweep_csv(&[1.0, 2.0], &["paged"], true));
    let e = custom_figure(&s.table, Some(&s), None, "no_such_metric", None).unwrap_err();
    assert!(
        matches!(&e, Error::Usage(m) if m.contains("`no_such_metric`") && m.contains("sweep.csv")),
        "{e}"
    );
    // An unknown column holding text cannot be a y.
    let (line, reason) =
        data_error(custom_figure(&s.table, Some(&s), None, "future_metric", None).unwrap_err());
    assert_eq!(line, Some(2));
    assert!(
        reason.contains("future_metric") && reason.contains("`x`"),
        "{reason}"
    );
}

#[test]
fn sanitize_keeps_names_readable_and_safe() {
    assert_eq!(sanitize("traffic.arrival.rate"), "traffic.arrival.rate");
    assert_eq!(sanitize("a/b c"), "a_b_c");
    assert_eq!(sanitize(".hidden"), "_.hidden");
    assert_eq!(sanitize(""), "_");
    assert_eq!(sanitize("../x"), "_.._x");
}

#[test]
fn bad_numbers_name_line_and_column() {
    let mut csv = sweep_csv(&[1.0, 2.0], &["paged"], true);
    csv = csv.replacen("\n1,2,paged,3,", "\n1,2,paged,3,lots,", 1);
    // The row now has one field too many: reported with its line.
    let e = Table::parse(Path::new("sweep.csv"), csv.as_bytes()).unwrap_err();
    let (line, reason) = data_error(e);
    assert_eq!(line, Some(3));
    assert!(reason.contains("fields"), "{reason}");

    let csv = set_cell(
        &sweep_csv(&[1.0, 2.0], &["paged"], true),
        2,
        "batch_ceiling",
        "many",
    );
    let (line, reason) = data_error(Sweep::new(table(&csv)).unwrap_err());
    assert_eq!(line, Some(2));
    assert!(
        reason.contains("batch_ceiling") && reason.contains("`many`"),
        "{reason}"
    );
}

#[test]
fn empty_cells_are_gaps_not_errors() {
    let csv = sweep_csv(&[1.0, 2.0, 4.0], &["paged"], true);
    // Blank the TTFT p99 of the middle point.
    let csv = set_cell(&csv, 3, "ttft_p99", "");
    let s = sweep(&csv);
    let figs = sweep_figures(&s, None, None).unwrap();
    let Body::Lines(lines) = &figs[4].figure.body else {
        panic!("lines")
    };
    assert_eq!(lines[0].points[1].y, None);
    assert!(lines[0].points[2].y.is_some());
}

#[test]
fn file_kind_comes_from_the_header() {
    assert_eq!(
        table("point,replicates\n0,1\n").kind().unwrap(),
        Kind::Sweep
    );
    assert_eq!(
        table("time,kv_frac\n0,0.5\n").kind().unwrap(),
        Kind::Timeline
    );
    let (line, reason) = data_error(table("a,b\n1,2\n").kind().unwrap_err());
    assert_eq!(line, Some(1));
    assert!(reason.contains("neither"), "{reason}");
}

#[test]
fn empty_and_header_only_files_are_errors() {
    let (line, reason) = data_error(Table::parse(Path::new("x.csv"), b"").unwrap_err());
    assert_eq!(line, None);
    assert!(reason.contains("empty"), "{reason}");
    let (_, reason) =
        data_error(Table::parse(Path::new("x.csv"), b"point,replicates\n").unwrap_err());
    assert!(reason.contains("no data rows"), "{reason}");
    let (_, reason) = data_error(Table::parse(Path::new("x.csv"), b"a,a\n1,2\n").unwrap_err());
    assert!(reason.contains("appears more than once"), "{reason}");
}

#[test]
fn missing_columns_are_named() {
    let (line, reason) = data_error(Sweep::new(table("point,rate\n0,1\n")).unwrap_err());
    assert_eq!(line, Some(1));
    assert!(reason.contains("`replicates`"), "{reason}");
    // A default chart's metric missing.
    let s = sweep("point,traffic.arrival.rate,replicates,batch_peak\n0,1,1,3\n");
    let (_, reason) = data_error(sweep_figures(&s, None, None).unwrap_err());
    assert!(reason.contains("`oom_rate`"), "{reason}");
    let t = Table::parse(
        Path::new("timeline.csv"),
        b"time,kv_frac,running\n0,0.1,1\n",
    )
    .unwrap();
    let (_, reason) = data_error(Timeline::new(t).unwrap_err());
    assert!(reason.contains("`waiting`"), "{reason}");
}

fn timeline_csv(rows: usize) -> String {
    let mut s = String::from(
        "time,running,waiting,kv_used_bytes,kv_frac,waste_used,waste_reserved,waste_internal,\
         waste_external,step_s\n",
    );
    for i in 0..rows {
        let f = (i % 100) as f64 / 100.0;
        s += &format!(
            "{},{},{},0,{f},{},0,0,0,0.01\n",
            i as f64 * 0.01,
            i % 7,
            i % 3,
            f / 2.0
        );
    }
    s
}

#[test]
fn timeline_charts_report_time_above_the_warning() {
    let t = Table::parse(Path::new("timeline.csv"), timeline_csv(1001).as_bytes()).unwrap();
    let figs = timeline_figures(&Timeline::new(t).unwrap()).unwrap();
    let names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["occupancy", "queue"]);
    let occ = &figs[0].figure;
    assert_eq!(occ.references[0].y, 90.0);
    // kv_frac cycles 0.00..0.99: above 0.9 for 9 of every 100 rows (the last
    // row, which has no duration, is the 1001st).
    let sub = occ.subtitle.as_deref().unwrap();
    assert!(
        sub.contains("peak 99.0 %") && sub.contains("for 9.0 %"),
        "{sub}"
    );
}

#[test]
fn timeline_rejects_defaults_overrides_without_y() {
    let t = Table::parse(Path::new("timeline.csv"), timeline_csv(10).as_bytes()).unwrap();
    let opts = PlotOptions {
        x: Some("running".into()),
        ..PlotOptions::default()
    };
    assert!(matches!(figures(t.clone(), &opts), Err(Error::Usage(_))));
    let opts = PlotOptions {
        y: Some("waiting".into()),
        ..PlotOptions::default()
    };
    let figs = figures(t, &opts).unwrap();
    assert_eq!(figs[0].name, "waiting_vs_time");
}

#[test]
fn downsampling_keeps_extremes_and_order() {
    let n = DOWNSAMPLE_ABOVE * 3;
    let mut pts: Vec<Point> = (0..n)
        .map(|i| Point {
            x: i as f64,
            y: Some((i % 10) as f64),
            err: None,
        })
        .collect();
    // A one-step spike must survive.
    pts[12_345].y = Some(1000.0);
    let out = downsample(&pts);
    assert!(out.len() <= 2 * BUCKETS, "{}", out.len());
    assert!(out.windows(2).all(|w| w[0].x <= w[1].x));
    assert!(out.iter().any(|p| p.y == Some(1000.0)));
    assert!(out.iter().any(|p| p.y == Some(0.0)));
    assert_eq!(out, downsample(&pts), "deterministic");
    // Short lines pass through untouched.
    assert_eq!(downsample(&pts[..100]), pts[..100].to_vec());
}

#[test]
fn rendering_is_deterministic_and_sized() {
    let s = sweep(&sweep_csv(&[1.0, 2.0, 4.0], &["paged", "contiguous"], true));
    let figs = sweep_figures(&s, None, None).unwrap();
    let a = render(&figs[3].figure, Format::Png).unwrap();
    let b = render(&figs[3].figure, Format::Png).unwrap();
    assert_eq!(a, b);
    let info = png::Decoder::new(std::io::Cursor::new(&a))
        .read_info()
        .unwrap();
    assert_eq!((info.info().width, info.info().height), (WIDTH, HEIGHT));
    // The headline of panels is wider: three panels and the shared legend.
    let wall = &figs[0].figure;
    let Body::Panels(panels) = &wall.body else {
        panic!("the wall is a figure of panels")
    };
    let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["OOM rate", "Batch", "TPOT p99"]);
    assert!(
        panels
            .iter()
            .all(|p| p.legend.is_empty() || !wall.legend.is_empty())
    );
    let png = render(wall, Format::Png).unwrap();
    let info = png::Decoder::new(std::io::Cursor::new(&png))
        .read_info()
        .unwrap();
    assert_eq!((info.info().width, info.info().height), wall.size());
    assert!(wall.size().0 > 3 * crate::report::plot::PANEL_WIDTH);
    let svg = String::from_utf8(render(&figs[3].figure, Format::Svg).unwrap()).unwrap();
    assert!(svg.contains(FONT_FAMILY));
    assert!(svg.contains("SLO: TPOT p99"));
}

#[test]
fn text_is_measured_with_the_embedded_font() {
    let (w1, h) = measure_text("paged", 20.0);
    let (w2, _) = measure_text("paged paged", 20.0);
    assert!(w1 > 20 && h > 10, "{w1}x{h}");
    assert!(w2 > 2 * w1, "a space has width");
}

#[test]
fn formats_parse_from_their_names() {
    assert_eq!("png".parse::<Format>().unwrap(), Format::Png);
    assert_eq!("SVG".parse::<Format>().unwrap(), Format::Svg);
    assert!(matches!("jpeg".parse::<Format>(), Err(Error::Usage(m)) if m.contains("jpeg")));
    assert_eq!(Format::Svg.extension(), "svg");
}
