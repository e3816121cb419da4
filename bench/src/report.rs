//! bench/REPORT.md: one table per scenario, the machine, the date and the commit.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::disk::PageCacheCost;
use crate::latency::LatencyResult;

/// How long the page-cache probe lets memory sit free before its cold pass.
pub const PAGE_CACHE_PROBE_IDLE_S: u64 = 6;

/// One line of a scenario table: the broker, its ceiling, or the raw disk.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub run: String,
    pub messages: Option<u64>,
    pub messages_per_s: Option<f64>,
    pub mb_per_s: Option<f64>,
    pub ratio_to_ceiling: Option<f64>,
    pub cpu_s_per_gb: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    /// p50, p99, p99.9, max in milliseconds.
    pub latency_ms: Option<[f64; 4]>,
    /// Free text for figures that fit no column (start-up times).
    pub note: String,
}

impl Row {
    pub fn latency(result: &LatencyResult) -> [f64; 4] {
        [
            result.quantile_ms(0.50),
            result.quantile_ms(0.99),
            result.quantile_ms(0.999),
            result.max_ms(),
        ]
    }
}

/// A target from the issue and whether this run met it.
#[derive(Clone, Debug)]
pub struct TargetCheck {
    pub what: String,
    pub measured: String,
    pub met: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Scenario {
    pub title: String,
    pub shape: String,
    /// The header of the ratio column when the reference is not the mock-cluster ceiling.
    pub ratio_header: Option<String>,
    pub rows: Vec<Row>,
    pub targets: Vec<TargetCheck>,
    pub notes: Vec<String>,
}

/// The run as a whole.
pub struct Report {
    pub scale: f64,
    /// Rounds per throughput scenario; their medians are the figures shown.
    pub rounds: u32,
    /// The scenarios `--only` asked for; empty when every scenario ran.
    pub only: Vec<u32>,
    /// The machine's page-cache first-touch cost, measured before the scenarios.
    pub page_cache_cost: Option<PageCacheCost>,
    pub scenarios: Vec<Scenario>,
    pub failures: Vec<String>,
}

/// Puts `scenario` before the first one whose title starts with a higher number, so a
/// scenario run out of order (6 needs a broker of its own, so it runs last) is still
/// reported in order.
pub fn insert_in_order(scenarios: &mut Vec<Scenario>, scenario: Scenario) {
    let number = title_number(&scenario.title);
    let position = scenarios
        .iter()
        .position(|other| title_number(&other.title) > number)
        .unwrap_or(scenarios.len());
    scenarios.insert(position, scenario);
}

/// The number a title starts with ("3b. Consume" is 3); titles without one sort last.
pub fn title_number(title: &str) -> u32 {
    let digits: String = title.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(u32::MAX)
}

pub fn write(report: &Report, path: &Path) -> Result<()> {
    let text = render(report);
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Riffle benchmark report\n");
    let _ = writeln!(
        out,
        "Written by `riffle-bench all`; rerun it rather than editing this file.\n"
    );
    let _ = writeln!(out, "- date (UTC): {}", utc_now());
    let _ = writeln!(out, "- commit: `{}`", git_head());
    let _ = writeln!(out, "- machine: {} cores, {}", cores(), cpu_model());
    let _ = writeln!(
        out,
        "- scale: {} (1.0 is the issue's full size); rounds: {}. {}",
        report.scale,
        report.rounds,
        rounds_sentence(report.rounds)
    );
    if !report.only.is_empty() {
        let listed: Vec<String> = report.only.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "- scenarios: only {} (`--only`; 3 brings 1 and 2)",
            listed.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "- broker: `riffle serve` as shipped (flush policy acks-all: acks=all answered after fsync)"
    );
    let _ = writeln!(
        out,
        "- ceiling: the same rdkafka client against librdkafka's in-process mock cluster, same \
         settings, same run. The mock keeps messages in memory and never touches the disk, and it \
         shares this process's CPU with the client."
    );
    if let Some(cost) = &report.page_cache_cost {
        let _ = writeln!(
            out,
            "- page cache: writing into it cost {:.2} CPU-s/GB of system time after {} s idle and \
             {:.2} right after, measured before the scenarios. This VM's host takes back memory \
             the guest has left free for a few seconds, and the next touch pays for it; the \
             broker pays the first rate whenever its page cache grows (FINDINGS.md, \"The VM's \
             cold memory\").",
            cost.cold_cpu_s_per_gb, PAGE_CACHE_PROBE_IDLE_S, cost.warm_cpu_s_per_gb
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "MB are 10^6 bytes of message values. CPU-s/GB is the broker's user+sys CPU \
        seconds per 10^9 value bytes moved. Peak RSS is the broker's VmHWM, reset before each scenario.\n"
    );
    let _ = writeln!(
        out,
        "What the figures mean, the ceiling's limits and the broker bottlenecks found so far: \
         [FINDINGS.md](FINDINGS.md).\n"
    );
    if !report.failures.is_empty() {
        let _ = writeln!(out, "## Failures\n");
        for failure in &report.failures {
            let _ = writeln!(out, "- {failure}");
        }
        let _ = writeln!(out);
    }
    for scenario in &report.scenarios {
        render_scenario(&mut out, scenario);
    }
    let _ = writeln!(out, "![end-to-end latency percentiles](latency.svg)");
    out
}

/// Why the throughput figures are medians: single runs on this shared machine are noisy.
fn rounds_sentence(rounds: u32) -> String {
    if rounds == 1 {
        return "Each throughput figure (scenarios 1, 2, 3, 5, 7, 8, 9) is from a single run of \
                riffle and its reference back to back; `--rounds N` gives medians of N, which \
                single runs on a shared machine need."
            .into();
    }
    format!(
        "Each throughput figure (scenarios 1, 2, 3, 5, 7, 8, 9) is the median of {rounds} \
         interleaved rounds, each running riffle and its reference (the ceiling; for 7 the \
         idempotent producer, for 8 at-least-once processing, for 9 produce over PLAINTEXT) \
         back to back with the order alternating, and the ratio is the median of the \
         per-round ratios; scenarios 4 and 6 run once."
    )
}

/// One scenario's section as REPORT.md has it, for subcommands that print one.
pub fn scenario_markdown(scenario: &Scenario) -> String {
    let mut out = String::new();
    render_scenario(&mut out, scenario);
    out
}

fn render_scenario(out: &mut String, scenario: &Scenario) {
    let _ = writeln!(out, "## {}\n\n{}\n", scenario.title, scenario.shape);
    let with_latency = scenario.rows.iter().any(|row| row.latency_ms.is_some());
    let with_note = scenario.rows.iter().any(|row| !row.note.is_empty());
    let ratio_header = scenario.ratio_header.as_deref().unwrap_or("vs ceiling");
    let mut header =
        format!("| run | messages | msg/s | MB/s | {ratio_header} | CPU-s/GB | peak RSS MB |");
    if with_latency {
        header.push_str(" p50 ms | p99 ms | p99.9 ms | max ms |");
    }
    if with_note {
        header.push_str(" note |");
    }
    let columns = header.matches('|').count() - 1;
    let _ = writeln!(out, "{header}\n|{}", "---|".repeat(columns));
    for row in &scenario.rows {
        let _ = write!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.run,
            row.messages.map_or("–".into(), |count| count.to_string()),
            number(row.messages_per_s, 0),
            number(row.mb_per_s, 1),
            row.ratio_to_ceiling
                .map_or("–".into(), |ratio| format!("{:.0}%", ratio * 100.0)),
            number(row.cpu_s_per_gb, 2),
            number(row.peak_rss_mb, 0),
        );
        if with_latency {
            match row.latency_ms {
                Some(latency) => {
                    for value in latency {
                        let _ = write!(out, " {value:.2} |");
                    }
                }
                None => out.push_str(" – | – | – | – |"),
            }
        }
        if with_note {
            let _ = write!(out, " {} |", row.note);
        }
        out.push('\n');
    }
    if !scenario.targets.is_empty() {
        let _ = writeln!(out, "\n| target | measured | met |\n|---|---|---|");
        for target in &scenario.targets {
            let verdict = if target.met { "yes" } else { "**no**" };
            let _ = writeln!(out, "| {} | {} | {verdict} |", target.what, target.measured);
        }
    }
    for note in &scenario.notes {
        let _ = writeln!(out, "\n{note}");
    }
    out.push('\n');
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or("–".into(), |value| format!("{value:.decimals$}"))
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `git rev-parse HEAD` in the workspace; read-only.
fn git_head() -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::process::Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map_or_else(|| "unknown".into(), |head| head.trim().to_string())
}

/// Now as `YYYY-MM-DD HH:MM`, from the Unix clock (civil-from-days, Howard Hinnant's).
fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titled(title: &str) -> Scenario {
        Scenario {
            title: title.into(),
            ..Scenario::default()
        }
    }

    fn titles(scenarios: &[Scenario]) -> Vec<&str> {
        scenarios
            .iter()
            .map(|scenario| scenario.title.as_str())
            .collect()
    }

    #[test]
    fn a_scenario_run_last_is_reported_in_its_place() {
        // Scenario 6 runs after 7 and 8 (it needs a broker of its own) but is listed
        // between 5 and 7; sub-scenarios (3a, 3b) count as their number.
        let mut scenarios = vec![
            titled("3a. Consume"),
            titled("3b. Consume"),
            titled("5. Produce"),
            titled("7. Transactional produce"),
            titled("8. Exactly-once processing"),
        ];
        insert_in_order(&mut scenarios, titled("6. Start-up"));
        insert_in_order(&mut scenarios, titled("4. Latency"));
        insert_in_order(&mut scenarios, titled("no number"));
        assert_eq!(
            titles(&scenarios),
            [
                "3a. Consume",
                "3b. Consume",
                "4. Latency",
                "5. Produce",
                "6. Start-up",
                "7. Transactional produce",
                "8. Exactly-once processing",
                "no number",
            ]
        );
    }
}
