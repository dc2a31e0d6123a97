//! Server-rendered inline SVG charts: stacked bars with axes, horizontal bars, a line.
//! Every text that goes in is escaped here; the results are inserted into pages unescaped.

use std::fmt::Write;

use crate::i18n::Tr;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The smallest "nice" step (1, 2, 2.5, 5 × 10^k, whole) so that `ticks` steps cover `max`.
fn nice_step(max: u64, ticks: u64) -> u64 {
    let raw = max.div_ceil(ticks).max(1);
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude = magnitude.saturating_mul(10);
    }
    for m in [1u64, 2, 5, 10] {
        let step = magnitude.saturating_mul(m);
        if step >= raw {
            return step;
        }
        if m == 2 && magnitude >= 4 && magnitude.saturating_mul(5) / 2 >= raw {
            return magnitude.saturating_mul(5) / 2;
        }
    }
    magnitude.saturating_mul(10)
}

/// A series of a stacked chart: its CSS class and (translated) name.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    /// CSS class of its rectangles (`lv-high`, `bar`).
    pub class: &'a str,
    /// Its name in tooltips.
    pub name: &'a str,
}

/// One bar position of a stacked chart.
#[derive(Debug, Clone)]
pub struct Column {
    /// Axis label (shown for some columns).
    pub label: String,
    /// Tooltip heading (e.g. the full time).
    pub title: String,
    /// One value per series.
    pub values: Vec<u64>,
}

const W: f64 = 720.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

fn open_svg(out: &mut String, class: &str, aria: &str, w: f64, h: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart {class}" viewBox="0 0 {w} {h}" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">"#,
        esc(aria)
    );
}

/// Y axis with grid lines; returns the axis maximum.
fn y_axis(out: &mut String, tr: &Tr, max: u64) -> u64 {
    let step = nice_step(max.max(1), 4);
    let top = step.saturating_mul(max.max(1).div_ceil(step));
    let ticks = top / step;
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=ticks {
        let v = step * i;
        let y = H - BOTTOM - plot_h * (v as f64) / (top as f64);
        let _ = write!(
            out,
            r#"<line class="gl" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&tr.num(v))
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" x2="{}" y1="{}" y2="{}"/>"#,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM
    );
    top
}

fn x_labels(out: &mut String, columns: &[Column]) {
    let n = columns.len();
    if n == 0 {
        return;
    }
    let slot = (W - LEFT - RIGHT) / n as f64;
    let every = n.div_ceil(8).max(1);
    for (i, c) in columns.iter().enumerate() {
        if i % every != 0 || c.label.is_empty() {
            continue;
        }
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text class="tick" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            H - 8.0,
            esc(&c.label)
        );
    }
}

/// Stacked vertical bars (one column per bucket, one segment per series) with a Y axis,
/// grid lines, X labels and a tooltip per segment. `empty` is shown when all values are 0.
pub fn stacked_bars(
    tr: &Tr,
    aria: &str,
    series: &[Series<'_>],
    columns: &[Column],
    empty: &str,
) -> String {
    let mut out = String::with_capacity(512 + columns.len() * 160 * series.len().max(1));
    open_svg(&mut out, "bars", aria, W, H);
    let max = columns
        .iter()
        .map(|c| c.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let top = y_axis(&mut out, tr, max);
    let n = columns.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let bar_w = (slot * 0.78).max(1.0);
    let plot_h = H - TOP - BOTTOM;
    for (i, c) in columns.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = H - BOTTOM;
        let total: u64 = c.values.iter().sum();
        let _ = write!(out, "<g>");
        for (s, v) in series.iter().zip(&c.values) {
            if *v == 0 {
                continue;
            }
            let h = plot_h * (*v as f64) / (top as f64);
            y -= h;
            let _ = write!(
                out,
                r#"<rect class="{}" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}"><title>{} · {}: {}</title></rect>"#,
                esc(s.class),
                esc(&c.title),
                esc(s.name),
                esc(&tr.num(*v))
            );
        }
        if total == 0 {
            // an invisible hit area so the empty bucket still has a tooltip
            let _ = write!(
                out,
                r#"<rect class="hit" x="{x:.1}" y="{TOP}" width="{bar_w:.1}" height="{plot_h:.1}"><title>{}: 0</title></rect>"#,
                esc(&c.title)
            );
        }
        let _ = write!(out, "</g>");
    }
    x_labels(&mut out, columns);
    if max == 0 {
        let _ = write!(
            out,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            TOP + plot_h / 2.0,
            esc(empty)
        );
    }
    out.push_str("</svg>");
    out
}

/// A line with a filled area under it (one point per column; the first value of each column).
pub fn line(tr: &Tr, aria: &str, class: &str, columns: &[Column], empty: &str) -> String {
    let mut out = String::with_capacity(512 + columns.len() * 120);
    open_svg(&mut out, "line", aria, W, H);
    let max = columns
        .iter()
        .map(|c| c.values.first().copied().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let top = y_axis(&mut out, tr, max);
    let n = columns.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let plot_h = H - TOP - BOTTOM;
    let mut points = String::new();
    let mut dots = String::new();
    for (i, c) in columns.iter().enumerate() {
        let v = c.values.first().copied().unwrap_or(0);
        let x = LEFT + slot * (i as f64 + 0.5);
        let y = H - BOTTOM - plot_h * (v as f64) / (top as f64);
        let _ = write!(points, "{x:.1},{y:.1} ");
        let _ = write!(
            dots,
            r#"<circle class="pt {}" cx="{x:.1}" cy="{y:.1}" r="2.5"><title>{}: {}</title></circle>"#,
            esc(class),
            esc(&c.title),
            esc(&tr.num(v))
        );
    }
    if !columns.is_empty() {
        let first_x = LEFT + slot * 0.5;
        let last_x = LEFT + slot * (columns.len() as f64 - 0.5);
        let base = H - BOTTOM;
        let _ = write!(
            out,
            r#"<polygon class="area {}" points="{first_x:.1},{base:.1} {points}{last_x:.1},{base:.1}"/><polyline class="stroke {}" points="{}"/>"#,
            esc(class),
            esc(class),
            points.trim_end()
        );
        out.push_str(&dots);
    }
    x_labels(&mut out, columns);
    if max == 0 {
        let _ = write!(
            out,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            TOP + plot_h / 2.0,
            esc(empty)
        );
    }
    out.push_str("</svg>");
    out
}

/// One row of a horizontal bar chart.
#[derive(Debug, Clone)]
pub struct HBar {
    /// Row label.
    pub label: String,
    /// Bar length relative to the chart's maximum.
    pub value: f64,
    /// Text after the bar (the formatted value).
    pub text: String,
    /// CSS class of the bar.
    pub class: String,
}

/// Horizontal bars, one row each, scaled to `max` (or the largest value when `max` is `None`).
pub fn hbars(aria: &str, rows: &[HBar], max: Option<f64>) -> String {
    const ROW: f64 = 26.0;
    const HW: f64 = 540.0;
    const LABEL: f64 = 140.0;
    const VALUE: f64 = 170.0;
    let h = ROW * rows.len().max(1) as f64 + 4.0;
    let mut out = String::with_capacity(256 + rows.len() * 220);
    open_svg(&mut out, "hbars", aria, HW, h);
    let max = max
        .unwrap_or_else(|| rows.iter().map(|r| r.value).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let span = HW - LABEL - VALUE;
    for (i, r) in rows.iter().enumerate() {
        let y = 2.0 + ROW * i as f64;
        let w = (span * (r.value / max).clamp(0.0, 1.0)).max(if r.value > 0.0 { 2.0 } else { 0.0 });
        let _ = write!(
            out,
            r#"<text class="label" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect class="track" x="{LABEL}" y="{:.1}" width="{span:.1}" height="14" rx="3"/><rect class="{}" x="{LABEL}" y="{:.1}" width="{w:.1}" height="14" rx="3"><title>{}: {}</title></rect><text class="value" x="{:.1}" y="{:.1}">{}</text>"#,
            LABEL - 8.0,
            y + 16.0,
            esc(&r.label),
            y + 5.0,
            esc(&r.class),
            y + 5.0,
            esc(&r.label),
            esc(&r.text),
            LABEL + span + 8.0,
            y + 16.0,
            esc(&r.text)
        );
    }
    out.push_str("</svg>");
    out
}

/// One segment of a single stacked horizontal bar.
#[derive(Debug, Clone)]
pub struct Segment {
    /// CSS class.
    pub class: String,
    /// Name for the tooltip.
    pub name: String,
    /// Size.
    pub value: u64,
}

/// A thin bar split into proportional segments (e.g. agents online / degraded / offline).
pub fn split_bar(tr: &Tr, aria: &str, segments: &[Segment]) -> String {
    const SW: f64 = 400.0;
    const SH: f64 = 16.0;
    let mut out = String::with_capacity(256 + segments.len() * 160);
    open_svg(&mut out, "split", aria, SW, SH);
    let total: u64 = segments.iter().map(|s| s.value).sum();
    let _ = write!(
        out,
        r#"<rect class="track" x="0" y="0" width="{SW}" height="{SH}" rx="4"/>"#
    );
    if total > 0 {
        let mut x = 0.0;
        for s in segments {
            if s.value == 0 {
                continue;
            }
            let w = SW * s.value as f64 / total as f64;
            let _ = write!(
                out,
                r#"<rect class="{}" x="{x:.1}" y="0" width="{w:.1}" height="{SH}"><title>{}: {}</title></rect>"#,
                esc(&s.class),
                esc(&s.name),
                esc(&tr.num(s.value))
            );
            x += w;
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn steps() {
        assert_eq!(nice_step(1, 4), 1);
        assert_eq!(nice_step(7, 4), 2);
        assert_eq!(nice_step(9, 4), 5);
        assert_eq!(nice_step(100, 4), 25);
        assert_eq!(nice_step(1000, 4), 250);
        assert_eq!(nice_step(1_234_567, 4), 500_000);
        assert_eq!(nice_step(u64::MAX, 4), nice_step(u64::MAX, 4));
    }

    #[test]
    fn charts_escape_and_scale() {
        let tr = Tr::new(Lang::En, 0);
        let cols = vec![
            Column {
                label: "<a>".into(),
                title: "t&".into(),
                values: vec![3, 1],
            },
            Column {
                label: "b".into(),
                title: "u".into(),
                values: vec![0, 0],
            },
        ];
        let s = stacked_bars(
            &tr,
            "x\"y",
            &[
                Series {
                    class: "lv-low",
                    name: "Low",
                },
                Series {
                    class: "lv-high",
                    name: "High",
                },
            ],
            &cols,
            "none",
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("&lt;a&gt;") && s.contains("t&amp; · Low: 3"));
        assert!(s.contains("aria-label=\"x&quot;y\""));
        assert!(!s.contains("none"));
        let l = line(&tr, "l", "ingest", &cols, "nothing");
        assert!(l.contains("<polyline"));
        let e = line(&tr, "l", "ingest", &[], "nothing");
        assert!(e.contains("nothing"));
        let h = hbars(
            "h",
            &[HBar {
                label: "<b>".into(),
                value: 5.0,
                text: "5".into(),
                class: "lv-high".into(),
            }],
            None,
        );
        assert!(h.contains("&lt;b&gt;"));
    }
}
