//! `kvsim::report::plot`: charts of sweep.csv and timeline.csv written to
//! disk, decoded back (PNG) and parsed (SVG).

use std::path::{Path, PathBuf};

use kvsim::Error;
use kvsim::report::plot::{Format, HEIGHT, PlotOptions, WIDTH, plot_file};

const SWEEP_DEFAULTS: [&str; 6] = ["wall", "oom_rate", "batch", "tpot", "ttft_p99", "waste"];
const TIMELINE_DEFAULTS: [&str; 2] = ["occupancy", "queue"];

/// A sweep.csv as kvsim writes it: 2 policies x 3 loads, optionally with
/// `_ci95` columns after some metrics, and with SLO columns at the end.
fn sweep_csv(ci: bool) -> String {
    let metrics = kvsim::metrics::Summary::column_names();
    let with_ci = ["oom_rate", "ttft_p99", "tpot_p50", "tpot_p99"];
    let mut header: Vec<String> = [
        "point",
        "traffic.arrival.rate",
        "cache.policy",
        "replicates",
    ]
    .map(String::from)
    .to_vec();
    for m in metrics {
        header.push(m.to_string());
        if ci && with_ci.contains(&m.as_str()) {
            header.push(format!("{m}_ci95"));
        }
    }
    header.extend(["slo_ttft_p99", "slo_tpot_p99"].map(String::from));
    let mut out = header.join(",") + "\n";
    let mut point = 0;
    for (k, policy) in ["paged", "contiguous"].into_iter().enumerate() {
        let k = k as f64 + 1.0;
        for rate in [1.0, 4.0, 16.0] {
            let load = rate / 16.0;
            let cells: Vec<String> = header[4..header.len() - 2]
                .iter()
                .map(|h| {
                    let v = match h.as_str() {
                        "oom_rate" => (0.3 * load * k).min(1.0),
                        "batch_ceiling" => 64.0 / k,
                        "batch_peak" => (rate * 8.0).min(64.0 / k),
                        "tpot_p50" => 0.01 + 0.02 * load * k,
                        "tpot_p99" => 0.02 + 0.05 * load * k,
                        "ttft_p99" => 0.1 * (1.0 + 20.0 * load * load * k),
                        "waste_used" => 0.5 * load / k,
                        "waste_reserved" => 0.1 * k,
                        "waste_internal" => 0.05 * k,
                        "waste_external" => 0.05 * (k - 1.0),
                        // No request completed: an empty cell.
                        "e2e_p99" if rate == 16.0 => return String::new(),
                        // No KV tiers: their columns are zeros, as a sweep
                        // without tiers writes them.
                        h if ["host_", "ssd_", "remote_"]
                            .iter()
                            .any(|t| h.starts_with(t)) =>
                        {
                            0.0
                        }
                        h if h.ends_with("_ci95") => 0.002,
                        _ => 1.0,
                    };
                    v.to_string()
                })
                .collect();
            out += &format!("{point},{rate},{policy},3,{},2.0,0.05\n", cells.join(","));
            point += 1;
        }
    }
    out
}

/// A timeline.csv of `rows` steps, as kvsim writes it.
fn timeline_csv(rows: usize) -> String {
    let mut out = String::from(
        "time,running,waiting,kv_used_bytes,kv_frac,waste_used,waste_reserved,waste_internal,\
         waste_external,step_s\n",
    );
    for i in 0..rows {
        let running = (i % 40) as f64;
        let frac = running / 41.0;
        out += &format!(
            "{:.9},{},{},{},{frac:.6},{:.6},0.010000,0.005000,0.000000,0.020000000\n",
            i as f64 * 0.02,
            running,
            (i / 7) % 5,
            (frac * 1e9) as u64,
            frac * 0.8,
        );
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opts(format: Format) -> PlotOptions {
    PlotOptions {
        format,
        ..PlotOptions::default()
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    // Decode every pixel, not just the header.
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    (frame.width, frame.height)
}

/// Every text node of an SVG, after checking that it parses as XML with an
/// `<svg>` root of the chart's size (wider for the headline of panels).
fn svg_texts(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("<svg"), "{}", path.display());
    let doc = roxmltree::Document::parse(&text).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let width: u32 = root.attribute("width").unwrap().parse().unwrap();
    if path.file_stem().is_some_and(|s| s == "wall") {
        assert!(width > 3 * kvsim::report::plot::PANEL_WIDTH, "{width}");
    } else {
        assert_eq!(width, WIDTH);
    }
    assert_eq!(root.attribute("height"), Some(HEIGHT.to_string().as_str()));
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

/// The files in `dir`, sorted: checks that no temporary file is left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn expected(names: &[&str], ext: &str, dir: &Path) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| dir.join(format!("{n}.{ext}")))
        .collect()
}

#[test]
fn sweep_defaults_render_as_png_and_svg() {
    for ci in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let input = write(tmp.path(), "sweep.csv", &sweep_csv(ci));
        let out = tmp.path().join("plots");

        let pngs = plot_file(&input, &out, &opts(Format::Png)).unwrap();
        assert_eq!(pngs, expected(&SWEEP_DEFAULTS, "png", &out));
        for p in &pngs {
            let (width, height) = png_size(p);
            assert_eq!(height, HEIGHT, "{}", p.display());
            if p.file_stem().is_some_and(|s| s == "wall") {
                assert!(width > 3 * kvsim::report::plot::PANEL_WIDTH, "{width}");
            } else {
                assert_eq!(width, WIDTH, "{}", p.display());
            }
        }

        let svgs = plot_file(&input, &out, &opts(Format::Svg)).unwrap();
        assert_eq!(svgs, expected(&SWEEP_DEFAULTS, "svg", &out));
        for p in &svgs {
            let texts = svg_texts(p);
            assert!(
                texts.iter().any(|t| t == "paged"),
                "{}: {texts:?}",
                p.display()
            );
            assert!(texts.iter().any(|t| t == "contiguous"), "{}", p.display());
        }
        let tpot = svg_texts(&out.join("tpot.svg"));
        assert!(
            tpot.iter().any(|t| t.starts_with("SLO: TPOT p99 ≤ 50 ms")),
            "{tpot:?}"
        );
        assert!(tpot.iter().any(|t| t == "TPOT (ms)"));
        let ttft = svg_texts(&out.join("ttft_p99.svg"));
        assert!(
            ttft.iter().any(|t| t.starts_with("SLO: TTFT p99 ≤ 2 s")),
            "{ttft:?}"
        );
        let waste = svg_texts(&out.join("waste.svg"));
        assert!(
            waste
                .iter()
                .any(|t| t.contains("highest load") && t.contains("= 16")),
            "{waste:?}"
        );

        let mut names: Vec<String> = SWEEP_DEFAULTS
            .iter()
            .flat_map(|n| [format!("{n}.png"), format!("{n}.svg")])
            .collect();
        names.sort();
        assert_eq!(listing(&out), names, "nothing else, no temporary files");
    }
}

#[test]
fn timeline_defaults_render_as_png_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "timeline.csv", &timeline_csv(500));
    let out = tmp.path().join("plots");
    let pngs = plot_file(&input, &out, &opts(Format::Png)).unwrap();
    assert_eq!(pngs, expected(&TIMELINE_DEFAULTS, "png", &out));
    for p in &pngs {
        assert_eq!(png_size(p), (WIDTH, HEIGHT));
    }
    let svgs = plot_file(&input, &out, &opts(Format::Svg)).unwrap();
    assert_eq!(svgs, expected(&TIMELINE_DEFAULTS, "svg", &out));
    let occ = svg_texts(&svgs[0]);
    assert!(occ.iter().any(|t| t == "90 % warning"), "{occ:?}");
    assert!(occ.iter().any(|t| t == "time (s)"));
    let queue = svg_texts(&svgs[1]);
    assert!(
        queue.iter().any(|t| t == "waiting for admission"),
        "{queue:?}"
    );
}

#[test]
fn a_real_run_timeline_plots() {
    use crate::common::{closed, run, scenario};
    let s = scenario(&closed(4, 40, 100, 50, ""), 2000);
    let out = run(&s);
    let bytes = kvsim::report::timeline_csv(&out.timeline).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("timeline.csv");
    std::fs::write(&input, bytes).unwrap();
    let files = plot_file(&input, tmp.path(), &opts(Format::Png)).unwrap();
    assert_eq!(files.len(), 2);
    for f in &files {
        assert_eq!(png_size(f), (WIDTH, HEIGHT));
    }
}

#[test]
fn long_timelines_are_downsampled() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "timeline.csv", &timeline_csv(100_000));
    let files = plot_file(&input, tmp.path(), &opts(Format::Svg)).unwrap();
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        // 100k points per line would be megabytes; 2 x 2000 buckets are not.
        assert!(size < 400_000, "{}: {size} bytes", f.display());
        svg_texts(f);
    }
}

#[test]
fn custom_chart_is_y_vs_x() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "sweep.csv", &sweep_csv(true));
    for format in [Format::Png, Format::Svg] {
        let o = PlotOptions {
            format,
            x: Some("traffic.arrival.rate".into()),
            y: Some("tpot_p99".into()),
            series: Some("cache.policy".into()),
        };
        let files = plot_file(&input, tmp.path(), &o).unwrap();
        let ext = if format == Format::Png { "png" } else { "svg" };
        assert_eq!(
            files,
            [tmp.path()
                .join(format!("tpot_p99_vs_traffic.arrival.rate.{ext}"))]
        );
    }
    let texts = svg_texts(&tmp.path().join("tpot_p99_vs_traffic.arrival.rate.svg"));
    assert!(
        texts
            .iter()
            .any(|t| t == "tpot_p99 vs traffic.arrival.rate"),
        "{texts:?}"
    );
    assert!(texts.iter().any(|t| t == "tpot_p99 (ms)"));

    // A timeline column against time.
    let input = write(tmp.path(), "timeline.csv", &timeline_csv(50));
    let o = PlotOptions {
        y: Some("step_s".into()),
        ..opts(Format::Png)
    };
    let files = plot_file(&input, tmp.path(), &o).unwrap();
    assert_eq!(files, [tmp.path().join("step_s_vs_time.png")]);
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = write(tmp.path(), "sweep.csv", &sweep_csv(true));
    let timeline = write(tmp.path(), "timeline.csv", &timeline_csv(300));
    for format in [Format::Png, Format::Svg] {
        for input in [&sweep, &timeline] {
            let a = plot_file(input, &tmp.path().join("a"), &opts(format)).unwrap();
            let b = plot_file(input, &tmp.path().join("b"), &opts(format)).unwrap();
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(
                    std::fs::read(a).unwrap(),
                    std::fs::read(b).unwrap(),
                    "{}",
                    a.display()
                );
            }
        }
    }
}

fn data_error(e: Error) -> (PathBuf, Option<u64>, String) {
    match e {
        Error::DataFile { path, line, reason } => (path, line, reason),
        other => panic!("expected a data-file error, got {other:?}"),
    }
}

#[test]
fn malformed_input_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plots");

    // A missing column a default chart needs.
    let csv = sweep_csv(false).replace(",oom_rate,", ",oom_rat,");
    let input = write(tmp.path(), "sweep.csv", &csv);
    let (path, line, reason) = data_error(plot_file(&input, &out, &opts(Format::Png)).unwrap_err());
    assert_eq!((path, line), (input.clone(), Some(1)));
    assert!(reason.contains("`oom_rate`"), "{reason}");

    // A missing timeline column.
    let csv = timeline_csv(5).replace(",waiting,", ",queued,");
    let input = write(tmp.path(), "timeline.csv", &csv);
    let (_, line, reason) = data_error(plot_file(&input, &out, &opts(Format::Png)).unwrap_err());
    assert_eq!(line, Some(1));
    assert!(reason.contains("`waiting`"), "{reason}");

    // A non-numeric number on the fourth line (third data row).
    let mut lines: Vec<String> = sweep_csv(false).lines().map(str::to_string).collect();
    let col = lines[0].split(',').position(|h| h == "tpot_p50").unwrap();
    let mut cells: Vec<&str> = lines[3].split(',').collect();
    cells[col] = "fast";
    lines[3] = cells.join(",");
    let input = write(tmp.path(), "sweep.csv", &(lines.join("\n") + "\n"));
    let err = plot_file(&input, &out, &opts(Format::Png)).unwrap_err();
    let message = err.to_string();
    let (_, line, reason) = data_error(err);
    assert_eq!(line, Some(4));
    assert!(
        reason.contains("`tpot_p50`") && reason.contains("`fast`"),
        "{reason}"
    );
    assert!(
        message.contains("sweep.csv") && message.contains("line 4"),
        "{message}"
    );

    // Timeline numbers too.
    let csv = timeline_csv(5).replacen("\n0.020000000,1,", "\n0.020000000,one,", 1);
    let input = write(tmp.path(), "timeline.csv", &csv);
    let (_, line, reason) = data_error(plot_file(&input, &out, &opts(Format::Png)).unwrap_err());
    assert_eq!(line, Some(3));
    assert!(
        reason.contains("`running`") && reason.contains("`one`"),
        "{reason}"
    );

    // An empty file.
    let input = write(tmp.path(), "empty.csv", "");
    let (path, _, reason) = data_error(plot_file(&input, &out, &opts(Format::Svg)).unwrap_err());
    assert_eq!(path, input);
    assert!(reason.contains("empty"), "{reason}");

    // Neither kind of file.
    let input = write(tmp.path(), "other.csv", "a,b\n1,2\n");
    let (_, line, reason) = data_error(plot_file(&input, &out, &opts(Format::Svg)).unwrap_err());
    assert_eq!(line, Some(1));
    assert!(reason.contains("neither"), "{reason}");

    // Nothing was written by any failed call.
    assert!(!out.exists() || listing(&out).is_empty());
}

#[test]
fn unknown_columns_for_a_custom_chart_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let input = write(tmp.path(), "sweep.csv", &sweep_csv(false));
    for (x, y, series) in [
        (None, "tpot_p999", None),
        (Some("rate"), "tpot_p99", None),
        (None, "tpot_p99", Some("policy")),
    ] {
        let o = PlotOptions {
            format: Format::Png,
            x: x.map(str::to_string),
            y: Some(y.to_string()),
            series: series.map(str::to_string),
        };
        let err = plot_file(&input, tmp.path(), &o).unwrap_err();
        let Error::Usage(m) = &err else {
            panic!("expected a usage error, got {err:?}")
        };
        let bad = [x, Some(y), series]
            .into_iter()
            .flatten()
            .find(|c| {
                !sweep_csv(false)
                    .lines()
                    .next()
                    .unwrap()
                    .split(',')
                    .any(|h| h == *c)
            })
            .unwrap();
        assert!(
            m.contains(&format!("`{bad}`")) && m.contains("sweep.csv"),
            "{m}"
        );
        assert_eq!(err.exit_code(), 2);
    }
}

#[test]
fn missing_input_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = plot_file(&tmp.path().join("nope.csv"), tmp.path(), &opts(Format::Png)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}
