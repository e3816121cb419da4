//! The runner's wall-clock hook for the Processor API: punctuations fire from the
//! processing loop on the system clock, with no input arriving.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::testing::{FakeBackend, FakeCluster};
use super::{Runner, RuntimeConfig};
use crate::lock_policy::MutexRecover;
use crate::{
    I64Serde, Processor, ProcessorContext, PunctuationType, Record, SerdeError, StreamsBuilder,
    StringSerde, Topology,
};

/// Forwards ("tick", wall-clock time) every millisecond of wall-clock time.
struct Ticker;

impl Processor<String, String, String, i64> for Ticker {
    fn init(&mut self, context: &mut ProcessorContext<'_, String, i64>) {
        context.schedule(
            Duration::from_millis(1),
            PunctuationType::WallClockTime,
            |context, now_ms| {
                context.forward("tick".into(), now_ms);
                Ok(())
            },
        );
    }

    fn process(
        &mut self,
        _context: &mut ProcessorContext<'_, String, i64>,
        _record: Record<'_, String, String>,
    ) -> Result<(), SerdeError> {
        Ok(())
    }
}

fn ticking_topology() -> Topology {
    let builder = StreamsBuilder::new("ticks-app");
    builder
        .stream("in", StringSerde, StringSerde)
        .process(|| Ticker, &[])
        .to("ticks", StringSerde, I64Serde);
    builder.build().expect("a valid topology")
}

/// An idle task's wall-clock punctuations run from the runner's loop: ticks reach the
/// output topic without any input, stamped with the system clock, in increasing order.
#[tokio::test]
async fn wall_clock_punctuations_fire_from_the_processing_loop() {
    let mut cluster = FakeCluster::default();
    cluster.create("in", 1);
    let cluster = Arc::new(Mutex::new(cluster));
    let config = RuntimeConfig {
        commit_interval: Duration::ZERO,
        poll_timeout: Duration::from_millis(1),
        ..RuntimeConfig::default()
    };
    let started_ms = crate::processor_api::system_time_ms();
    let runner = Runner::new(
        ticking_topology(),
        FakeBackend::new(cluster.clone()),
        config,
    );
    let watched = cluster.clone();
    let ticked = async move {
        while watched.lock_or_recover().records("ticks").len() < 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let ran = tokio::time::timeout(Duration::from_secs(30), runner.run_until(ticked)).await;
    ran.expect("ticks within 30 s").expect("the runner ran");
    let times: Vec<i64> = cluster
        .lock_or_recover()
        .records("ticks")
        .iter()
        .map(|record| {
            let bytes = record.value.as_deref().expect("a tick has a value");
            crate::Serde::deserialize(&I64Serde, "ticks", bytes).expect("an i64")
        })
        .collect();
    assert!(times.iter().all(|time| *time > started_ms), "{times:?}");
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
}
