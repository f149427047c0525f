//! Charts of a `sweep.csv` or a `timeline.csv`, as PNG or SVG.
//!
//! Drawn with plotters without system libraries: the bitmap and SVG backends
//! and the `ab_glyph` text renderer, fed DejaVu Sans embedded in the binary
//! (`assets/fonts/`, Bitstream Vera license), so neither fontconfig nor
//! FreeType is needed and every machine draws the same pixels. PNGs are
//! encoded in memory with the `png` crate and every file is written
//! atomically; nothing time- or machine-dependent goes into a file, so the
//! same input gives byte-identical charts.
//!
//! ```no_run
//! use kvsim::report::plot::{plot_file, Format, PlotOptions};
//!
//! let opts = PlotOptions { format: Format::Png, ..PlotOptions::default() };
//! let files = plot_file("output/demo/sweep.csv".as_ref(), "output/demo/plots".as_ref(), &opts)?;
//! # Ok::<(), kvsim::Error>(())
//! ```

mod axis;
mod charts;
mod figure;
mod table;
mod text;

pub use axis::{Axis, use_log};
pub use charts::{
    BUCKETS, DOWNSAMPLE_ABOVE, NamedFigure, TimelineSeries, custom_figure, default_series,
    default_x, downsample, sanitize, sweep_figures, timeline_figures, timeline_series_figures,
};
pub use figure::{
    Body, FONT_FAMILY, Figure, HEIGHT, Layer, LegendEntry, Line, PALETTE, PANEL_WIDTH, Point,
    Reference, Sample, Stroke, WIDTH,
};
pub use table::{Kind, Sweep, Table, Timeline};
pub use text::measure as measure_text;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::error::Error;

/// DejaVu Sans, embedded so text renders without any system font.
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The image format of the charts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// An RGB PNG, 1000x600 (wider for a figure of panels).
    #[default]
    Png,
    /// An SVG of the same layout (text as `<text>`, so it stays searchable).
    Svg,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = Error;

    /// `png` or `svg` (any case), as given to `--format`.
    fn from_str(s: &str) -> Result<Format, Error> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(Format::Png),
            "svg" => Ok(Format::Svg),
            _ => Err(Error::Usage(format!(
                "unknown plot format `{s}`: expected `png` or `svg`"
            ))),
        }
    }
}

/// What to plot; the defaults give the standard charts of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlotOptions {
    /// The image format.
    pub format: Format,
    /// Column for the x axis. With `y`: the custom chart's x (default: the
    /// load axis, or `time` for a timeline). Without `y`, on a sweep: the x
    /// of the default charts.
    pub x: Option<String>,
    /// Column for the y axis: asks for the one chart `<y>_vs_<x>` instead of
    /// the defaults.
    pub y: Option<String>,
    /// Column whose values separate the lines (default for a sweep: the first
    /// non-numeric axis, else the second axis).
    pub series: Option<String>,
}

/// Registers the embedded font with plotters, once per process; `false` if
/// plotters rejected it (which would be a broken build, reported as an error
/// rather than a panic).
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        // The generic name too: any text style plotters builds by default
        // (none of ours should) then still finds a font instead of failing.
        [FONT_FAMILY, "sans-serif"]
            .iter()
            .all(|name| plotters::style::register_font(name, FontStyle::Normal, FONT).is_ok())
    })
}

/// Draws `fig` as an image file's bytes.
pub fn render(fig: &Figure, format: Format) -> std::io::Result<Vec<u8>> {
    if !font_ready() || text::font().is_none() {
        return Err(std::io::Error::other("the embedded font failed to load"));
    }
    let failed = |e: &dyn std::fmt::Display| std::io::Error::other(format!("drawing failed: {e}"));
    let (width, height) = fig.size();
    match format {
        Format::Png => {
            let mut rgb = vec![0u8; (width * height * 3) as usize];
            {
                let backend = BitMapBackend::with_buffer(&mut rgb, (width, height));
                let root = text::Crisp::raster(backend).into_drawing_area();
                figure::draw(&root, fig).map_err(|e| failed(&e))?;
            }
            encode_png(&rgb, width, height)
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let backend = SVGBackend::with_string(&mut svg, (width, height));
                let root = text::Crisp::vector(backend).into_drawing_area();
                figure::draw(&root, fig).map_err(|e| failed(&e))?;
            }
            Ok(svg.into_bytes())
        }
    }
}

/// Encodes an RGB buffer as PNG in memory, so the file can be written atomically.
fn encode_png(rgb: &[u8], width: u32, height: u32) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Charts are mostly flat colour: the balanced setting compresses
        // them as small as the high one (`kvsim sweep
        // scenarios/policies.toml`'s six charts: 380 KB against 383 KB) in
        // well under half the time (the command took 0.24 s, 70 % of it
        // deflating, and takes 0.11 s).
        enc.set_compression(png::Compression::Balanced);
        let mut w = enc.write_header().map_err(std::io::Error::other)?;
        w.write_image_data(rgb).map_err(std::io::Error::other)?;
        w.finish().map_err(std::io::Error::other)?;
    }
    Ok(out)
}

/// The charts `opts` asks for from `table`: the defaults of its kind, or the
/// one custom chart when `opts.y` is set.
pub fn figures(table: Table, opts: &PlotOptions) -> Result<Vec<NamedFigure>, Error> {
    match table.kind()? {
        Kind::Sweep => {
            let sweep = Sweep::new(table)?;
            match &opts.y {
                Some(y) => Ok(vec![custom_figure(
                    &sweep.table,
                    Some(&sweep),
                    opts.x.as_deref(),
                    y,
                    opts.series.as_deref(),
                )?]),
                None => sweep_figures(&sweep, opts.x.as_deref(), opts.series.as_deref()),
            }
        }
        Kind::Timeline => {
            let tl = Timeline::new(table)?;
            match &opts.y {
                Some(y) => Ok(vec![custom_figure(
                    &tl.table,
                    None,
                    opts.x.as_deref(),
                    y,
                    opts.series.as_deref(),
                )?]),
                None if opts.x.is_some() || opts.series.is_some() => Err(Error::Usage(format!(
                    "{}: --x and --series choose the axes of a custom chart of a timeline; \
                     give --y too",
                    tl.table.path().display()
                ))),
                None => timeline_figures(&tl),
            }
        }
    }
}

/// The default charts of `table` (or the one chart `opts.x`/`opts.y`/
/// `opts.series` ask for), rendered: `(file name, bytes)` in chart order.
///
/// Sweep defaults: `wall`, `oom_rate`, `batch`, `tpot`, `ttft_p99`, `waste`,
/// and `hit_rate_tiers` when the sweep's KV tiers stored anything; timeline
/// defaults: `occupancy`, `queue`; custom: `<y>_vs_<x>`; each with the
/// extension of `opts.format`.
pub fn render_charts(table: Table, opts: &PlotOptions) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let input = table.path().to_path_buf();
    render_figures(&figures(table, opts)?, opts, &input)
}

/// The default charts of a timeline's columns (as [`render_charts`] of its
/// `timeline.csv`, without reading the file): `occupancy` and `queue`.
/// `input` names the timeline in errors.
pub fn render_timeline_charts(
    series: &TimelineSeries,
    opts: &PlotOptions,
    input: &Path,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    render_figures(&timeline_series_figures(series), opts, input)
}

/// `figs` rendered in `opts.format`: `(file name, bytes)` in order.
fn render_figures(
    figs: &[NamedFigure],
    opts: &PlotOptions,
    input: &Path,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    figs.iter()
        .map(|f| {
            let name = format!("{}.{}", f.name, opts.format.extension());
            let bytes = render(&f.figure, opts.format).map_err(|e| {
                Error::io(
                    input,
                    std::io::Error::new(e.kind(), format!("cannot draw {name}: {e}")),
                )
            })?;
            Ok((name, bytes))
        })
        .collect()
}

/// Renders the charts of [`render_charts`] from the `sweep.csv` or
/// `timeline.csv` at `input` into `out_dir`, creating it, each file
/// atomically; returns the files written, in chart order. (`kvsim plot`
/// instead replaces its whole output directory; see [`crate::output`].)
pub fn plot_file(input: &Path, out_dir: &Path, opts: &PlotOptions) -> Result<Vec<PathBuf>, Error> {
    let charts = render_charts(Table::read(input)?, opts)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut written = Vec::with_capacity(charts.len());
    for (name, bytes) in charts {
        let path = out_dir.join(name);
        super::write_atomic(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
