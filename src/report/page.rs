//! The report page: findings first (what changed most, which clusters took many copies), then
//! one chart per question, then the tables of `sql/report.sql`. A pure function of [`Mix`]:
//! the same work folder gives the same bytes.

use std::fmt::Write;

use super::load::{ClusterRow, Mix, QUALITY_BINS};
use super::svg::{esc, hbars, int, legend, ticks, vbars, viridis, BarRow, Chart, SERIES};

/// A cluster is named in the findings when its documents get at least this many times the
/// mix's mean copies per document (and at least 2 copies each).
pub const MANY_COPIES: f64 = 2.0;

const STYLE: &str = "
body{font-family:sans-serif;max-width:190mm;margin:1em auto;padding:0 1em;color:#1b1b1b;line-height:1.4}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;border-bottom:1px solid #999;margin-top:1.6em}h3{font-size:1em;margin:0.4em 0}
.meta{color:#444;margin-top:0.2em}
figure{margin:1em 0;break-inside:avoid;page-break-inside:avoid}
figure svg{max-width:100%;height:auto}
figcaption{font-size:0.9em;color:#333}
.notice{border:2px solid #1b1b1b;padding:0.6em;font-weight:bold}
ul.findings li{margin:0.3em 0}
table{border-collapse:collapse;font-size:0.85em;margin:0.6em 0;break-inside:avoid}
th,td{border:1px solid #999;padding:2px 6px;text-align:right}th{background:#eee}td.t{text-align:left}
@page{size:A4;margin:12mm}
@media print{body{max-width:none;margin:0}a{color:inherit}}
";

/// The whole HTML page for `mix`.
pub fn render(mix: &Mix) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"{GENERATOR}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>samplemix report: {work}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>samplemix report</h1>\n<p class=\"meta\">Work folder <code>{work}</code>, written by samplemix {version}. Source means the documents kept after near-duplicate removal; mix means the documents with their copies.</p>\n",
        work = esc(&mix.work),
        version = crate::VERSION,
    );
    page.push_str("<h2>Findings</h2>\n");
    page.push_str(&findings(mix));
    if mix.totals.src_docs > 0.0 && mix.totals.mix_docs > 0.0 {
        page.push_str("<h2>Charts</h2>\n");
        for chart in [domain_shares(mix), quality(mix)] {
            page.push_str(&chart.html());
        }
        match cluster_map(mix) {
            Some(chart) => page.push_str(&chart.html()),
            None => {
                let _ = writeln!(page, "<p class=\"notice\" id=\"clusters-none\">{} cluster{}: no map of clusters to draw (it needs at least two centroids).</p>", mix.clusters.len(), if mix.clusters.len() == 1 { "" } else { "s" });
            }
        }
        for chart in [copies(mix), budget(mix)] {
            page.push_str(&chart.html());
        }
    }
    match dedup(mix) {
        Some(chart) => page.push_str(&chart.html()),
        None => page.push_str("<p class=\"notice\" id=\"dedup-none\">Near-duplicates per domain: the work folder has no dedup_domains.parquet (written by sql/pipeline.sql of samplemix 0.1 and later).</p>\n"),
    }
    page.push_str("<h2>Tables</h2>\n");
    page.push_str(&tables(mix));
    page.push_str("</body>\n</html>\n");
    page
}

/// The page's `generator` meta value: how `samplemix report` recognises a report it may
/// replace.
pub const GENERATOR: &str = "samplemix report";

fn share(part: f64, total: f64) -> f64 {
    if total > 0.0 {
        100.0 * part / total
    } else {
        0.0
    }
}

/// What changed most, named, as a list; a notice when the mix is empty.
fn findings(mix: &Mix) -> String {
    let t = &mix.totals;
    let mut s = String::new();
    if t.src_docs == 0.0 {
        return "<p class=\"notice\" id=\"empty\">The work folder holds no documents: nothing to report.</p>\n".into();
    }
    if t.mix_docs == 0.0 {
        let _ = writeln!(s, "<p class=\"notice\" id=\"empty\">The mix is empty: none of the {} source documents ({} tokens) got a copy{}.</p>", int(t.src_docs), int(t.src_tokens), t.budget_tokens.map(|b| format!(" under a budget of {} tokens", int(b))).unwrap_or_default());
        return s;
    }
    s.push_str("<ul class=\"findings\">\n");
    let budget = t
        .budget_tokens
        .map(|b| format!(" (budget {})", int(b)))
        .unwrap_or_default();
    let _ = writeln!(s, "<li>{} source documents, {} tokens, became {} mixed documents, {} tokens{budget}; {:.2} copies per document on average.</li>", int(t.src_docs), int(t.src_tokens), int(t.mix_docs), int(t.mix_tokens), t.mix_docs / t.src_docs);
    if let Some(d) = mix.domains.iter().max_by(|a, b| {
        let change = |d: &super::load::DomainRow| {
            (share(d.mix_tokens, t.mix_tokens) - share(d.src_tokens, t.src_tokens)).abs()
        };
        change(a)
            .total_cmp(&change(b))
            .then_with(|| b.domain.cmp(&a.domain))
    }) {
        let (from, to) = (
            share(d.src_tokens, t.src_tokens),
            share(d.mix_tokens, t.mix_tokens),
        );
        // Rounded before printing, so that a change of -0.04 points reads +0.0, not -0.0.
        let change = ((to - from) * 10.0).round() / 10.0 + 0.0;
        let _ = writeln!(s, "<li id=\"finding-domain\">Largest change of share: <strong>{}</strong>, {from:.1}% of the source tokens and {to:.1}% of the mixed tokens ({change:+.1} points), mean quality {:.2}.</li>", esc(&d.domain), d.mean_quality);
    }
    let heavy = heavy_clusters(mix);
    if heavy.is_empty() {
        let _ = writeln!(s, "<li id=\"finding-clusters\">No cluster gets {MANY_COPIES}&times; the mean copies per document or more.</li>");
    }
    for c in heavy.iter().take(5) {
        let _ = writeln!(s, "<li class=\"finding-cluster\">Many copies: <strong>cluster {}</strong>, {} documents became {} mixed documents ({:.1} copies each; the mix averages {:.2}), mean quality {:.2}, domains {}.</li>", c.cluster, int(c.src_docs), int(c.mix_docs), c.mix_docs / c.src_docs, t.mix_docs / t.src_docs, c.mean_quality, esc(&c.domains));
    }
    if heavy.len() > 5 {
        let _ = writeln!(
            s,
            "<li>... and {} more such clusters (see the cluster table).</li>",
            heavy.len() - 5
        );
    }
    s.push_str("</ul>\n");
    s
}

/// Clusters whose copies per document reach [`MANY_COPIES`] times the mix's mean, most first.
pub fn heavy_clusters(mix: &Mix) -> Vec<&ClusterRow> {
    let t = &mix.totals;
    if t.src_docs <= 0.0 {
        return Vec::new();
    }
    let mean = t.mix_docs / t.src_docs;
    let mut heavy: Vec<&ClusterRow> = mix
        .clusters
        .iter()
        .filter(|c| c.src_docs > 0.0 && c.mix_docs / c.src_docs >= (MANY_COPIES * mean).max(2.0))
        .collect();
    heavy.sort_by(|a, b| {
        (b.mix_docs / b.src_docs)
            .total_cmp(&(a.mix_docs / a.src_docs))
            .then(a.cluster.cmp(&b.cluster))
    });
    heavy
}

fn chart(
    id: &'static str,
    title: &str,
    caption: &str,
    alt: String,
    (body, width, height, marks): (String, f64, f64, usize),
) -> Chart {
    Chart {
        id,
        title: title.into(),
        caption: caption.into(),
        alt,
        width,
        height,
        body,
        marks,
    }
}

fn domain_shares(mix: &Mix) -> Chart {
    let t = &mix.totals;
    let rows: Vec<BarRow> = mix
        .domains
        .iter()
        .map(|d| {
            let (a, b) = (
                share(d.src_tokens, t.src_tokens),
                share(d.mix_tokens, t.mix_tokens),
            );
            BarRow {
                label: d.domain.clone(),
                values: vec![a, b],
                texts: vec![format!("{a:.1}%"), format!("{b:.1}%")],
            }
        })
        .collect();
    let alt = rows
        .iter()
        .map(|r| {
            format!(
                "{}: {} of the source, {} of the mix",
                r.label, r.texts[0], r.texts[1]
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    chart("chart-domains", "Domain shares of tokens, source vs mix", "Each domain's share of all tokens before mixing (light) and in the mix (dark): the domain proportions that per-sample weighting lets fall out.", alt, hbars(&rows, &["source", "mix"], "share of tokens (%)"))
}

/// Documents per quality bin, source (0) and mix (1).
type Bins = [[f64; QUALITY_BINS]; 2];

const PANEL_COLS: usize = 4;
const PANEL_W: f64 = 170.0;
const PANEL_H: f64 = 110.0;

/// Each domain's documents per quality bin, in the order of `mix.domains`.
fn quality_bins(mix: &Mix) -> Vec<(&str, Bins)> {
    let mut bins: Vec<(&str, Bins)> = mix
        .domains
        .iter()
        .map(|d| (d.domain.as_str(), [[0.0; QUALITY_BINS]; 2]))
        .collect();
    for q in &mix.quality {
        if let Some((_, b)) = bins.iter_mut().find(|(d, _)| *d == q.domain) {
            b[0][q.bin] += q.src_docs;
            b[1][q.bin] += q.mix_docs;
        }
    }
    bins
}

/// Bins as percentages of their series' total.
fn bin_shares(b: &Bins) -> Bins {
    b.map(|series| {
        let total: f64 = series.iter().sum();
        series.map(|n| share(n, total))
    })
}

/// The mean of binned qualities (each bin at its middle); NaN for no documents.
fn binned_mean(series: &[f64; QUALITY_BINS]) -> f64 {
    let total: f64 = series.iter().sum();
    let weighted: f64 = (0..QUALITY_BINS)
        .map(|j| series[j] * (j as f64 + 0.5))
        .sum();
    if total > 0.0 {
        weighted / total
    } else {
        f64::NAN
    }
}

/// Quality histograms, one panel per domain: share of the domain's documents per quality bin.
fn quality(mix: &Mix) -> Chart {
    let bins = quality_bins(mix);
    let shares: Vec<Bins> = bins.iter().map(|(_, b)| bin_shares(b)).collect();
    let max = shares
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0, f64::max);
    let top = *ticks(max).last().unwrap_or(&100.0);
    let mut s = legend(&["source", "mix"], 60.0, 6.0);
    let mut marks = 0;
    for (i, ((name, _), panel)) in bins.iter().zip(&shares).enumerate() {
        let x0 = 50.0 + (i % PANEL_COLS) as f64 * (PANEL_W + 40.0);
        let y0 = 40.0 + (i / PANEL_COLS) as f64 * (PANEL_H + 60.0);
        marks += quality_panel(&mut s, name, panel, (x0, y0), top);
    }
    let alt: Vec<String> = bins
        .iter()
        .map(|(name, b)| {
            let (from, to) = (binned_mean(&b[0]), binned_mean(&b[1]));
            format!("{name}: binned mean quality {from:.1} in the source, {to:.1} in the mix")
        })
        .collect();
    let width = 50.0 + PANEL_COLS as f64 * (PANEL_W + 40.0);
    let height = 40.0 + bins.len().div_ceil(PANEL_COLS) as f64 * (PANEL_H + 60.0);
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">quality q(x), 0 to 10 (panels: % of the domain's documents per bin)</text>", 50.0 + (width - 90.0) / 2.0, height - 8.0);
    chart("chart-quality", "Quality distribution per domain, source vs mix", "Per domain, the share of its documents in each quality bin before mixing (light) and among its mixed documents (dark): a dark bar above a light one means the mix favours that quality.", alt.join("; "), (s, width, height, marks))
}

/// One domain's panel at (x0, y0), bars scaled to `top` percent; returns its marks.
fn quality_panel(
    s: &mut String,
    name: &str,
    panel: &Bins,
    (x0, y0): (f64, f64),
    top: f64,
) -> usize {
    let (pw, ph) = (PANEL_W, PANEL_H);
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
        x0 + pw / 2.0,
        y0 - 4.0,
        esc(name)
    );
    let _ = writeln!(s, "<line x1=\"{x0}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1b1b1b\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{:.1}\" stroke=\"#1b1b1b\"/>", y0 + ph, x0 + pw, y0 + ph, y0 + ph);
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">{top:.0}%</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"10\">0</text>", x0 - 3.0, y0 + 8.0, x0 - 3.0, y0 + ph);
    for (j, label) in [(0usize, "0"), (5, "5"), (10, "10")] {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{label}</text>",
            x0 + pw * j as f64 / QUALITY_BINS as f64,
            y0 + ph + 12.0
        );
    }
    let slot = pw / QUALITY_BINS as f64;
    let mut marks = 0;
    for j in 0..QUALITY_BINS {
        for (k, series) in panel.iter().enumerate() {
            let v = series[j];
            let h = ph * v / top;
            let (fill, stroke) = SERIES[k];
            let whose = if k == 0 {
                "source documents"
            } else {
                "mixed documents"
            };
            let _ = writeln!(s, "<rect class=\"mark\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"0.5\"><title>{}, quality {j} to {}: {v:.1}% of the {whose}</title></rect>", x0 + slot * j as f64 + 1.0 + k as f64 * (slot - 2.0) / 2.0, y0 + ph - h, (slot - 2.0) / 2.0, esc(name), j + 1);
            marks += 1;
        }
    }
    marks
}

const MAP_W: f64 = 520.0;
const MAP_H: f64 = 360.0;
const MAP_L: f64 = 60.0;
const MAP_T: f64 = 20.0;

/// (min, max) of the finite values; widened around a single value, so scales never divide by 0.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    match (lo.is_finite(), hi > lo) {
        (true, true) => (lo, hi),
        (true, false) => (lo - 1.0, lo + 1.0),
        _ => (0.0, 1.0),
    }
}

/// Centroids on their first two principal components; None with fewer than two clusters.
fn cluster_map(mix: &Mix) -> Option<Chart> {
    if mix.clusters.len() < 2 {
        return None;
    }
    let (x_lo, x_hi) = span(mix.clusters.iter().map(|c| c.xy[0]));
    let (y_lo, y_hi) = span(mix.clusters.iter().map(|c| c.xy[1]));
    let (d_lo, d_hi) = span(mix.clusters.iter().map(|c| c.diversity));
    let biggest = mix.clusters.iter().map(|c| c.src_docs).fold(1.0, f64::max);
    let heavy: Vec<i64> = heavy_clusters(mix).iter().map(|c| c.cluster).collect();
    let mut order: Vec<&ClusterRow> = mix.clusters.iter().collect();
    // Big bubbles first, so that small ones stay visible on top.
    order.sort_by(|a, b| {
        b.src_docs
            .total_cmp(&a.src_docs)
            .then(a.cluster.cmp(&b.cluster))
    });
    let place = |c: &ClusterRow| {
        let x = MAP_L + 30.0 + (MAP_W - 60.0) * (c.xy[0] - x_lo) / (x_hi - x_lo);
        let y = MAP_T + MAP_H - 30.0 - (MAP_H - 60.0) * (c.xy[1] - y_lo) / (y_hi - y_lo);
        (x, y)
    };
    let mut s = format!("<rect x=\"{MAP_L}\" y=\"{MAP_T}\" width=\"{MAP_W}\" height=\"{MAP_H}\" fill=\"none\" stroke=\"#1b1b1b\"/>\n");
    for c in &order {
        let (x, y) = place(c);
        let r = 4.0 + 26.0 * (c.src_docs / biggest).sqrt();
        let outline = match heavy.contains(&c.cluster) {
            true => " stroke-dasharray=\"4 2\" stroke-width=\"2.5\"",
            false => " stroke-width=\"1\"",
        };
        let colour = viridis((c.diversity - d_lo) / (d_hi - d_lo));
        let _ = writeln!(s, "<circle class=\"mark\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"{colour}\" fill-opacity=\"0.85\" stroke=\"#1b1b1b\"{outline}><title>cluster {}: {} documents, diversity {:.3}, mean quality {:.2}, {} mixed documents (at most {} copies of one), domains {}</title></circle>", c.cluster, int(c.src_docs), c.diversity, c.mean_quality, int(c.mix_docs), int(c.max_repeats), esc(&c.domains));
    }
    // Labels after every bubble, so that no bubble hides another's number.
    for c in &order {
        let (x, y) = place(c);
        let _ = writeln!(s, "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" paint-order=\"stroke\" stroke=\"#fff\" stroke-width=\"3\">{}</text>", y + 3.5, c.cluster);
    }
    s.push_str(&map_axes_and_legend(d_lo, d_hi));
    let flagged = match heavy.is_empty() {
        true => "none".to_string(),
        false => heavy
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let alt = format!("{} clusters; largest cluster {} documents; diversity from {d_lo:.3} to {d_hi:.3}; clusters with many copies per document: {flagged}", mix.clusters.len(), int(biggest));
    Some(chart("chart-clusters", "Clusters: centroids on a plane", "Each k-means cluster at its centroid's first two principal components; area = documents, colour = diversity (dark low, light high), dashed outline = many copies per document. Hover a bubble for its mean quality and copies.", alt, (s, MAP_L + MAP_W + 140.0, MAP_T + MAP_H + 36.0, mix.clusters.len())))
}

/// The map's axis titles and its legend: five diversity swatches (dark = low, light = high),
/// the many-copies outline and what the area means.
fn map_axes_and_legend(d_lo: f64, d_hi: f64) -> String {
    let (l, t, w, h) = (MAP_L, MAP_T, MAP_W, MAP_H);
    let mut s = String::new();
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">first principal component of the centroids (embedding units)</text>", l + w / 2.0, t + h + 20.0);
    let _ = writeln!(s, "<text transform=\"translate(20 {:.1}) rotate(-90)\" text-anchor=\"middle\">second principal component</text>", t + h / 2.0);
    let lx = l + w + 20.0;
    let _ = writeln!(s, "<text x=\"{lx}\" y=\"{t}\" dy=\"10\">diversity</text>");
    for i in 0..5 {
        let f = i as f64 / 4.0;
        let _ = writeln!(s, "<rect x=\"{lx}\" y=\"{:.1}\" width=\"16\" height=\"16\" fill=\"{}\" stroke=\"#1b1b1b\" stroke-width=\"0.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{:.3}</text>", t + 18.0 + 20.0 * i as f64, viridis(f), lx + 22.0, t + 30.0 + 20.0 * i as f64, d_lo + f * (d_hi - d_lo));
    }
    let _ = writeln!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"8\" fill=\"none\" stroke=\"#1b1b1b\" stroke-dasharray=\"4 2\" stroke-width=\"2.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">many copies</text>", lx + 8.0, t + 135.0, lx + 20.0, t + 139.0);
    let _ = writeln!(
        s,
        "<text x=\"{lx}\" y=\"{:.1}\" font-size=\"10\">area = documents</text>",
        t + 165.0
    );
    s
}

fn copies(mix: &Mix) -> Chart {
    let labels: Vec<String> = mix.copies.iter().map(|(c, _)| c.to_string()).collect();
    let values: Vec<f64> = mix.copies.iter().map(|(_, n)| *n).collect();
    let texts: Vec<String> = values.iter().map(|v| int(*v)).collect();
    let alt = labels
        .iter()
        .zip(&texts)
        .map(|(l, t)| format!("{t} documents with {l} copies"))
        .collect::<Vec<_>>()
        .join("; ");
    chart(
        "chart-copies",
        "Copies per document",
        "How many source documents the mix drops (0), keeps once (1) or repeats (2 or more).",
        alt,
        vbars(
            &labels,
            &values,
            &texts,
            "copies of a document in the mix",
            "documents",
        ),
    )
}

fn budget(mix: &Mix) -> Chart {
    let t = &mix.totals;
    let mut rows = Vec::new();
    if let Some(b) = t.budget_tokens {
        rows.push(BarRow {
            label: "budget".into(),
            values: vec![b],
            texts: vec![int(b)],
        });
    }
    rows.push(BarRow {
        label: "expected".into(),
        values: vec![t.expected_tokens],
        texts: vec![int(t.expected_tokens)],
    });
    rows.push(BarRow {
        label: "realised".into(),
        values: vec![t.mix_tokens],
        texts: vec![int(t.mix_tokens)],
    });
    rows.push(BarRow {
        label: "source".into(),
        values: vec![t.src_tokens],
        texts: vec![int(t.src_tokens)],
    });
    let alt = rows
        .iter()
        .map(|r| format!("{}: {} tokens", r.label, r.texts[0]))
        .collect::<Vec<_>>()
        .join("; ");
    chart("chart-budget", "Budget vs realised tokens", "The token budget of the run, the expected tokens (sum of expected copies x tokens), the tokens the rounded copies realise, and the source's tokens.", alt, hbars(&rows, &["tokens"], "tokens"))
}

fn dedup(mix: &Mix) -> Option<Chart> {
    let rows: Vec<BarRow> = mix
        .dedup
        .as_ref()?
        .iter()
        .map(|d| BarRow {
            label: d.domain.clone(),
            values: vec![d.removed],
            texts: vec![format!(
                "{} of {} ({:.1}%)",
                int(d.removed),
                int(d.docs),
                share(d.removed, d.docs)
            )],
        })
        .collect();
    let alt = rows
        .iter()
        .map(|r| format!("{}: {}", r.label, r.texts[0]))
        .collect::<Vec<_>>()
        .join("; ");
    Some(chart("chart-dedup", "Near-duplicates removed per domain", "Documents removed as near-duplicates of a kept document (MinHash LSH, estimated Jaccard >= 0.8), before scoring.", alt, hbars(&rows, &["removed"], "documents removed")))
}

fn table(id: &str, head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut s = format!("<table id=\"{id}\">\n<tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>\n");
    for row in rows {
        s.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let numeric = cell.starts_with(|c: char| c.is_ascii_digit() || c == '-');
            let class = if i == 0 || !numeric {
                " class=\"t\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{}</td>", esc(cell));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}

/// The tables of `sql/report.sql`, from the same aggregates as the charts.
fn tables(mix: &Mix) -> String {
    [
        domain_table,
        dedup_table,
        quality_table,
        cluster_table,
        totals_table,
    ]
    .iter()
    .map(|f| f(mix))
    .collect()
}

fn domain_table(mix: &Mix) -> String {
    let t = &mix.totals;
    let mut s = String::new();
    s.push_str("<h3>Per domain</h3>\n");
    s.push_str(&table(
        "table-domains",
        &[
            "domain",
            "source docs",
            "source tokens",
            "source share %",
            "mix docs",
            "mix tokens",
            "mix share %",
            "mean quality",
            "dropped",
            "max copies",
        ],
        mix.domains
            .iter()
            .map(|d| {
                vec![
                    d.domain.clone(),
                    int(d.src_docs),
                    int(d.src_tokens),
                    format!("{:.2}", share(d.src_tokens, t.src_tokens)),
                    int(d.mix_docs),
                    int(d.mix_tokens),
                    format!("{:.2}", share(d.mix_tokens, t.mix_tokens)),
                    format!("{:.2}", d.mean_quality),
                    format!("{:.3}", d.dropped_frac),
                    int(d.max_repeats),
                ]
            })
            .collect(),
    ));
    s
}

fn dedup_table(mix: &Mix) -> String {
    let mut s = String::new();
    if let Some(dedup) = &mix.dedup {
        s.push_str("<h3>Near-duplicates per domain</h3>\n");
        s.push_str(&table(
            "table-dedup",
            &["domain", "documents", "removed"],
            dedup
                .iter()
                .map(|d| vec![d.domain.clone(), int(d.docs), int(d.removed)])
                .collect(),
        ));
    }
    s
}

fn quality_table(mix: &Mix) -> String {
    let mut s = String::new();
    let mut bins = [[0.0; 2]; QUALITY_BINS];
    for q in &mix.quality {
        bins[q.bin][0] += q.src_docs;
        bins[q.bin][1] += q.mix_docs;
    }
    s.push_str("<h3>Per quality bin</h3>\n");
    s.push_str(&table(
        "table-quality",
        &["quality", "source docs", "mix docs"],
        bins.iter()
            .enumerate()
            .map(|(j, b)| vec![format!("{j} to {}", j + 1), int(b[0]), int(b[1])])
            .collect(),
    ));
    s
}

fn cluster_table(mix: &Mix) -> String {
    let mut s = String::new();
    s.push_str("<h3>Per cluster</h3>\n");
    s.push_str(&table(
        "table-clusters",
        &[
            "cluster",
            "source docs",
            "diversity",
            "mean quality",
            "mix docs",
            "copies per doc",
            "max copies",
            "domains",
        ],
        mix.clusters
            .iter()
            .map(|c| {
                vec![
                    c.cluster.to_string(),
                    int(c.src_docs),
                    format!("{:.3}", c.diversity),
                    format!("{:.2}", c.mean_quality),
                    int(c.mix_docs),
                    format!(
                        "{:.2}",
                        if c.src_docs > 0.0 {
                            c.mix_docs / c.src_docs
                        } else {
                            0.0
                        }
                    ),
                    int(c.max_repeats),
                    c.domains.clone(),
                ]
            })
            .collect(),
    ));
    s
}

fn totals_table(mix: &Mix) -> String {
    let t = &mix.totals;
    let mut s = String::new();
    s.push_str("<h3>Totals</h3>\n");
    s.push_str(&table(
        "table-totals",
        &[
            "source docs",
            "source tokens",
            "expected docs",
            "mix docs",
            "budget tokens",
            "expected tokens",
            "mix tokens",
        ],
        vec![vec![
            int(t.src_docs),
            int(t.src_tokens),
            format!("{:.3}", t.expected_docs),
            int(t.mix_docs),
            t.budget_tokens.map(int).unwrap_or_else(|| "n/a".into()),
            int(t.expected_tokens),
            int(t.mix_tokens),
        ]],
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::super::load::{DomainRow, QualityRow, Totals};
    use super::*;

    fn cluster(id: i64, docs: f64, mix: f64) -> ClusterRow {
        ClusterRow {
            cluster: id,
            src_docs: docs,
            diversity: 0.1 * id as f64,
            mean_quality: 5.0,
            mix_docs: mix,
            max_repeats: 4.0,
            domains: "<web>".into(),
            xy: [id as f64, -(id as f64)],
        }
    }

    fn mix(clusters: Vec<ClusterRow>, mix_docs: f64) -> Mix {
        let src: f64 = clusters.iter().map(|c| c.src_docs).sum();
        Mix {
            work: "w/".into(),
            domains: vec![DomainRow {
                domain: "<web>".into(),
                src_docs: src,
                src_tokens: 10.0 * src,
                mix_docs,
                mix_tokens: 10.0 * mix_docs,
                mean_quality: 5.0,
                dropped_frac: 0.0,
                max_repeats: 4.0,
            }],
            dedup: None,
            quality: vec![QualityRow {
                domain: "<web>".into(),
                bin: 5,
                src_docs: src,
                mix_docs,
            }],
            clusters,
            copies: vec![(0, 1.0), (4, 2.0)],
            totals: Totals {
                src_docs: src,
                src_tokens: 10.0 * src,
                expected_docs: mix_docs,
                expected_tokens: 10.0 * mix_docs,
                mix_docs,
                mix_tokens: 10.0 * mix_docs,
                budget_tokens: Some(10.0 * mix_docs),
            },
        }
    }

    #[test]
    fn an_empty_mix_says_so_instead_of_drawing() {
        let page = render(&mix(vec![cluster(0, 3.0, 0.0)], 0.0));
        assert!(
            page.contains("id=\"empty\">The mix is empty: none of the 3 source documents"),
            "{page}"
        );
        assert!(!page.contains("class=\"mark\""), "no chart of nothing");
        let page = render(&Mix::default());
        assert!(page.contains("holds no documents"));
    }

    #[test]
    fn one_cluster_gives_no_map_but_every_other_chart() {
        let page = render(&mix(vec![cluster(0, 3.0, 6.0)], 6.0));
        assert!(
            page.contains("id=\"clusters-none\">1 cluster: no map"),
            "{page}"
        );
        for id in [
            "chart-domains",
            "chart-quality",
            "chart-copies",
            "chart-budget",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(!page.contains("id=\"chart-clusters\""));
    }

    #[test]
    fn clusters_with_many_copies_are_named_and_user_text_escaped() {
        // Mean 1.2 copies per document; cluster 2 gets 4 each, cluster 1 one each.
        let m = mix(
            vec![
                cluster(1, 8.0, 8.0),
                cluster(2, 2.0, 8.0),
                cluster(3, 10.0, 8.0),
            ],
            24.0,
        );
        assert_eq!(
            heavy_clusters(&m)
                .iter()
                .map(|c| c.cluster)
                .collect::<Vec<_>>(),
            vec![2]
        );
        let page = render(&m);
        assert!(page.contains("Many copies: <strong>cluster 2</strong>, 2 documents became 8 mixed documents (4.0 copies each"), "{page}");
        assert!(
            !page.contains("<web>") && page.contains("&lt;web&gt;"),
            "domain names are escaped"
        );
        assert!(
            page.contains("stroke-dasharray=\"4 2\" stroke-width=\"2.5\"><title>cluster 2:"),
            "its bubble is outlined"
        );
    }
}
