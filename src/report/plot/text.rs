//! Text measurement and rasterisation with the embedded font, and a backend
//! wrapper that also strokes thick bitmap lines robustly.
//!
//! plotters 0.3.7's `ab_glyph` text drawing places each glyph at a truncated
//! caret and ignores its left side bearing, so letters in a PNG drift apart
//! and together ("out put"; plotters issues #572, #576). [`Crisp`] wraps a
//! backend and, for bitmaps, draws text itself: glyphs positioned by ab_glyph
//! at sub-pixel carets, with kerning. Both backends measure text the same way
//! here, so a chart's layout (label areas, legend width) is identical in PNG
//! and SVG, and the em size matches the `font-size` the SVG backend writes
//! (plotters size / 1.24).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::FONT;

/// The parsed embedded font, or `None` if it failed to parse (reported by the
/// caller as an error, never a panic).
pub(super) fn font() -> Option<&'static FontRef<'static>> {
    static PARSED: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    PARSED
        .get_or_init(|| FontRef::try_from_slice(FONT).ok())
        .as_ref()
}

/// The ab_glyph scale whose em is `size / 1.24` pixels, the size the SVG
/// backend gives the same text.
fn scale(font: &FontRef<'static>, size: f64) -> PxScale {
    let em = (size / 1.24) as f32;
    let units = font.units_per_em().unwrap_or(2048.0);
    PxScale::from(em * font.height_unscaled() / units)
}

/// Horizontal advance of `text` (with kerning), ascent, and descent (negative),
/// in pixels at plotters font size `size`.
fn metrics(font: &FontRef<'static>, text: &str, size: f64) -> (f32, f32, f32) {
    let sf = font.as_scaled(scale(font, size));
    let mut width = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            width += sf.kern(p, id);
        }
        width += sf.h_advance(id);
        prev = Some(id);
    }
    (width, sf.ascent(), sf.descent())
}

/// Width and height in pixels of `text` at plotters font size `size`.
pub fn measure(text: &str, size: f64) -> (u32, u32) {
    match font() {
        Some(f) => {
            let (w, a, d) = metrics(f, text, size);
            (w.ceil() as u32, (a - d).ceil() as u32)
        }
        None => (0, 0),
    }
}

/// A backend whose text is measured (and, for bitmaps, drawn) with the
/// embedded font as described in the module docs.
pub(super) struct Crisp<B> {
    inner: B,
    /// Draw text as pixels here; otherwise hand it to the inner backend (SVG
    /// writes `<text>` and the viewer lays it out).
    raster: bool,
}

impl<B: DrawingBackend> Crisp<B> {
    /// Wraps a bitmap backend: text drawn here.
    pub(super) fn raster(inner: B) -> Self {
        Crisp {
            inner,
            raster: true,
        }
    }

    /// Wraps a vector backend: text passed through, only measured here.
    pub(super) fn vector(inner: B) -> Self {
        Crisp {
            inner,
            raster: false,
        }
    }
}

impl<B: DrawingBackend> DrawingBackend for Crisp<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let width = style.stroke_width();
        if !self.raster || width <= 1 || style.color().alpha == 0.0 {
            return self.inner.draw_path(path, style);
        }
        // plotters fills a thick polyline as one polygon, which
        // self-intersects where a dense line (a long timeline) zig-zags and
        // leaves spikes past the axes; a quad per segment and a round join at
        // each vertex stay inside the stroke.
        let mut prev: Option<BackendCoord> = None;
        for p in path {
            if let Some(q) = prev {
                self.inner.draw_line(q, p, style)?;
                if width > 2 {
                    self.inner.draw_circle(p, width / 2, &style.color(), true)?;
                }
            }
            prev = Some(p);
        }
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        if font().is_none() {
            return self.inner.estimate_text_size(text, style);
        }
        Ok(measure(text, style.size()))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        let font = match font() {
            Some(f) if self.raster => f,
            _ => return self.inner.draw_text(text, style, pos),
        };
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (width, ascent, descent) = metrics(font, text, style.size());
        // Anchor offsets in the text's own (unrotated) frame; y grows down,
        // and `baseline` is where the glyphs sit relative to the anchor.
        let left = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let baseline = match style.anchor().v_pos {
            VPos::Top => ascent,
            VPos::Center => (ascent + descent) / 2.0,
            VPos::Bottom => descent,
        };
        let trans = style.transform();
        let sf = font.as_scaled(scale(font, style.size()));
        let mut caret = left;
        let mut prev = None;
        let mut pixels: Vec<(i32, i32, f32)> = Vec::new();
        for c in text.chars() {
            let id = sf.glyph_id(c);
            if let Some(p) = prev {
                caret += sf.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(sf.scale(), point(caret, baseline));
            caret += sf.h_advance(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, coverage| {
                    pixels.push((
                        b.min.x as i32 + gx as i32,
                        b.min.y as i32 + gy as i32,
                        coverage,
                    ));
                });
            }
        }
        for (x, y, coverage) in pixels {
            if coverage <= 0.0 {
                continue;
            }
            let (dx, dy) = trans.transform(x, y);
            self.inner.draw_pixel(
                (pos.0 + dx, pos.1 + dy),
                BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                },
            )?;
        }
        Ok(())
    }
}
