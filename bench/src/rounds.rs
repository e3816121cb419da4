//! Repeated rounds of a throughput scenario and the medians the report shows.
//!
//! On the shared 2-core machine one run of a scenario moves by a fifth from run to run
//! (its ratio to the ceiling, its CPU per GB); the median of paired rounds moves far less.
//! Rounds are paired: each round measures riffle and the ceiling back to back, so the
//! ratio of a round compares two runs under the same machine conditions.

use anyhow::{Context, Result};

use crate::broker_process::ProcUsage;
use crate::produce::Throughput;
use crate::report::Row;

/// One round: riffle's run, the broker's CPU and peak RSS over it, and the ceiling's run
/// measured next to it.
#[derive(Clone, Copy, Debug)]
pub struct RoundPair {
    pub broker: Throughput,
    pub usage: ProcUsage,
    pub ceiling: Throughput,
}

impl RoundPair {
    /// riffle's message rate over the ceiling's in the same round.
    pub fn ratio_to_ceiling(&self) -> f64 {
        self.broker.messages_per_s() / self.ceiling.messages_per_s()
    }

    /// The broker's CPU seconds per 10^9 value bytes it moved in this round.
    pub fn cpu_s_per_gb(&self) -> f64 {
        self.usage.cpu_seconds / (self.broker.value_bytes_total as f64 / 1e9)
    }
}

/// Runs `rounds` rounds: riffle's side and the reference side back to back, riffle first
/// in even rounds and the reference first in odd ones, so slow drift of the shared machine
/// lands on both sides alike. A failed round fails the whole, naming the round and side.
pub fn run_paired(
    rounds: u32,
    mut broker_side: impl FnMut(u32) -> Result<(Throughput, ProcUsage)>,
    mut ceiling_side: impl FnMut(u32) -> Result<Throughput>,
) -> Result<Vec<RoundPair>> {
    (0..rounds)
        .map(|round| {
            eprintln!("riffle-bench:   round {} of {rounds}", round + 1);
            let failed = |side: &str| format!("round {} of {rounds}, {side}", round + 1);
            let (broker, usage, ceiling) = if round % 2 == 0 {
                let (broker, usage) = broker_side(round).with_context(|| failed("riffle"))?;
                let ceiling = ceiling_side(round).with_context(|| failed("reference"))?;
                (broker, usage, ceiling)
            } else {
                let ceiling = ceiling_side(round).with_context(|| failed("reference"))?;
                let (broker, usage) = broker_side(round).with_context(|| failed("riffle"))?;
                (broker, usage, ceiling)
            };
            Ok(RoundPair {
                broker,
                usage,
                ceiling,
            })
        })
        .collect()
}

/// The median of `values`, or None when there are none. For an even count it is the mean
/// of the two middle values, so two rounds give their mean rather than the slower one.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        count if count % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

fn median_of(rounds: &[RoundPair], figure: impl Fn(&RoundPair) -> f64) -> Option<f64> {
    median(&rounds.iter().map(figure).collect::<Vec<_>>())
}

/// The riffle row and the ceiling row over `rounds`: median rates, "vs ceiling" the median
/// of the per-round ratios (not the ratio of the medians), CPU per GB the median of the
/// per-round figures, peak RSS the highest round's. None when there are no rounds.
pub fn median_rows(rounds: &[RoundPair]) -> Option<[Row; 2]> {
    let first = rounds.first()?;
    let peak_rss_bytes = rounds
        .iter()
        .map(|round| round.usage.peak_rss_bytes)
        .max()?;
    let broker_row = Row {
        run: "riffle".into(),
        messages: Some(first.broker.messages),
        messages_per_s: median_of(rounds, |round| round.broker.messages_per_s()),
        mb_per_s: median_of(rounds, |round| round.broker.mb_per_s()),
        ratio_to_ceiling: median_of(rounds, RoundPair::ratio_to_ceiling),
        cpu_s_per_gb: median_of(rounds, RoundPair::cpu_s_per_gb),
        peak_rss_mb: Some(peak_rss_bytes as f64 / 1e6),
        ..Row::default()
    };
    let ceiling_row = Row {
        run: "mock-cluster ceiling".into(),
        messages: Some(first.ceiling.messages),
        messages_per_s: median_of(rounds, |round| round.ceiling.messages_per_s()),
        mb_per_s: median_of(rounds, |round| round.ceiling.mb_per_s()),
        ratio_to_ceiling: Some(1.0),
        ..Row::default()
    };
    Some([broker_row, ceiling_row])
}

/// Every round's ratio and CPU per GB, in round order, so the spread behind the medians
/// shows; None for a single round, whose figures are the table's.
pub fn rounds_note(rounds: &[RoundPair]) -> Option<String> {
    if rounds.len() < 2 {
        return None;
    }
    let listed: Vec<String> = rounds
        .iter()
        .map(|round| {
            format!(
                "{:.0}% {:.2}",
                round.ratio_to_ceiling() * 100.0,
                round.cpu_s_per_gb()
            )
        })
        .collect();
    Some(format!(
        "Rounds (riffle vs ceiling, broker CPU-s/GB): {}; medians shown.",
        listed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn run(messages: u64, elapsed_ms: u64) -> Throughput {
        Throughput {
            messages,
            value_bytes_total: messages * 100,
            elapsed: Duration::from_millis(elapsed_ms),
        }
    }

    /// A round of 1000 messages of 100 B: riffle in `broker_ms`, the ceiling in
    /// `ceiling_ms`, the broker using `cpu_seconds` and `peak_rss_bytes`.
    fn round(broker_ms: u64, ceiling_ms: u64, cpu_seconds: f64, peak_rss_bytes: u64) -> RoundPair {
        RoundPair {
            broker: run(1000, broker_ms),
            usage: ProcUsage {
                cpu_seconds,
                peak_rss_bytes,
            },
            ceiling: run(1000, ceiling_ms),
        }
    }

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[7.5]), Some(7.5));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, 2.0]), Some(1.5));
    }

    #[test]
    fn median_of_nothing_is_none() {
        assert_eq!(median(&[]), None);
        assert!(median_rows(&[]).is_none());
    }

    #[test]
    fn vs_ceiling_is_the_median_of_paired_ratios() {
        // Riffle 1000, 1000, 500 msg/s against ceilings of 1000, 2000, 625 msg/s: paired
        // ratios 1.0, 0.5, 0.8 (median 0.8), while both rate medians are 1000 msg/s, whose
        // ratio would be 100%.
        let rounds = [
            round(1000, 1000, 0.1, 10),
            round(1000, 500, 0.3, 30),
            round(2000, 1600, 0.2, 20),
        ];
        let [broker_row, ceiling_row] = median_rows(&rounds).expect("three rounds");
        let ratio = broker_row.ratio_to_ceiling.expect("a ratio");
        assert!((ratio - 0.8).abs() < 1e-9, "ratio {ratio}");
        assert_eq!(broker_row.messages_per_s, Some(1000.0));
        assert_eq!(ceiling_row.messages_per_s, Some(1000.0));
        assert_eq!(ceiling_row.ratio_to_ceiling, Some(1.0));
    }

    #[test]
    fn cpu_is_the_median_and_rss_the_maximum() {
        // 1000 messages of 100 B are 1e-4 GB, so 0.1 CPU-s is 1000 CPU-s/GB.
        let rounds = [
            round(1000, 1000, 0.1, 10_000_000),
            round(1000, 1000, 0.3, 30_000_000),
            round(1000, 1000, 0.2, 20_000_000),
            round(1000, 1000, 0.4, 5_000_000),
        ];
        let [broker_row, _] = median_rows(&rounds).expect("four rounds");
        let cpu = broker_row.cpu_s_per_gb.expect("a CPU figure");
        assert!((cpu - 2500.0).abs() < 1e-6, "cpu {cpu}");
        assert_eq!(broker_row.peak_rss_mb, Some(30.0));
    }

    #[test]
    fn the_note_lists_every_round_in_order() {
        let rounds = [round(1000, 950, 0.000_11, 1), round(1000, 880, 0.000_13, 1)];
        assert_eq!(
            rounds_note(&rounds).as_deref(),
            Some("Rounds (riffle vs ceiling, broker CPU-s/GB): 95% 1.10, 88% 1.30; medians shown.")
        );
        assert_eq!(rounds_note(&rounds[..1]), None);
    }
}
