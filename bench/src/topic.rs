//! Topic creation and the client settings every scenario shares.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::RDKafkaErrorCode;

/// `--bootstrap mock` means librdkafka's in-process mock cluster (the ceiling), kept
/// alive by the returned handle; anything else is a broker address.
pub struct Target {
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    pub bootstrap: String,
}

impl Target {
    pub fn resolve(bootstrap: &str) -> Result<Self> {
        if bootstrap != "mock" {
            return Ok(Self {
                mock: None,
                bootstrap: bootstrap.to_string(),
            });
        }
        let mock = MockCluster::new(1).context("cannot start the mock cluster")?;
        let bootstrap = mock.bootstrap_servers();
        Ok(Self {
            mock: Some(mock),
            bootstrap,
        })
    }

    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        match &self.mock {
            Some(mock) => mock
                .create_topic(name, partitions, 1)
                .context("mock create_topic"),
            None => create_topic(&self.bootstrap, name, partitions),
        }
    }
}

/// Create `name` with `partitions` partitions on the broker at `bootstrap`; an existing
/// topic is fine (the consume scenario reads what produce wrote).
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    create_topic_with_configs(bootstrap, name, partitions, &[])
}

/// [`create_topic`] with topic configs, e.g. `("retention.ms", "-1")`.
pub fn create_topic_with_configs(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("cannot create the admin client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime for the admin client")?;
    let topic = configs.iter().fold(
        NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
        |topic, (key, value)| topic.set(key, value),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime
        .block_on(admin.create_topics([&topic], &options))
        .with_context(|| format!("CreateTopics {name} failed"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

/// How a client reaches the broker: librdkafka settings set after a scenario's own
/// (`security.protocol` and its SASL and TLS settings). Empty is PLAINTEXT.
#[derive(Clone, Default)]
pub struct Security {
    settings: Vec<(String, String)>,
}

/// Lists the settings with the password left out, so printing a spec never shows it.
impl std::fmt::Debug for Security {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = self.settings.iter().map(|(key, value)| match key.as_str() {
            "sasl.password" => (key.as_str(), "<hidden>"),
            _ => (key.as_str(), value.as_str()),
        });
        formatter.debug_map().entries(shown).finish()
    }
}

impl Security {
    /// No settings: librdkafka's default, PLAINTEXT.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// SASL_SSL with SCRAM-SHA-512 as `username`, trusting the CA in `ca_file` (librdkafka
    /// checks the broker's host name against the certificate, as by default).
    pub fn sasl_ssl_scram_sha_512(username: &str, password: &str, ca_file: &str) -> Self {
        let settings = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", username),
            ("sasl.password", password),
            ("ssl.ca.location", ca_file),
        ];
        Self {
            settings: settings
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }

    /// Sets these settings on `config`, over any it has.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (key, value) in &self.settings {
            config.set(key, value);
        }
    }
}

/// Unique-enough topic names per run, so reruns against an external broker do not mix.
pub fn run_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos % 0xffff_ffff)
}
