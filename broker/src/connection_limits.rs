//! How many connections may be open at once, in all (`--max-connections`) and from one IP
//! address (`--max-connections-per-ip`, with per-host exceptions in
//! `--max-connections-per-ip-overrides`), and what becomes of one past a limit: the accept
//! loop closes it at once, it is counted, and a bounded number of log lines say so.
//!
//! Connections are counted after `accept`, not before: waiting for a free slot before
//! accepting would leave a flood in the kernel's backlog, where new clients queue behind
//! it and nobody is told no.
//!
//! The limits can change while the broker runs ([`ConnectionLimits::reconfigure`]), as
//! Kafka's dynamic `max.connections*` configs do: the next connection is judged by the new
//! ones, and connections already open stay open even past a lowered limit.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riffle_storage::MutexRecover;

use crate::config::BrokerConfig;

/// At most one "refused" log line per this interval; the others are counted in it.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The limits and the connections they count, shared by every listener's accept loop.
#[derive(Debug)]
pub struct ConnectionLimits {
    /// The limits and the counts together, so a change of limits and an admission never
    /// interleave. Held for a few map operations, never across an await.
    state: Mutex<LimitsState>,
}

#[derive(Debug)]
struct LimitsState {
    settings: ConnectionLimitSettings,
    open_connections: usize,
    /// Open connections per address; an address leaves the map with its last connection.
    open_per_ip: HashMap<IpAddr, usize>,
    refused_total: u64,
    /// Refusals since start, by the limit that refused them: read by the metrics scrape.
    refused_by_reason: RefusedCounts,
    refusal_log: RateLimitedLog,
}

/// Connections refused since start, by the limit that refused them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusedCounts {
    /// At `--max-connections`.
    pub max_connections: u64,
    /// At `--max-connections-per-ip`.
    pub max_connections_per_ip: u64,
    /// At an address's `--max-connections-per-ip-overrides` entry.
    pub max_connections_per_ip_override: u64,
}

impl RefusedCounts {
    fn count(&mut self, refusal: &Refusal) {
        let counter = match refusal {
            Refusal::TooManyConnections { .. } => &mut self.max_connections,
            Refusal::TooManyFromAddress {
                limit_source: PerIpLimitSource::Default,
                ..
            } => &mut self.max_connections_per_ip,
            Refusal::TooManyFromAddress {
                limit_source: PerIpLimitSource::Override,
                ..
            } => &mut self.max_connections_per_ip_override,
        };
        *counter += 1;
    }
}

/// The limits, as the flags set them at start-up or a dynamic config changes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimitSettings {
    /// Most connections open at once (`--max-connections`); 0 counts as 1.
    pub max_connections: usize,
    /// Most connections open at once from one address (`--max-connections-per-ip`), for
    /// an address without an override; `None`: no limit.
    pub max_connections_per_ip: Option<usize>,
    /// Limits for particular addresses, replacing `max_connections_per_ip` for them.
    pub max_connections_per_ip_overrides: PerIpOverrides,
}

impl ConnectionLimitSettings {
    /// The limits the flags set.
    pub fn from_config(config: &BrokerConfig) -> ConnectionLimitSettings {
        ConnectionLimitSettings {
            max_connections: config.max_connections,
            max_connections_per_ip: config
                .max_connections_per_ip
                .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX)),
            max_connections_per_ip_overrides: config.max_connections_per_ip_overrides.clone(),
        }
    }

    /// The limit for connections from `address`, if any, and where it comes from.
    fn per_ip_limit(&self, address: IpAddr) -> Option<(usize, PerIpLimitSource)> {
        match self.max_connections_per_ip_overrides.0.get(&address) {
            Some(&limit) => Some((limit, PerIpLimitSource::Override)),
            None => self
                .max_connections_per_ip
                .map(|limit| (limit, PerIpLimitSource::Default)),
        }
    }
}

/// Per-address connection limits, Kafka's `max.connections.per.ip.overrides`: `HOST:COUNT`
/// entries separated by commas, where HOST is an IPv4 or IPv6 address (bracketed or not:
/// the count follows the last colon) or a hostname. A hostname is resolved when parsed
/// and its limit applies to every address it resolves to; COUNT 0 refuses the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerIpOverrides(pub BTreeMap<IpAddr, usize>);

/// Why `--max-connections-per-ip-overrides` cannot be used; the message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerIpOverridesError {
    /// An entry is not `HOST:COUNT`.
    #[error("entry '{0}' is not HOST:COUNT")]
    Syntax(String),
    /// A count is not a whole number from 0 to 2147483647.
    #[error("entry '{0}' has a count that is not a whole number from 0 to 2147483647")]
    Count(String),
    /// A hostname did not resolve.
    #[error("entry '{entry}': cannot resolve {host}: {reason}")]
    Resolve {
        /// The entry as given.
        entry: String,
        /// Its host.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// Two entries give one address different limits.
    #[error("entries '{first}' and '{second}' give {address} different limits")]
    Conflict {
        /// The address both name.
        address: IpAddr,
        /// The earlier entry.
        first: String,
        /// The later entry.
        second: String,
    },
}

impl PerIpOverrides {
    /// Reads `host1:n1,host2:n2` (blanks around entries ignored, an empty text is no
    /// override), resolving hostnames.
    ///
    /// Resolving a hostname blocks on the system resolver: async code calls this from
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// The first entry that is not `HOST:COUNT`, whose count is out of range, whose host
    /// does not resolve, or that gives an address another limit than an earlier entry.
    pub fn parse(text: &str) -> Result<PerIpOverrides, PerIpOverridesError> {
        let mut limits: BTreeMap<IpAddr, (usize, String)> = BTreeMap::new();
        let entries = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty());
        for entry in entries {
            let (host, limit) = parse_entry(entry)?;
            for address in resolve(entry, host)? {
                match limits.get(&address) {
                    Some((earlier, first)) if *earlier != limit => {
                        return Err(PerIpOverridesError::Conflict {
                            address,
                            first: first.clone(),
                            second: entry.to_string(),
                        });
                    }
                    Some(_) => {}
                    None => {
                        limits.insert(address, (limit, entry.to_string()));
                    }
                }
            }
        }
        let limits = limits
            .into_iter()
            .map(|(address, (limit, _))| (address, limit))
            .collect();
        Ok(PerIpOverrides(limits))
    }
}

/// `HOST:COUNT`, the count after the last colon, brackets around an IPv6 host removed.
fn parse_entry(entry: &str) -> Result<(&str, usize), PerIpOverridesError> {
    let syntax = || PerIpOverridesError::Syntax(entry.to_string());
    let (host, count) = entry.rsplit_once(':').ok_or_else(syntax)?;
    let host = host.trim();
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(syntax)?,
        None => host,
    };
    if host.is_empty() {
        return Err(syntax());
    }
    // Kafka's counts are ints: at most i32::MAX.
    let count = count
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(|count| usize::try_from(count).ok())
        .ok_or_else(|| PerIpOverridesError::Count(entry.to_string()))?;
    Ok((host, count))
}

/// The addresses `host` names: itself if it is one, else what the resolver gives.
fn resolve(entry: &str, host: &str) -> Result<Vec<IpAddr>, PerIpOverridesError> {
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok(vec![address.to_canonical()]);
    }
    let failure = |reason: String| PerIpOverridesError::Resolve {
        entry: entry.to_string(),
        host: host.to_string(),
        reason,
    };
    let resolved = (host, 0)
        .to_socket_addrs()
        .map_err(|error| failure(error.to_string()))?;
    let mut addresses: Vec<IpAddr> = resolved.map(|socket| socket.ip().to_canonical()).collect();
    addresses.sort();
    addresses.dedup();
    if addresses.is_empty() {
        return Err(failure("no address".to_string()));
    }
    Ok(addresses)
}

/// Which setting limits an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerIpLimitSource {
    /// `--max-connections-per-ip`.
    Default,
    /// The address's `--max-connections-per-ip-overrides` entry.
    Override,
}

impl fmt::Display for PerIpLimitSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            PerIpLimitSource::Default => "--max-connections-per-ip",
            PerIpLimitSource::Override => "its --max-connections-per-ip-overrides entry",
        })
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `--max-connections` are open.
    #[error("{max_connections} connections are open (--max-connections)")]
    TooManyConnections {
        /// The limit.
        max_connections: usize,
    },
    /// As many connections are open from this address as its limit allows.
    #[error("{max_connections_per_ip} connections are open from this address ({limit_source})")]
    TooManyFromAddress {
        /// The limit.
        max_connections_per_ip: usize,
        /// The setting it comes from.
        limit_source: PerIpLimitSource,
    },
}

/// What the accept loop logs about a refused connection, when it may log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalReport {
    pub refusal: Refusal,
    /// Refused since the broker started, this one included.
    pub refused_total: u64,
    /// Refusals not logged since the last line.
    pub unlogged_since_last_line: u64,
}

/// One open connection's place in the counts, given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    address: IpAddr,
}

impl ConnectionLimits {
    /// Counts nothing yet, and judges connections by `settings`.
    pub fn new(settings: ConnectionLimitSettings) -> Self {
        ConnectionLimits {
            state: Mutex::new(LimitsState {
                settings: normalized(settings),
                open_connections: 0,
                open_per_ip: HashMap::new(),
                refused_total: 0,
                refused_by_reason: RefusedCounts::default(),
                refusal_log: RateLimitedLog::new(REFUSAL_LOG_INTERVAL),
            }),
        }
    }

    /// Replaces the limits while connections are open, as a dynamic broker config
    /// (`max.connections`, `max.connections.per.ip`, `max.connections.per.ip.overrides`)
    /// does in Kafka. Connections already open stay open, even past a lowered limit; new
    /// ones are refused until enough of them close.
    pub fn reconfigure(&self, settings: ConnectionLimitSettings) {
        self.lock().settings = normalized(settings);
    }

    /// The limits in force.
    pub fn settings(&self) -> ConnectionLimitSettings {
        self.lock().settings.clone()
    }

    /// Counts a connection just accepted from `address`, or refuses it.
    ///
    /// # Errors
    /// A limit is reached; the report is `Some` when a log line is due (see
    /// [`REFUSAL_LOG_INTERVAL`]).
    pub fn admit(
        self: &Arc<Self>,
        address: IpAddr,
        now: Instant,
    ) -> Result<ConnectionSlot, Option<RefusalReport>> {
        // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d; count it as a.b.c.d.
        let address = address.to_canonical();
        let mut state = self.lock();
        let from_address = state.open_per_ip.get(&address).copied().unwrap_or(0);
        let refusal = if state.open_connections >= state.settings.max_connections {
            Some(Refusal::TooManyConnections {
                max_connections: state.settings.max_connections,
            })
        } else {
            state
                .settings
                .per_ip_limit(address)
                .filter(|&(limit, _)| from_address >= limit)
                .map(|(limit, limit_source)| Refusal::TooManyFromAddress {
                    max_connections_per_ip: limit,
                    limit_source,
                })
        };
        if let Some(refusal) = refusal {
            state.refused_total += 1;
            state.refused_by_reason.count(&refusal);
            let refused_total = state.refused_total;
            let report = state
                .refusal_log
                .should_log(now)
                .map(|unlogged_since_last_line| RefusalReport {
                    refusal,
                    refused_total,
                    unlogged_since_last_line,
                });
            return Err(report);
        }
        state.open_connections += 1;
        *state.open_per_ip.entry(address).or_insert(0) += 1;
        Ok(ConnectionSlot {
            limits: self.clone(),
            address,
        })
    }

    /// Connections refused since the broker started.
    pub fn refused_total(&self) -> u64 {
        self.lock().refused_total
    }

    /// Connections refused since the broker started, by the limit that refused them.
    pub fn refused_by_reason(&self) -> RefusedCounts {
        self.lock().refused_by_reason
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.lock().open_connections
    }

    fn release(&self, address: IpAddr) {
        let mut state = self.lock();
        state.open_connections = state.open_connections.saturating_sub(1);
        if let Some(open) = state.open_per_ip.get_mut(&address) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                state.open_per_ip.remove(&address);
            }
        }
    }

    /// The counts stay consistent even if a holder panicked: each change is one step.
    fn lock(&self) -> std::sync::MutexGuard<'_, LimitsState> {
        self.state.lock_or_recover()
    }
}

/// `settings` with the total limit at least 1: with none, not even an operator could
/// connect to raise it again.
fn normalized(mut settings: ConnectionLimitSettings) -> ConnectionLimitSettings {
    settings.max_connections = settings.max_connections.max(1);
    settings
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limits.release(self.address);
    }
}

/// Lets an event be logged at most once per interval, counting the ones in between.
#[derive(Debug)]
struct RateLimitedLog {
    interval: Duration,
    last_line: Option<Instant>,
    unlogged: u64,
}

impl RateLimitedLog {
    fn new(interval: Duration) -> Self {
        RateLimitedLog {
            interval,
            last_line: None,
            unlogged: 0,
        }
    }

    /// Records an event; `Some(events not logged since the last line)` if this one may be.
    fn should_log(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            self.unlogged += 1;
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const FIRST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const SECOND: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const THIRD: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));

    /// Limits of `max_connections` in all and `max_connections_per_ip` per address, with
    /// the overrides `overrides` (in the flag's syntax).
    fn settings(
        max_connections: usize,
        max_connections_per_ip: Option<usize>,
        overrides: &str,
    ) -> ConnectionLimitSettings {
        ConnectionLimitSettings {
            max_connections,
            max_connections_per_ip,
            max_connections_per_ip_overrides: PerIpOverrides::parse(overrides)
                .expect("valid overrides"),
        }
    }

    fn limits(settings: ConnectionLimitSettings) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits::new(settings))
    }

    /// The refusal of a connection from `address`, which must be refused. Each call moves
    /// `clock` on by the log interval, so a report is due.
    fn refusal(limits: &Arc<ConnectionLimits>, address: IpAddr, clock: &mut Instant) -> Refusal {
        *clock += REFUSAL_LOG_INTERVAL;
        limits
            .admit(address, *clock)
            .expect_err("refused")
            .expect("a report")
            .refusal
    }

    #[test]
    fn past_max_connections_is_refused_until_a_slot_is_dropped() {
        let limits = limits(settings(2, None, ""));
        let now = Instant::now();
        let first = limits.admit(FIRST, now).expect("first");
        let _second = limits.admit(SECOND, now).expect("second");
        let refused = limits.admit(FIRST, now).expect_err("third");
        assert_eq!(
            refused.map(|report| report.refusal),
            Some(Refusal::TooManyConnections { max_connections: 2 })
        );
        assert_eq!(limits.refused_total(), 1);
        drop(first);
        assert_eq!(limits.open_connections(), 1);
        limits.admit(FIRST, now).expect("a slot is free again");
    }

    #[test]
    fn one_address_is_capped_while_others_still_connect() {
        let limits = limits(settings(10, Some(2), ""));
        let now = Instant::now();
        let slots: Vec<_> = (0..2)
            .map(|_| limits.admit(FIRST, now).expect("under the cap"))
            .collect();
        let refused = limits.admit(FIRST, now).expect_err("past the cap");
        assert_eq!(
            refused.map(|report| report.refusal),
            Some(Refusal::TooManyFromAddress {
                max_connections_per_ip: 2,
                limit_source: PerIpLimitSource::Default,
            })
        );
        limits.admit(SECOND, now).expect("another address");
        drop(slots);
        limits
            .admit(FIRST, now)
            .expect("the address's slots are free again");
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_interval_and_counted_between() {
        // Proves a flood of refusals gives one line per interval, each saying how many
        // went unlogged, while the total counts every one.
        let limits = limits(settings(1, None, ""));
        let start = Instant::now();
        let _held = limits.admit(FIRST, start).expect("first");
        let first_line = limits.admit(FIRST, start).expect_err("refused");
        assert_eq!(
            first_line.map(|report| report.unlogged_since_last_line),
            Some(0)
        );
        for _ in 0..5 {
            let later = start + REFUSAL_LOG_INTERVAL / 2;
            assert_eq!(limits.admit(FIRST, later).expect_err("refused"), None);
        }
        let next_line = limits
            .admit(FIRST, start + REFUSAL_LOG_INTERVAL)
            .expect_err("refused")
            .expect("a line is due");
        assert_eq!(next_line.unlogged_since_last_line, 5);
        assert_eq!(next_line.refused_total, 7);
    }

    #[test]
    fn an_override_replaces_the_per_ip_limit_for_its_address_only() {
        // Proves the overrides: 10.0.0.1 may hold 3 (above the default of 1), 10.0.0.2 none
        // at all (count 0), and an address without an entry keeps the default; each refusal
        // names the setting that made it.
        let limits = limits(settings(100, Some(1), "10.0.0.1:3, 10.0.0.2:0"));
        let now = Instant::now();
        let mut clock = now;
        let _held: Vec<_> = (0..3)
            .map(|_| limits.admit(FIRST, now).expect("within the override"))
            .collect();
        let override_refusal = Refusal::TooManyFromAddress {
            max_connections_per_ip: 3,
            limit_source: PerIpLimitSource::Override,
        };
        assert_eq!(refusal(&limits, FIRST, &mut clock), override_refusal);
        assert!(
            override_refusal
                .to_string()
                .contains("its --max-connections-per-ip-overrides entry")
        );
        assert_eq!(
            refusal(&limits, SECOND, &mut clock),
            Refusal::TooManyFromAddress {
                max_connections_per_ip: 0,
                limit_source: PerIpLimitSource::Override,
            }
        );
        let _third = limits.admit(THIRD, now).expect("the default");
        assert_eq!(
            refusal(&limits, THIRD, &mut clock),
            Refusal::TooManyFromAddress {
                max_connections_per_ip: 1,
                limit_source: PerIpLimitSource::Default,
            }
        );
    }

    #[test]
    fn an_ipv4_client_of_a_dual_stack_socket_counts_as_its_ipv4_address() {
        // Proves ::ffff:10.0.0.1 meets the override of 10.0.0.1 and shares its count.
        let limits = limits(settings(100, None, "10.0.0.1:1"));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        let mut clock = Instant::now();
        let _slot = limits.admit(mapped, clock).expect("first");
        assert_eq!(
            refusal(&limits, FIRST, &mut clock),
            Refusal::TooManyFromAddress {
                max_connections_per_ip: 1,
                limit_source: PerIpLimitSource::Override,
            }
        );
    }

    #[test]
    fn reconfigure_judges_new_connections_and_keeps_open_ones() {
        // Proves a runtime change as Kafka applies one: lowering the limits below what is
        // open closes nothing but refuses new connections until enough close; raising them
        // and adding an override admit at once; settings() reports what is in force.
        let limits = limits(settings(10, Some(5), ""));
        let now = Instant::now();
        let mut clock = now;
        let mut from_first: Vec<_> = (0..4)
            .map(|_| limits.admit(FIRST, now).expect("within the limits"))
            .collect();
        let lowered = settings(3, Some(2), "10.0.0.2:0");
        limits.reconfigure(lowered.clone());
        assert_eq!(limits.settings(), lowered);
        assert_eq!(limits.open_connections(), 4, "open connections are kept");
        assert_eq!(
            refusal(&limits, SECOND, &mut clock),
            Refusal::TooManyConnections { max_connections: 3 }
        );
        from_first.truncate(2);
        assert_eq!(
            refusal(&limits, FIRST, &mut clock),
            Refusal::TooManyFromAddress {
                max_connections_per_ip: 2,
                limit_source: PerIpLimitSource::Default,
            }
        );
        assert_eq!(
            refusal(&limits, SECOND, &mut clock),
            Refusal::TooManyFromAddress {
                max_connections_per_ip: 0,
                limit_source: PerIpLimitSource::Override,
            }
        );
        let _third = limits.admit(THIRD, now).expect("one slot of 3 left");

        limits.reconfigure(settings(0, None, "10.0.0.1:3"));
        assert_eq!(limits.settings().max_connections, 1, "0 counts as 1");
        limits.reconfigure(settings(10, None, "10.0.0.1:3"));
        let _another = limits
            .admit(FIRST, now)
            .expect("the override allows a third");
        let _second = limits.admit(SECOND, now).expect("its override is gone");
    }

    #[test]
    fn overrides_parse_in_kafkas_syntax() {
        // Proves IPv4, IPv6 bare or bracketed (the count after the last colon), blanks,
        // a hostname resolved to every address it has, and an entry repeated with the same
        // count; an empty text is no override.
        let parsed = PerIpOverrides::parse(" 10.0.0.1:3 ,::1:4,[fe80::1]:0,localhost:4,10.0.0.1:3")
            .expect("valid");
        let expected_fixed = [
            (FIRST, 3),
            ("::1".parse().expect("an address"), 4),
            ("fe80::1".parse().expect("an address"), 0),
            (IpAddr::V4(Ipv4Addr::LOCALHOST), 4),
        ];
        for (address, limit) in expected_fixed {
            assert_eq!(parsed.0.get(&address), Some(&limit), "{address}");
        }
        assert_eq!(PerIpOverrides::parse(""), Ok(PerIpOverrides::default()));
    }

    #[test]
    fn bad_overrides_are_named_errors() {
        // Proves each bad entry is refused with a message naming it.
        let cases = [
            ("10.0.0.1", "entry '10.0.0.1' is not HOST:COUNT"),
            (":3", "entry ':3' is not HOST:COUNT"),
            ("[::1:3", "entry '[::1:3' is not HOST:COUNT"),
            ("10.0.0.1:-1", "entry '10.0.0.1:-1' has a count"),
            ("10.0.0.1:x", "entry '10.0.0.1:x' has a count"),
            (
                "10.0.0.1:2147483648",
                "has a count that is not a whole number",
            ),
            (
                "no-such-host.invalid:3",
                "entry 'no-such-host.invalid:3': cannot resolve",
            ),
            (
                "10.0.0.1:3,10.0.0.1:4",
                "entries '10.0.0.1:3' and '10.0.0.1:4' give 10.0.0.1 different limits",
            ),
        ];
        for (text, expected) in cases {
            let error = PerIpOverrides::parse(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
