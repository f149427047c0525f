//! What a chart shows ([`Figure`]), separate from how it is drawn.
//!
//! The chart builders (`charts.rs`) decide data, scales, labels and colours;
//! this module draws any figure the same way on any plotters backend, so the
//! PNG and the SVG of a chart cannot drift apart and the layout rules (title,
//! legend panel beside the plot, grid, error bars) live in one place.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::Axis;

/// Width of every chart in pixels.
pub const WIDTH: u32 = 1000;
/// Height of every chart in pixels.
pub const HEIGHT: u32 = 600;
/// Width of one panel of a [`Body::Panels`] figure in pixels (its legend
/// panel comes on top).
pub const PANEL_WIDTH: u32 = 620;

impl Figure {
    /// The canvas in pixels: [`WIDTH`] x [`HEIGHT`], wider for panels.
    pub fn size(&self) -> (u32, u32) {
        match &self.body {
            Body::Panels(panels) => (
                PANEL_WIDTH * panels.len().max(1) as u32 + legend_width(self, WIDTH),
                HEIGHT,
            ),
            _ => (WIDTH, HEIGHT),
        }
    }
}

/// The font family every text style uses: the embedded DejaVu Sans is
/// registered under this name. It doubles as the SVG `font-family` list, so a
/// viewer without DejaVu Sans falls back to any sans-serif font.
pub const FONT_FAMILY: &str = "DejaVu Sans, sans-serif";

/// Series colours, in order: the Okabe-Ito palette (distinct for the common
/// forms of colour blindness), reordered so the first few contrast most on
/// white, without its yellow (which vanishes on white), then three darker
/// hues so ten series stay apart; beyond ten the colours repeat.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 0, 0),       // black
    RGBColor(140, 86, 75),   // brown
    RGBColor(140, 140, 0),   // olive
    RGBColor(60, 50, 150),   // indigo
];

/// Colour of reference lines (objectives, warning levels): a dark red none of
/// the series use.
pub const REFERENCE: RGBColor = RGBColor(180, 20, 40);
/// Colour of legend samples that explain a line style rather than a series.
pub const NEUTRAL: RGBColor = RGBColor(90, 90, 90);

const TEXT: RGBColor = RGBColor(20, 20, 20);
const SUBTLE: RGBColor = RGBColor(90, 90, 90);
const GRID: RGBColor = RGBColor(222, 222, 222);
const GRID_MINOR: RGBColor = RGBColor(240, 240, 240);

// Font sizes in plotters units (the SVG backend writes size / 1.24 as px).
const TITLE_SIZE: f64 = 30.0;
const SUBTITLE_SIZE: f64 = 20.0;
const AXIS_TITLE_SIZE: f64 = 21.0;
const TICK_SIZE: f64 = 18.0;
const LEGEND_SIZE: f64 = 19.0;

/// A chart ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The headline: what is plotted against what.
    pub title: String,
    /// A second line under the title (what the line styles mean, which load
    /// point is shown), if any.
    pub subtitle: Option<String>,
    /// Title of the x axis, with its unit.
    pub x_title: String,
    /// Title of the y axis, with its unit.
    pub y_title: String,
    /// The x axis.
    pub x: Axis,
    /// The y axis.
    pub y: Axis,
    /// Lines or bars.
    pub body: Body,
    /// Horizontal reference lines (objectives, warning levels).
    pub references: Vec<Reference>,
    /// A heading over the legend (the series column), if any.
    pub legend_title: Option<String>,
    /// Legend entries, top to bottom.
    pub legend: Vec<LegendEntry>,
}

/// The marks of a figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Lines through points.
    Lines(Vec<Line>),
    /// Stacked bars, one per x category, each topped by its total.
    StackedBars {
        /// The layers, bottom first.
        layers: Vec<Layer>,
        /// Written after each bar's total (e.g. ` %`).
        total_unit: String,
    },
    /// Charts side by side under one title, sharing this figure's legend
    /// (theirs are not drawn); this figure's axes are unused.
    Panels(Vec<Figure>),
}

/// One line of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Stroke colour.
    pub color: RGBColor,
    /// Solid, dashed or dotted.
    pub stroke: Stroke,
    /// Stroke width in pixels.
    pub width: u32,
    /// Draw a marker at each point (sweep points are discrete measurements).
    pub markers: bool,
    /// The points, in x order; a missing y breaks the line.
    pub points: Vec<Point>,
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// Unbroken, with filled markers.
    Solid,
    /// Long dashes, with hollow markers.
    Dashed,
    /// Short dots, with hollow markers.
    Dotted,
}

/// One point of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Position on the x axis.
    pub x: f64,
    /// Value, if there is one.
    pub y: Option<f64>,
    /// 95 % confidence half-width, drawn as an error bar.
    pub err: Option<f64>,
}

/// One layer of stacked bars: a category of the stack, one value per bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Fill colour.
    pub color: RGBColor,
    /// The value of each bar (x category 0, 1, ...); `None` leaves a gap.
    pub values: Vec<Option<f64>>,
}

/// A labelled horizontal line across the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Where, in y units.
    pub y: f64,
    /// Text written at the line's right end.
    pub label: String,
}

/// One legend row.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    /// The text.
    pub label: String,
    /// Sample colour.
    pub color: RGBColor,
    /// What the sample looks like.
    pub sample: Sample,
}

/// The mark drawn beside a legend label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// A solid line.
    Solid,
    /// A dashed line.
    Dashed,
    /// A dotted line.
    Dotted,
    /// A filled square (bar layers).
    Block,
}

fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FONT_FAMILY), size, FontStyle::Normal)
}

fn text_style(size: f64, color: &RGBColor) -> TextStyle<'static> {
    font(size).color(color)
}

/// Width in pixels of `text` at `size`, measured with the embedded font.
fn text_width(text: &str, size: f64) -> u32 {
    super::text::measure(text, size).0
}

/// `text` shortened with an ellipsis to fit `max` pixels at `size`.
fn fit(text: &str, size: f64, max: u32) -> String {
    if text_width(text, size) <= max {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>() + "…";
        if text_width(&s, size) <= max {
            return s;
        }
    }
    String::new()
}

/// `text` as lines of at most `max` pixels: whole if it fits, else split
/// after its commas (each part shortened if it still does not fit).
fn wrap(text: &str, size: f64, max: u32) -> Vec<String> {
    if text_width(text, size) <= max || !text.contains(", ") {
        return vec![fit(text, size, max)];
    }
    let parts: Vec<&str> = text.split(", ").collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = if i < last {
                format!("{p},")
            } else {
                p.to_string()
            };
            fit(&p, size, max)
        })
        .collect()
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws `fig` on `root` (the whole canvas) and finishes the image.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<DB> {
    draw_into(root, fig)?;
    // Once per image: the SVG backend closes its document here.
    root.present()
}

/// Draws `fig` on `root`, the canvas or a panel of it.
fn draw_into<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();

    // Title block.
    let mut top = 14;
    let title = fit(&fig.title, TITLE_SIZE, width - 40);
    root.draw_text(
        &title,
        &text_style(TITLE_SIZE, &TEXT).pos(Pos::new(HPos::Center, VPos::Top)),
        (width as i32 / 2, top),
    )?;
    top += 34;
    if let Some(sub) = &fig.subtitle {
        let sub = fit(sub, SUBTITLE_SIZE, width - 40);
        root.draw_text(
            &sub,
            &text_style(SUBTITLE_SIZE, &SUBTLE).pos(Pos::new(HPos::Center, VPos::Top)),
            (width as i32 / 2, top),
        )?;
        top += 26;
    }
    let (_, body) = root.split_vertically(top + 6);

    // The legend sits in its own panel at the right so it never hides data.
    let legend_w = legend_width(fig, width.min(WIDTH));
    let (plot_area, legend_area) = body.split_horizontally(width - legend_w);

    if let Body::Panels(panels) = &fig.body {
        let columns = plot_area.split_evenly((1, panels.len().max(1)));
        for (area, panel) in columns.iter().zip(panels) {
            let bare = Figure {
                legend: Vec::new(),
                legend_title: None,
                ..panel.clone()
            };
            draw_into(area, &bare)?;
        }
        return draw_legend(&legend_area, fig, legend_w);
    }

    let y_tick_w = fig
        .y
        .ticks()
        .iter()
        .map(|&t| text_width(&fig.y.label(t), TICK_SIZE))
        .max()
        .unwrap_or(0);
    let y_area = y_tick_w + 44;
    // Category names are laid out here rather than by plotters, so that a
    // long one ("contiguous, H100-80GB") wraps instead of running into its
    // neighbours; the label area grows with the lines needed.
    let categories = fig.x.category_names().map(|names| {
        let plot_w = (width - legend_w).saturating_sub(14 + 24 + y_area);
        let slot = plot_w / names.len().max(1) as u32;
        names
            .iter()
            .map(|n| wrap(n, TICK_SIZE, slot.saturating_sub(10)))
            .collect::<Vec<_>>()
    });
    let extra_lines = categories
        .iter()
        .flatten()
        .map(|lines| lines.len().saturating_sub(1))
        .max()
        .unwrap_or(0) as u32;
    let mut chart = ChartBuilder::on(&plot_area)
        .margin_top(8)
        .margin_bottom(12)
        .margin_left(14)
        .margin_right(24)
        .x_label_area_size(58 + 22 * extra_lines)
        .y_label_area_size(y_area)
        .build_cartesian_2d(fig.x.clone(), fig.y.clone())?;

    let bars = matches!(fig.body, Body::StackedBars { .. });
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(fig.x_title.as_str())
        .y_desc(fig.y_title.as_str())
        .axis_desc_style(text_style(AXIS_TITLE_SIZE, &TEXT))
        .label_style(text_style(TICK_SIZE, &TEXT))
        .axis_style(SUBTLE)
        .bold_line_style(GRID)
        .light_line_style(GRID_MINOR)
        .x_labels(32)
        .y_labels(32)
        .max_light_lines(10);
    if bars {
        // Vertical grid lines would cut through the bars.
        mesh.disable_x_mesh();
    }
    let no_label = |_: &f64| String::new();
    if categories.is_some() {
        mesh.x_label_formatter(&no_label);
    }
    mesh.draw()?;
    if let Some(categories) = &categories {
        let y_lo = fig.y.bounds().0;
        for (i, lines) in categories.iter().enumerate() {
            let (px, py) = in_area(root, chart.backend_coord(&(i as f64, y_lo)));
            for (k, line) in lines.iter().enumerate() {
                root.draw_text(
                    line,
                    &text_style(TICK_SIZE, &TEXT).pos(Pos::new(HPos::Center, VPos::Top)),
                    (px, py + 10 + 22 * k as i32),
                )?;
            }
        }
    }

    match &fig.body {
        Body::Lines(lines) => {
            for line in lines {
                draw_line(&mut chart, root, fig, line)?;
            }
        }
        Body::StackedBars { layers, total_unit } => {
            draw_bars(&mut chart, root, fig, layers, total_unit)?
        }
        // Drawn above, before any axis.
        Body::Panels(_) => {}
    }

    let (x_lo, x_hi) = fig.x.bounds();
    for r in &fig.references {
        if !fig.y.can_show(r.y) || r.y < fig.y.bounds().0 || r.y > fig.y.bounds().1 {
            continue;
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x_lo, r.y), (x_hi, r.y)],
            REFERENCE.stroke_width(2),
        )))?;
        // The label sits above the line's left end, where load is low and
        // the data usually lie well below an objective, on a white backing
        // so a line passing under it cannot garble it.
        let (px, py) = in_area(root, chart.backend_coord(&(x_lo, r.y)));
        let (w, h) = super::text::measure(&r.label, LEGEND_SIZE);
        let (tx, ty) = (px + 8, py - 5);
        root.draw(&Rectangle::new(
            [(tx - 3, ty - h as i32 - 1), (tx + w as i32 + 3, ty + 1)],
            WHITE.filled(),
        ))?;
        root.draw_text(
            &r.label,
            &text_style(LEGEND_SIZE, &REFERENCE).pos(Pos::new(HPos::Left, VPos::Bottom)),
            (tx, ty),
        )?;
    }

    draw_legend(&legend_area, fig, legend_w)
}

/// A point of the canvas (what `backend_coord` gives) in `area`'s own
/// coordinates, which its drawing calls take: they differ for a panel.
fn in_area<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, (x, y): (i32, i32)) -> (i32, i32) {
    let (ox, oy) = area.get_base_pixel();
    (x - ox, y - oy)
}

fn draw_line<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Axis, Axis>>,
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    line: &Line,
) -> DrawResult<DB> {
    let style = line.color.stroke_width(line.width);
    // Consecutive drawable points form one segment; a gap (no value, or a
    // value the log axis cannot show) breaks the line instead of bridging it.
    let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in &line.points {
        match p.y {
            Some(y) if fig.y.can_show(y) && fig.x.can_show(p.x) => {
                segments.last_mut().expect("never empty").push((p.x, y));
            }
            _ => segments.push(Vec::new()),
        }
    }
    for seg in segments.iter().filter(|s| !s.is_empty()) {
        match line.stroke {
            Stroke::Solid => {
                chart.draw_series(LineSeries::new(seg.iter().copied(), style))?;
            }
            Stroke::Dashed => {
                chart.draw_series(DashedLineSeries::new(seg.iter().copied(), 10, 6, style))?;
            }
            Stroke::Dotted => {
                chart.draw_series(DashedLineSeries::new(seg.iter().copied(), 3, 5, style))?;
            }
        }
        if line.markers {
            let marker = if line.stroke == Stroke::Solid {
                line.color.filled()
            } else {
                // Hollow markers tell a broken line's points apart where
                // two lines of one colour meet.
                line.color.stroke_width(2)
            };
            chart.draw_series(seg.iter().map(|&p| Circle::new(p, 4, marker)))?;
        }
    }
    for p in &line.points {
        let (Some(y), Some(err)) = (p.y, p.err) else {
            continue;
        };
        if err <= 0.0 || !fig.y.can_show(y) || !fig.x.can_show(p.x) {
            continue;
        }
        let lo = fig.y.clamp(if fig.y.is_log() && y - err <= 0.0 {
            f64::MIN_POSITIVE
        } else {
            y - err
        });
        let hi = fig.y.clamp(y + err);
        let (x, y0) = in_area(root, chart.backend_coord(&(p.x, lo)));
        let (_, y1) = in_area(root, chart.backend_coord(&(p.x, hi)));
        let s = line.color.stroke_width(2);
        for path in [
            vec![(x, y0), (x, y1)],
            vec![(x - 5, y0), (x + 5, y0)],
            vec![(x - 5, y1), (x + 5, y1)],
        ] {
            root.draw(&PathElement::new(path, s))?;
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Axis, Axis>>,
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    layers: &[Layer],
    total_unit: &str,
) -> DrawResult<DB> {
    let n = layers.iter().map(|l| l.values.len()).max().unwrap_or(0);
    for i in 0..n {
        let x = i as f64;
        let mut base = 0.0;
        let mut any = false;
        for layer in layers {
            let Some(v) = layer.values.get(i).copied().flatten() else {
                continue;
            };
            any = true;
            if v > 0.0 {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.32, base), (x + 0.32, base + v)],
                    layer.color.filled(),
                )))?;
                base += v;
            }
        }
        // The stack's total on top: the share of the budget accounted for.
        let label = if any {
            format!("{base:.1}{total_unit}")
        } else {
            "no data".to_string()
        };
        let (px, py) = in_area(root, chart.backend_coord(&(x, fig.y.clamp(base))));
        root.draw_text(
            &label,
            &text_style(LEGEND_SIZE, &TEXT).pos(Pos::new(HPos::Center, VPos::Bottom)),
            (px, py - 6),
        )?;
    }
    Ok(())
}

/// The legend panel's width: enough for the longest label, within bounds
/// that leave the plot most of the canvas.
fn legend_width(fig: &Figure, width: u32) -> u32 {
    let longest = fig
        .legend
        .iter()
        .map(|e| text_width(&e.label, LEGEND_SIZE) + 58)
        .chain(
            fig.legend_title
                .iter()
                .map(|t| text_width(t, LEGEND_SIZE) + 20),
        )
        .max()
        .unwrap_or(0);
    if longest == 0 {
        return 16;
    }
    (longest + 16).clamp(150, width * 2 / 5)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    legend_w: u32,
) -> DrawResult<DB> {
    if fig.legend.is_empty() {
        return Ok(());
    }
    let text_max = legend_w.saturating_sub(62);
    let mut y = 18;
    if let Some(t) = &fig.legend_title {
        let t = fit(t, LEGEND_SIZE, legend_w.saturating_sub(20));
        area.draw_text(
            &t,
            &text_style(LEGEND_SIZE, &SUBTLE).pos(Pos::new(HPos::Left, VPos::Center)),
            (4, y),
        )?;
        y += 30;
    }
    let mut prev: Option<RGBColor> = None;
    for e in &fig.legend {
        // A little air where series entries give way to the style key.
        if e.color == NEUTRAL && prev.is_some_and(|c| c != NEUTRAL) {
            y += 12;
        }
        prev = Some(e.color);
        let (x0, x1) = (6, 42);
        match e.sample {
            Sample::Solid => area.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                e.color.stroke_width(3),
            ))?,
            Sample::Dashed => area.draw(&DashedPathElement::new(
                vec![(x0, y), (x1, y)],
                8,
                5,
                e.color.stroke_width(3),
            ))?,
            Sample::Dotted => area.draw(&DashedPathElement::new(
                vec![(x0, y), (x1, y)],
                3,
                5,
                e.color.stroke_width(3),
            ))?,
            Sample::Block => area.draw(&Rectangle::new(
                [(x0 + 8, y - 9), (x1 - 8, y + 9)],
                e.color.filled(),
            ))?,
        }
        area.draw_text(
            &fit(&e.label, LEGEND_SIZE, text_max),
            &text_style(LEGEND_SIZE, &TEXT).pos(Pos::new(HPos::Left, VPos::Center)),
            (x1 + 10, y),
        )?;
        y += 28;
    }
    Ok(())
}
