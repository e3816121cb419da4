//! bench/latency.svg: end-to-end latency by percentile, broker against ceiling.
//!
//! SVG through plotters without font features, so no system fonts are needed.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::latency::LatencyResult;

/// The percentiles on the x axis, evenly spaced by index so the tail is readable.
const QUANTILES: [(f64, &str); 7] = [
    (0.50, "p50"),
    (0.90, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
    (0.99999, "p99.999"),
    (1.0, "max"),
];

pub fn write(path: &Path, series: &[(&str, &LatencyResult)]) -> Result<()> {
    let y_max_ms = series
        .iter()
        .map(|(_, result)| result.max_ms())
        .filter(|max| max.is_finite())
        .fold(1.0_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|error| anyhow!("chart: {error}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("end-to-end latency (ms) by percentile", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..(QUANTILES.len() - 1) as f64, 0.0..y_max_ms)
        .map_err(|error| anyhow!("chart: {error}"))?;
    chart
        .configure_mesh()
        .x_labels(QUANTILES.len())
        .x_label_formatter(&|x| {
            let index = x.round() as usize;
            QUANTILES
                .get(index)
                .map_or(String::new(), |(_, label)| (*label).to_string())
        })
        .y_desc("ms")
        .draw()
        .map_err(|error| anyhow!("chart: {error}"))?;
    let colors = [RED, BLUE, GREEN, BLACK];
    for (index, (label, result)) in series.iter().enumerate() {
        let color = colors[index % colors.len()];
        let points = QUANTILES
            .iter()
            .enumerate()
            .map(|(position, (quantile, _))| (position as f64, result.quantile_ms(*quantile)));
        chart
            .draw_series(LineSeries::new(points, &color))
            .map_err(|error| anyhow!("chart: {error}"))?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|error| anyhow!("chart: {error}"))?;
    root.present().map_err(|error| anyhow!("chart: {error}"))?;
    Ok(())
}
