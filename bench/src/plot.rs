//! SVG line charts of a benchmark's own numbers (plotters, SVG backend only:
//! text is SVG `<text>` that the viewer draws, so no font crate and no font
//! file are involved; label sizes are plotters' estimate).

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use std::path::Path;

/// One line of a chart: a name and its (x, y) points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// Draws `series` against a logarithmic x axis into the SVG at `path`.
pub fn log_x_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    if series.iter().all(|s| s.points.is_empty()) || x_min <= 0.0 {
        return Err(anyhow!("nothing to plot"));
    }
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x_min / 2.0..x_max * 2.0).log_scale(),
            0.0..(y_max * 1.25).max(1.0),
        )
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Draws a chart, or says why not: a chart that cannot be written must not
/// fail a benchmark.
pub fn try_chart(path: &Path, title: &str, x: &str, y: &str, series: &[Series]) -> Option<String> {
    match log_x_chart(path, title, x, y, series).context("plot") {
        Ok(()) => Some(path.display().to_string()),
        Err(e) => {
            eprintln!("no chart {}: {e:#}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chart_is_an_svg_with_its_text_and_a_line_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        let series = [
            Series {
                name: "v4 cost".into(),
                points: vec![(10.0, 1.0), (100.0, 2.0), (1000.0, 4.0)],
            },
            Series {
                name: "v6 cost".into(),
                points: vec![(10.0, 1.5), (1000.0, 3.0)],
            },
        ];
        log_x_chart(&path, "the title", "x axis", "y axis", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        for text in ["the title", "x axis", "y axis", "v4 cost", "v6 cost"] {
            assert!(svg.contains(text), "no '{text}' in the chart");
        }
        assert!(svg.matches("<polyline").count() >= 2, "a line per series");
        assert!(
            log_x_chart(&path, "t", "x", "y", &[]).is_err(),
            "nothing to plot"
        );
    }
}
