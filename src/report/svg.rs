//! Small hand-written SVG charts. Hand-written rather than plotters' SVG backend: each mark
//! needs a `<title>` (the value on hover and for screen readers), the chart an accessible
//! `<title>`/`<desc>` pair and CSS classes for print, none of which plotters emits; the
//! charts here are bars and bubbles, about as short written out as configured.
//!
//! Every data mark carries `class="mark"`, so a test (or a reader of the page source) can count
//! them: one per bar, one per bubble.

use std::fmt::Write;

/// A chart ready for the page: the `<figure>` with its SVG, title, caption and text alternative.
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub caption: String,
    /// Text alternative: what the chart shows, in words and numbers.
    pub alt: String,
    pub width: f64,
    pub height: f64,
    pub body: String,
    pub marks: usize,
}

impl Chart {
    /// The `<figure>`: heading, the SVG (role img, labelled by its title and description,
    /// `data-marks` = its number of marks) and the caption.
    pub fn html(&self) -> String {
        let id = self.id;
        format!(
            "<figure class=\"chart\" id=\"{id}\">\n<h3>{title}</h3>\n<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" data-marks=\"{marks}\" font-family=\"sans-serif\" font-size=\"12\">\n<title id=\"{id}-t\">{title}</title>\n<desc id=\"{id}-d\">{alt}</desc>\n{body}</svg>\n<figcaption>{caption}</figcaption>\n</figure>\n",
            title = esc(&self.title),
            w = self.width,
            h = self.height,
            marks = self.marks,
            alt = esc(&self.alt),
            body = self.body,
            caption = esc(&self.caption),
        )
    }
}

/// How a series is drawn: fill and outline, told apart by lightness (and the legend's words),
/// so the chart reads in black and white.
pub const SERIES: [(&str, &str); 2] = [("#c9d6e3", "#1b1b1b"), ("#1f4e79", "#1b1b1b")];

/// Escape text for HTML and SVG (domain names and cluster lists are user data).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A count with thousands separators: 641894 -> "641,894".
pub fn int(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Axis ticks from 0 to at least `max`: steps of 1, 2 or 5 x 10^n, about five of them.
pub fn ticks(max: f64) -> Vec<f64> {
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let n = (max / step).ceil() as usize;
    (0..=n.max(1)).map(|i| i as f64 * step).collect()
}

fn tick_label(v: f64) -> String {
    if v >= 1000.0 || v.fract() == 0.0 {
        int(v)
    } else {
        format!("{v:.1}")
    }
}

/// One row of a horizontal bar chart: its label, one value per series and the text printed at
/// the end of each bar.
pub struct BarRow {
    pub label: String,
    pub values: Vec<f64>,
    pub texts: Vec<String>,
}

/// Horizontal bars, one group per row, one bar per series; `x_label` names the axis and unit.
pub fn hbars(rows: &[BarRow], series: &[&str], x_label: &str) -> (String, f64, f64, usize) {
    const LEFT: f64 = 150.0;
    const PLOT: f64 = 460.0;
    const BAR: f64 = 14.0;
    const GAP: f64 = 10.0;
    let per_row = BAR * series.len() as f64 + GAP;
    let top = if series.len() > 1 { 30.0 } else { 10.0 };
    let height = top + per_row * rows.len() as f64 + 40.0;
    let max = rows
        .iter()
        .flat_map(|r| r.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let axis = ticks(max);
    let scale = PLOT / axis.last().copied().unwrap_or(1.0);
    let mut s = String::new();
    if series.len() > 1 {
        s.push_str(&legend(series, LEFT, 8.0));
    }
    let bottom = height - 40.0;
    for t in &axis {
        let x = LEFT + t * scale;
        let _ = writeln!(s, "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#ddd\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", bottom + 14.0, tick_label(*t));
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + PLOT / 2.0,
        bottom + 32.0,
        esc(x_label)
    );
    let mut marks = 0;
    for (i, row) in rows.iter().enumerate() {
        let y0 = top + per_row * i as f64 + GAP / 2.0;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y0 + BAR * series.len() as f64 / 2.0 + 4.0,
            esc(&row.label)
        );
        for (j, v) in row.values.iter().enumerate() {
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            let (fill, stroke) = SERIES[j.min(SERIES.len() - 1)];
            let y = y0 + BAR * j as f64;
            let w = v * scale;
            let text = row.texts.get(j).map(String::as_str).unwrap_or("");
            let name = series.get(j).copied().unwrap_or("");
            let _ = writeln!(s, "<rect class=\"mark\" x=\"{LEFT}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"0.6\"><title>{}: {} {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", BAR - 2.0, esc(&row.label), esc(name), esc(text), LEFT + w + 4.0, y + BAR - 4.0, esc(text));
            marks += 1;
        }
    }
    (s, LEFT + PLOT + 110.0, height, marks)
}

/// Vertical bars, one per category (`labels`), with an axis label on each side.
pub fn vbars(
    labels: &[String],
    values: &[f64],
    texts: &[String],
    x_label: &str,
    y_label: &str,
) -> (String, f64, f64, usize) {
    const LEFT: f64 = 70.0;
    const TOP: f64 = 20.0;
    const PLOT_H: f64 = 220.0;
    let slot = (560.0 / labels.len().max(1) as f64).clamp(8.0, 70.0);
    let width = LEFT + slot * labels.len() as f64 + 30.0;
    let max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let axis = ticks(max);
    let scale = PLOT_H / axis.last().copied().unwrap_or(1.0);
    let bottom = TOP + PLOT_H;
    let mut s = String::new();
    for t in &axis {
        let y = bottom - t * scale;
        let _ = writeln!(s, "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>", width - 30.0, LEFT - 6.0, y + 4.0, tick_label(*t));
    }
    let mut marks = 0;
    for (i, (label, v)) in labels.iter().zip(values).enumerate() {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let h = v * scale;
        let text = texts.get(i).map(String::as_str).unwrap_or("");
        let (fill, stroke) = SERIES[1];
        let _ = writeln!(s, "<rect class=\"mark\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"0.6\"><title>{}: {}</title></rect>", bottom - h, slot * 0.7, esc(label), esc(text));
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>", x + slot * 0.35, bottom + 14.0, esc(label), x + slot * 0.35, bottom - h - 3.0, esc(text));
        marks += 1;
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + (width - LEFT - 30.0) / 2.0,
        bottom + 34.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        TOP + PLOT_H / 2.0,
        esc(y_label)
    );
    (s, width, bottom + 44.0, marks)
}

/// A legend: a swatch and the series' name for each series, from (x, y).
pub fn legend(series: &[&str], x: f64, y: f64) -> String {
    let mut s = String::new();
    let mut at = x;
    for (j, name) in series.iter().enumerate() {
        let (fill, stroke) = SERIES[j.min(SERIES.len() - 1)];
        let _ = writeln!(s, "<rect x=\"{at:.1}\" y=\"{y:.1}\" width=\"14\" height=\"12\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"0.6\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>", at + 18.0, y + 10.0, esc(name));
        at += 30.0 + 7.0 * name.len() as f64;
    }
    s
}

/// Viridis at `t` in [0, 1]: dark purple to yellow, lightness rising monotonically, so the
/// order of the colours survives printing in grey.
pub fn viridis(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(int(641894.0), "641,894");
        assert_eq!(int(12.0), "12");
        assert_eq!(int(-1234.4), "-1,234");
        assert_eq!(int(f64::NAN), "n/a");
        assert_eq!(ticks(46.0), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        assert_eq!(ticks(0.0), vec![0.0, 1.0]);
        assert_eq!(*ticks(641894.0).last().unwrap(), 800000.0);
    }

    #[test]
    fn user_text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn one_mark_per_bar() {
        let rows: Vec<BarRow> = (0..3)
            .map(|i| BarRow {
                label: format!("d{i}"),
                values: vec![i as f64, 1.0],
                texts: vec![],
            })
            .collect();
        let (body, _, _, marks) = hbars(&rows, &["source", "mix"], "% of tokens");
        assert_eq!(marks, 6);
        assert_eq!(body.matches("class=\"mark\"").count(), 6);
        let (body, _, _, marks) = vbars(
            &["0".into(), "1".into()],
            &[5.0, f64::NAN],
            &[],
            "copies",
            "documents",
        );
        assert_eq!((marks, body.matches("class=\"mark\"").count()), (2, 2));
        assert!(!body.contains("NaN"));
    }

    #[test]
    fn viridis_gets_lighter() {
        let lum = |c: String| {
            let v = |i| u8::from_str_radix(&c[i..i + 2], 16).unwrap() as f64;
            0.2126 * v(1) + 0.7152 * v(3) + 0.0722 * v(5)
        };
        let l: Vec<f64> = (0..=10).map(|i| lum(viridis(i as f64 / 10.0))).collect();
        assert!(l.windows(2).all(|w| w[1] > w[0]), "{l:?}");
    }
}
