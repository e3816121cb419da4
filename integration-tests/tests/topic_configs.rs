//! Topic configs through the Rust `rdkafka` crate's AdminClient (librdkafka) against a real
//! riffle process: CreateTopics with Kafka configs Riffle used to refuse (compression.type
//! among them), DescribeConfigs reporting values, defaults and sources, and AlterConfigs
//! (key 33, what `AdminClient::alter_configs` sends) replacing the whole set.

use std::collections::BTreeMap;

use rdkafka::admin::{AlterConfig, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};

use riffle_integration_tests::Broker;
use riffle_integration_tests::clients::{admin_client, admin_options};

const TOPIC: &str = "configured";

/// Each config's value and source as DescribeConfigs reports them for the topic.
async fn described(bootstrap: &str) -> BTreeMap<String, (Option<String>, ConfigSource)> {
    described_resource(bootstrap, ResourceSpecifier::Topic(TOPIC)).await
}

/// Each config's value and source as DescribeConfigs reports them for `resource`.
async fn described_resource(
    bootstrap: &str,
    resource: ResourceSpecifier<'_>,
) -> BTreeMap<String, (Option<String>, ConfigSource)> {
    let results = admin_client(bootstrap)
        .describe_configs([&resource], &admin_options())
        .await
        .expect("DescribeConfigs request");
    let resource = results
        .into_iter()
        .next()
        .expect("one resource")
        .expect("DescribeConfigs succeeds");
    resource
        .entries
        .into_iter()
        .map(|entry| (entry.name, (entry.value, entry.source)))
        .collect()
}

/// A value set on the topic, as DescribeConfigs reports it.
fn set_on_topic(value: &str) -> (Option<String>, ConfigSource) {
    (Some(value.to_string()), ConfigSource::DynamicTopic)
}

/// A default value, as DescribeConfigs reports it.
fn default_of(value: &str) -> (Option<String>, ConfigSource) {
    (Some(value.to_string()), ConfigSource::Default)
}

#[tokio::test]
async fn create_describe_and_alter_kafka_topic_configs() {
    // Proves that CreateTopics accepts compression.type and other Kafka topic configs,
    // DescribeConfigs lists them as DYNAMIC_TOPIC_CONFIG with Kafka's defaults for the rest,
    // AlterConfigs replaces the whole set (unnamed configs return to their defaults), and an
    // unknown config or a bad value changes nothing.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let admin = admin_client(&bootstrap);
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
        .set("compression.type", "zstd")
        .set("cleanup.policy", "compact")
        .set("min.cleanable.dirty.ratio", "0.2")
        .set("max.compaction.lag.ms", "60000")
        .set("segment.index.bytes", "65536")
        .set("preallocate", "true");
    let created = admin
        .create_topics([&topic], &admin_options())
        .await
        .expect("CreateTopics request");
    assert_eq!(created, [Ok(TOPIC.to_string())]);

    let configs = described(&bootstrap).await;
    let expected = [
        ("compression.type", set_on_topic("zstd")),
        ("cleanup.policy", set_on_topic("compact")),
        ("min.cleanable.dirty.ratio", set_on_topic("0.2")),
        ("max.compaction.lag.ms", set_on_topic("60000")),
        ("segment.index.bytes", set_on_topic("65536")),
        ("preallocate", set_on_topic("true")),
        ("compression.zstd.level", default_of("3")),
        ("min.compaction.lag.ms", default_of("0")),
        ("index.interval.bytes", default_of("4096")),
        ("min.insync.replicas", default_of("1")),
        (
            "message.timestamp.after.max.ms",
            default_of("9223372036854775807"),
        ),
    ];
    for (name, value) in &expected {
        assert_eq!(configs.get(*name), Some(value), "{name} after CreateTopics");
    }
    assert!(configs.len() >= 35, "every Kafka topic config is listed");

    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(TOPIC));
    alter = alter
        .set("compression.type", "lz4")
        .set("retention.ms", "3600000");
    let altered = admin
        .alter_configs([&alter], &admin_options())
        .await
        .expect("AlterConfigs request");
    assert_eq!(altered.len(), 1);
    assert!(altered[0].is_ok(), "AlterConfigs answered {altered:?}");

    let configs = described(&bootstrap).await;
    let expected = [
        ("compression.type", set_on_topic("lz4")),
        ("retention.ms", set_on_topic("3600000")),
        ("cleanup.policy", default_of("delete")),
        ("min.cleanable.dirty.ratio", default_of("0.5")),
        ("max.compaction.lag.ms", default_of("9223372036854775807")),
        ("preallocate", default_of("false")),
    ];
    for (name, value) in &expected {
        assert_eq!(configs.get(*name), Some(value), "{name} after AlterConfigs");
    }

    // The rdkafka crate reports every resource of an AlterConfigs answer as a success, so
    // the refusal shows as an unchanged topic: either set, accepted, would have replaced
    // compression.type.
    for (name, value) in [("no.such.config", "1"), ("compression.type", "brotli")] {
        let bad = AlterConfig::new(ResourceSpecifier::Topic(TOPIC)).set(name, value);
        admin
            .alter_configs([&bad], &admin_options())
            .await
            .expect("AlterConfigs request");
    }
    let configs = described(&bootstrap).await;
    assert_eq!(
        configs.get("compression.type"),
        Some(&set_on_topic("lz4")),
        "a refused AlterConfigs changes nothing"
    );
}

/// A broker config's value and source, as DescribeConfigs reports it for broker 1.
async fn broker_config(bootstrap: &str, name: &str) -> Option<(Option<String>, ConfigSource)> {
    described_resource(bootstrap, ResourceSpecifier::Broker(1))
        .await
        .remove(name)
}

#[tokio::test]
async fn dynamic_broker_configs_change_topic_defaults_while_running() {
    // Proves that AlterConfigs on a BROKER resource (librdkafka 0081 sends one) sets
    // dynamic broker configs: topics without their own value follow at once (a lowered
    // message.max.bytes refuses a large record on the next produce), DescribeConfigs shows
    // DYNAMIC_BROKER_CONFIG on the broker and the topic, a setting Kafka cannot change
    // while running is refused, and the values survive a restart.
    let mut broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let admin = admin_client(&bootstrap);
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1));
    let created = admin
        .create_topics([&topic], &admin_options())
        .await
        .expect("CreateTopics request");
    assert_eq!(created, [Ok(TOPIC.to_string())]);

    let alter = AlterConfig::new(ResourceSpecifier::Broker(1))
        .set("log.retention.ms", "3600000")
        .set("message.max.bytes", "2000")
        .set("sasl.kerberos.min.time.before.relogin", "58000");
    let altered = admin
        .alter_configs([&alter], &admin_options())
        .await
        .expect("AlterConfigs request");
    assert!(altered[0].is_ok(), "AlterConfigs answered {altered:?}");
    let dynamic = |value: &str| (Some(value.to_string()), ConfigSource::DynamicBroker);
    let configs = described(&bootstrap).await;
    assert_eq!(configs.get("retention.ms"), Some(&dynamic("3600000")));
    assert_eq!(configs.get("max.message.bytes"), Some(&dynamic("2000")));
    assert_eq!(
        broker_config(&bootstrap, "log.retention.ms").await,
        Some(dynamic("3600000"))
    );

    let producer = riffle_integration_tests::clients::future_producer(&bootstrap, &[]);
    let large = "x".repeat(4000);
    let record = rdkafka::producer::FutureRecord::<(), str>::to(TOPIC).payload(&large);
    let sent = producer
        .send(record, std::time::Duration::from_secs(10))
        .await;
    let error = sent.expect_err("a record above the dynamic message.max.bytes is refused");
    assert_eq!(
        error.0.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
        "{error:?}"
    );

    // broker.id is static: the whole request is refused and nothing changes (the rdkafka
    // crate reports each resource as a success, so the proof is the unchanged value).
    let refused = AlterConfig::new(ResourceSpecifier::Broker(1))
        .set("broker.id", "2")
        .set("log.retention.ms", "1000");
    admin
        .alter_configs([&refused], &admin_options())
        .await
        .expect("AlterConfigs request");
    assert_eq!(
        broker_config(&bootstrap, "log.retention.ms").await,
        Some(dynamic("3600000"))
    );

    drop(producer);
    broker.stop();
    broker.restart();
    let bootstrap = broker.bootstrap();
    let configs = described(&bootstrap).await;
    assert_eq!(configs.get("retention.ms"), Some(&dynamic("3600000")));
    assert_eq!(
        broker_config(&bootstrap, "sasl.kerberos.min.time.before.relogin").await,
        Some(dynamic("58000"))
    );
}
