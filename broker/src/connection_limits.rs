//! How many connections may be open at once, in all (`--max-connections`) and from one IP
//! address (`--max-connections-per-ip`), and what becomes of one past a limit: the accept
//! loop closes it at once, it is counted, and a bounded number of log lines say so.
//!
//! Connections are counted after `accept`, not before: waiting for a free slot before
//! accepting would leave a flood in the kernel's backlog, where new clients queue behind
//! it and nobody is told no.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riffle_storage::MutexRecover;

/// At most one "refused" log line per this interval; the others are counted in it.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The limits and the connections they count, shared by every listener's accept loop.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_connections: usize,
    /// `None`: no limit per address.
    max_connections_per_ip: Option<usize>,
    state: Mutex<LimitsState>,
}

#[derive(Debug)]
struct LimitsState {
    open_connections: usize,
    /// Open connections per address; an address leaves the map with its last connection.
    open_per_ip: HashMap<IpAddr, usize>,
    refused_total: u64,
    refusal_log: RateLimitedLog,
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
    /// `--max-connections-per-ip` are open from this address.
    #[error(
        "{max_connections_per_ip} connections are open from this address (--max-connections-per-ip)"
    )]
    TooManyFromAddress {
        /// The limit.
        max_connections_per_ip: usize,
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
    pub fn new(max_connections: usize, max_connections_per_ip: Option<usize>) -> Self {
        ConnectionLimits {
            max_connections: max_connections.max(1),
            max_connections_per_ip: max_connections_per_ip.map(|limit| limit.max(1)),
            state: Mutex::new(LimitsState {
                open_connections: 0,
                open_per_ip: HashMap::new(),
                refused_total: 0,
                refusal_log: RateLimitedLog::new(REFUSAL_LOG_INTERVAL),
            }),
        }
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
        let mut state = self.lock();
        let from_address = state.open_per_ip.get(&address).copied().unwrap_or(0);
        let refusal = if state.open_connections >= self.max_connections {
            Some(Refusal::TooManyConnections {
                max_connections: self.max_connections,
            })
        } else {
            self.max_connections_per_ip
                .filter(|&limit| from_address >= limit)
                .map(|limit| Refusal::TooManyFromAddress {
                    max_connections_per_ip: limit,
                })
        };
        if let Some(refusal) = refusal {
            state.refused_total += 1;
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

    #[test]
    fn past_max_connections_is_refused_until_a_slot_is_dropped() {
        let limits = Arc::new(ConnectionLimits::new(2, None));
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
        let limits = Arc::new(ConnectionLimits::new(10, Some(2)));
        let now = Instant::now();
        let slots: Vec<_> = (0..2)
            .map(|_| limits.admit(FIRST, now).expect("under the cap"))
            .collect();
        let refused = limits.admit(FIRST, now).expect_err("past the cap");
        assert_eq!(
            refused.map(|report| report.refusal),
            Some(Refusal::TooManyFromAddress {
                max_connections_per_ip: 2
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
        let limits = Arc::new(ConnectionLimits::new(1, None));
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
}
