//! `report.html`: what `kvsim run`, `sweep` and `plan` write beside their
//! results and `kvsim report` rebuilds, checked as text (sections, tables,
//! one inline SVG per chart, no script, no external resource, escaping) and,
//! where a Chromium is installed, as a rendered page.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn kvsim() -> Command {
    Command::cargo_bin("kvsim").unwrap()
}

/// A run scenario whose name needs escaping; `gpu` and the sweep table vary.
fn scenario(name: &str, gpu: &str, extra: &str) -> String {
    format!(
        r#"name = "{name}"
seed = 3
requests = 300
[model]
preset = "llama-3.1-8b"
[hardware]
gpu = "{gpu}"
[traffic]
arrival = {{ kind = "poisson", rate = 10.0 }}
prompt = {{ kind = "lognormal", mean = 500, sigma = 0.8, min = 4, max = 4096 }}
output = {{ kind = "lognormal", mean = 150, sigma = 0.8, min = 1, max = 1024 }}
[slo]
ttft_p99 = 2.0
tpot_p99 = 0.05
{extra}"#
    )
}

const NASTY: &str = "q<&>\\\"x";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run_cmd(args: &[&str]) {
    let out = kvsim().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kvsim {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The checks every report passes: sections, no script, no external
/// resource, the scenario name escaped, one inline SVG per chart.
fn check_page(html: &str, charts: usize, sections: &[&str]) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for s in sections {
        assert!(html.contains(&format!("id=\"{s}\"")), "section {s} missing");
    }
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "a script");
    assert!(!lower.contains("javascript:"));
    for attr in ["src=", "href=", "url(", "@import"] {
        for scheme in [
            "\"http://",
            "\"https://",
            "http://",
            "https://",
            "'http",
            "//",
        ] {
            let bad = format!("{attr}{scheme}");
            assert!(!lower.contains(&bad), "external reference {bad}");
        }
    }
    assert!(!lower.contains("<link"), "a linked file");
    assert!(!lower.contains("<img"), "an image file");
    assert_eq!(
        html.matches("<svg").count(),
        charts,
        "one inline SVG per chart"
    );
    assert_eq!(html.matches("</svg>").count(), charts);
    // The scenario name, escaped wherever it shows, never raw.
    assert!(
        html.contains("q&lt;&amp;&gt;&quot;x"),
        "escaped name missing"
    );
    assert!(!html.contains("q<&>"), "raw name in the page");
}

#[test]
fn run_report_has_its_sections_charts_and_rebuilds_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "s.toml", &scenario(NASTY, "h100-sxm", ""));
    let out = dir.path().join("out");
    run_cmd(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    // The charts `kvsim plot` draws of the run's timeline.
    let plots = dir.path().join("plots");
    run_cmd(&[
        "plot",
        out.join("timeline.csv").to_str().unwrap(),
        "--format",
        "svg",
        "--out",
        plots.to_str().unwrap(),
    ]);
    let charts = std::fs::read_dir(&plots)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert_eq!(charts, 2);
    check_page(
        &html,
        charts,
        &[
            "summary",
            "batch-limit",
            "charts",
            "configuration",
            "validation",
            "warnings",
            "metrics",
        ],
    );
    for text in [
        "TPOT",
        "offered load",
        "batch_bound_kv",
        "catalog GPU h100-sxm",
        "catalog model llama-3.1-8b",
        "kvsim default",
        "held-out rows on this GPU",
        "no load-time warnings",
        "s.toml",
    ] {
        assert!(html.contains(text), "{text} missing");
    }
    // `kvsim report` rebuilds the same page from the directory, keeping
    // every other file as it was.
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    run_cmd(&["report", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary);
    let marker = std::fs::read_to_string(out.join(".kvsim-output")).unwrap();
    assert!(marker.contains("report.html") && marker.contains("timeline.csv"));
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        html
    );
    // Without its report the run still has one: what summary.json holds.
    std::fs::remove_file(out.join("report.html")).unwrap();
    run_cmd(&["report", out.to_str().unwrap()]);
    let rebuilt = std::fs::read_to_string(out.join("report.html")).unwrap();
    check_page(
        &rebuilt,
        charts,
        &["summary", "configuration", "validation"],
    );
    assert!(rebuilt.contains("catalog GPU h100-sxm"));
}

#[test]
fn report_refuses_a_directory_without_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = kvsim()
        .args(["report", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no summary.json, sweep.csv or plan.csv")
    );
}

#[test]
fn sweep_report_has_the_points_every_chart_and_each_gpus_validation() {
    let dir = tempfile::tempdir().unwrap();
    let body = scenario(
        NASTY,
        "h100-sxm",
        "[sweep]\n\"hardware.gpu\" = [\"h100-sxm\", \"l4\"]\n\"traffic.arrival.rate\" = [5.0, 10.0]\n",
    );
    let sc = write(dir.path(), "s.toml", &body);
    let out = dir.path().join("out");
    run_cmd(&[
        "sweep",
        sc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let charts = std::fs::read_dir(out.join("plots"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(charts >= 5, "{charts}");
    check_page(
        &html,
        charts,
        &[
            "points",
            "charts",
            "configuration",
            "validation",
            "warnings",
        ],
    );
    // One table row per point (plus the header), and the bound column.
    let points = html.split("<h2 id=\"charts\"").next().unwrap();
    assert_eq!(points.matches("<tr>").count(), 1 + 4);
    assert!(points.contains("batch bound by"));
    assert!(html.contains("varied over the grid: hardware.gpu, traffic.arrival.rate"));
    // h100-sxm has held-out rows; the L4 none.
    assert!(html.contains("held-out rows on this GPU"));
    assert!(html.contains("no held-out rows for this GPU"));
    run_cmd(&["report", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        html
    );
    assert!(out.join("plots/.kvsim-output").is_file());
}

#[test]
fn plan_report_has_the_ranking_and_the_cost_chart() {
    let dir = tempfile::tempdir().unwrap();
    let body = scenario(
        NASTY,
        "h100-sxm",
        "[plan]\ntarget_rate = 20.0\nreplicates = 1\nprecision = 0.2\nstart_rate = 4.0\n\
         [plan.candidates]\n\"hardware.gpu\" = [\"h100-sxm\", \"a100-80gb\"]\n",
    );
    let sc = write(dir.path(), "s.toml", &body);
    let out = dir.path().join("out");
    run_cmd(&["plan", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    check_page(
        &html,
        1,
        &[
            "ranking",
            "charts",
            "configuration",
            "validation",
            "warnings",
        ],
    );
    assert!(html.contains("Target: 20 req/s"));
    assert!(html.contains("Cost against capacity"));
    let ranking = html.split("<h2 id=\"charts\"").next().unwrap();
    assert_eq!(ranking.matches("<tr>").count(), 1 + 2);
    run_cmd(&["report", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        html
    );
}

/// A Chromium binary, if one is installed.
fn chromium() -> Option<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome", "chrome"];
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

/// Renders `html` headless; returns the screenshot's width, height and RGB
/// rows, or `None` (with a message) when no Chromium is installed.
fn screenshot(html: &Path, png: &Path) -> Option<(usize, usize, Vec<u8>)> {
    let Some(chrome) = chromium() else {
        println!("SKIPPED: no chromium binary on PATH; the report screenshot test did not run");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chrome)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--disable-extensions",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--screenshot={}", png.display()),
            "--window-size=1400,3000",
            &format!("file://{}", html.display()),
        ])
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::File::open(png).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    let channels = frame.color_type.samples();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for px in buf[..w * h * channels].chunks(channels) {
        rgb.extend_from_slice(&px[..3]);
    }
    Some((w, h, rgb))
}

#[test]
fn report_renders_offline_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let sc = write(dir.path(), "s.toml", &scenario(NASTY, "h100-sxm", ""));
    let out = dir.path().join("out");
    run_cmd(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let png = dir.path().join("shot.png");
    let Some((w, h, rgb)) = screenshot(&out.join("report.html"), &png) else {
        return;
    };
    assert_eq!((w, h), (1400, 3000));
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    };
    // Most rows of the page hold something: text, table rules, charts.
    let inked = (0..h)
        .filter(|&y| (0..w).any(|x| px(x, y) != (255, 255, 255)))
        .count();
    assert!(inked * 2 > h, "only {inked} of {h} rows are not blank");
    // The charts drew: their palette's blue (the occupancy line) is on screen.
    let palette = kvsim::report::plot::PALETTE;
    let blue = (palette[0].0, palette[0].1, palette[0].2);
    let near = |a: (u8, u8, u8), b: (u8, u8, u8)| {
        a.0.abs_diff(b.0) <= 12 && a.1.abs_diff(b.1) <= 12 && a.2.abs_diff(b.2) <= 12
    };
    let coloured = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| near(px(x, y), blue))
        .count();
    assert!(coloured > 200, "only {coloured} pixels of the charts' blue");
    // The table header's shade (#eef2f6) shows where the tables are.
    let header = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y) == (0xee, 0xf2, 0xf6))
        .count();
    assert!(header > 1000, "{header} pixels of table headers");
}

#[test]
fn a_run_with_nothing_to_draw_still_has_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let body = scenario(NASTY, "h100-sxm", "")
        .replace("requests = 300", "requests = 2")
        .replace("min = 4, max = 4096", "min = 200000, max = 400000");
    let sc = write(dir.path(), "s.toml", &body);
    let out = dir.path().join("out");
    run_cmd(&["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    check_page(&html, 0, &["summary", "charts", "warnings"]);
    assert!(html.contains("No charts: timeline.csv"));
    assert!(html.contains("max_model_len"), "the warning is on the page");
}

// ---------------------------------------------------------------------------
// KV tiers in every output: requests.csv, the terminal summary, report.html
// and a sweep's charts.

/// `scenarios/multi-turn-creep.toml` cut to 120 s of arrivals with prefix
/// caching on, and with a 64 GB host tier when `tiers`; `extra` goes at the
/// end (a `[sweep]` table).
fn creep(tiers: bool, extra: &str) -> String {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/multi-turn-creep.toml"),
    )
    .unwrap();
    let mut body = base
        .replace("duration_s = 900", "duration_s = 120")
        .replace("prefix_caching = false", "prefix_caching = true");
    assert_ne!(
        body, base,
        "multi-turn-creep.toml changed: fix the test's edits"
    );
    if tiers {
        body += "\n[[cache.tiers]]\nkind = \"host\"\ncapacity_gb = 64\n";
    }
    body + "\n" + extra
}

/// Runs `body` with `sets`; the output directory and what it printed.
fn run_creep(dir: &Path, name: &str, body: &str, sets: &[&str]) -> (PathBuf, String) {
    let sc = write(dir, &format!("{name}.toml"), body);
    let out = dir.join(name);
    let mut args = vec!["run", sc.to_str().unwrap(), "--out", out.to_str().unwrap()];
    for s in sets {
        args.extend(["--set", s]);
    }
    let result = kvsim().args(&args).output().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    (out, String::from_utf8(result.stdout).unwrap())
}

/// `requests.csv` as a header and rows of cells.
fn requests(out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn requests_csv_splits_each_ttft_into_queue_load_and_prefill() {
    let dir = tempfile::tempdir().unwrap();
    // With prefix caching off the host tier serves what HBM would have: the
    // loads are not all zero.
    for (name, sets) in [
        ("hbm", &[][..]),
        ("host", &["cache.prefix_caching=false"][..]),
    ] {
        let (out, _) = run_creep(dir.path(), name, &creep(true, ""), sets);
        let (header, rows) = requests(&out);
        assert!(
            header.ends_with(
                &[
                    "outcome",
                    "hbm_hit_tokens",
                    "tier_hit_tokens",
                    "queue_s",
                    "load_s",
                    "prefill_s"
                ]
                .map(String::from)
            ),
            "{header:?}"
        );
        let col = |c: &str| header.iter().position(|h| h == c).unwrap();
        let num = |row: &[String], c: &str| -> f64 { row[col(c)].parse().unwrap() };
        let ok: Vec<&Vec<String>> = rows.iter().filter(|r| r[col("outcome")] == "ok").collect();
        assert!(ok.len() > 50, "{} ok rows", ok.len());
        for r in &ok {
            let ttft = num(r, "first_token") - num(r, "arrival");
            let parts = num(r, "queue_s") + num(r, "load_s") + num(r, "prefill_s");
            assert!((parts - ttft).abs() < 3e-9, "{r:?}: {parts} vs {ttft}");
            let queue = num(r, "admitted") - num(r, "arrival");
            assert!((num(r, "queue_s") - queue).abs() < 2e-9, "{r:?}");
            assert!(
                num(r, "prompt_tokens") >= num(r, "hbm_hit_tokens") + num(r, "tier_hit_tokens")
            );
        }
        let total = |c: &str| ok.iter().map(|r| num(r, c)).sum::<f64>();
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        let m = &summary["metrics"];
        // Every request here completes, so the rows add up to the summary's
        // counts.
        assert_eq!(ok.len() as u64, m["requests"].as_u64().unwrap());
        assert_eq!(
            total("tier_hit_tokens"),
            m["host_hit_tokens"].as_f64().unwrap()
        );
        assert_eq!(
            total("hbm_hit_tokens"),
            m["prefix_hit_tokens"].as_f64().unwrap()
        );
        let largest_load = ok.iter().map(|r| num(r, "load_s")).fold(0.0, f64::max);
        if name == "host" {
            assert!(total("tier_hit_tokens") > 0.0 && largest_load > 0.0);
            assert_eq!(total("hbm_hit_tokens"), 0.0);
        } else {
            assert!(total("hbm_hit_tokens") > 0.0);
        }
        assert!(largest_load >= m["ttft_load_p99"].as_f64().unwrap() - 1e-9);
    }
}

#[test]
fn the_tier_section_shows_only_with_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let (tiered, printed) = run_creep(dir.path(), "tiered", &creep(true, ""), &[]);
    for row in [
        "KV tiers",
        "host: hit rate",
        "tier links busy",
        "TTFT parts",
    ] {
        assert!(printed.contains(row), "{row} missing:\n{printed}");
    }
    let html = std::fs::read_to_string(tiered.join("report.html")).unwrap();
    let section = html
        .split("<h2 id=\"kv-tiers\">KV tiers</h2>")
        .nth(1)
        .expect("the KV tiers section")
        .split("<h2")
        .next()
        .unwrap();
    assert!(section.contains("<td>host</td>") && section.contains("pcie_h2d_util"));
    assert!(!section.contains("ssd_util"), "no SSD tier, no SSD link");
    let (plain, printed) = run_creep(dir.path(), "plain", &creep(false, ""), &[]);
    for row in ["KV tiers", "tier links", "TTFT parts"] {
        assert!(!printed.contains(row), "{row} without tiers:\n{printed}");
    }
    let html = std::fs::read_to_string(plain.join("report.html")).unwrap();
    assert!(!html.contains("kv-tiers"));
    // The metrics are in summary.json either way.
    let summary = std::fs::read_to_string(plain.join("summary.json")).unwrap();
    assert!(summary.contains("\"host_hit_rate\": 0.0"), "{summary}");
}

#[test]
fn a_tiered_sweep_charts_its_hit_rate_per_tier() {
    let dir = tempfile::tempdir().unwrap();
    let axis = "[sweep]\n\"cache.prefix_caching\" = [true, false]\n";
    for (name, tiers) in [("tiered", true), ("plain", false)] {
        let sc = write(dir.path(), &format!("{name}.toml"), &creep(tiers, axis));
        let out = dir.path().join(name);
        run_cmd(&[
            "sweep",
            sc.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let chart = out.join("plots/hit_rate_tiers.png");
        assert_eq!(chart.is_file(), tiers, "{name}");
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert_eq!(
            html.contains("id=\"chart-hit_rate_tiers\""),
            tiers,
            "{name}"
        );
    }
}
