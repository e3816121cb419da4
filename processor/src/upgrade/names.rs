//! The shadow application's names: its application id (the consumer group) and the
//! topics it writes in place of the live application's.

use std::collections::{BTreeMap, BTreeSet};

use crate::describe::NodeKind;
use crate::topology::Topology;

/// Suffix of the default shadow application id: `<application>-shadow`.
pub const SHADOW_SUFFIX: &str = "-shadow";

/// How a shadow run renames what the live application owns.
///
/// - The application id (the group, and the prefix of the transactional id) becomes the
///   shadow id, `<application>-shadow` by default.
/// - Internal topics (changelogs, repartition topics) follow the application id:
///   `<application>-counts-changelog` becomes `<shadow>-counts-changelog`.
/// - Sink topics become `<shadow>.<topic>`: `counts` becomes `<application>-shadow.counts`.
///
/// External input topics and tables' source topics keep their names: the shadow reads
/// the live inputs and writes nothing the live application reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowNames {
    live_application_id: String,
    shadow_application_id: String,
    /// Live topic name to shadow topic name, for every topic the shadow renames.
    to_shadow: BTreeMap<String, String>,
    /// The reverse.
    to_live: BTreeMap<String, String>,
    /// Sink topics, live name to shadow name.
    sinks: BTreeMap<String, String>,
}

impl ShadowNames {
    /// The names for a shadow of `topology` under `shadow_application_id`.
    pub fn new(topology: &Topology, shadow_application_id: &str) -> ShadowNames {
        let live = topology.application_id().to_owned();
        let mut internal: BTreeSet<String> = topology
            .source_topics()
            .into_iter()
            .filter(|topic| topology.is_repartition_topic(topic))
            .collect();
        for (_, store) in topology.stores() {
            if !topology.is_source_changelog(&store.changelog_topic) {
                internal.insert(store.changelog_topic.clone());
            }
        }
        let mut sinks = BTreeMap::new();
        for subtopology in topology.describe().subtopologies {
            for node in subtopology.nodes {
                if let NodeKind::Sink { topic } = node.kind
                    && !internal.contains(&topic)
                {
                    let shadow = format!("{shadow_application_id}.{topic}");
                    sinks.insert(topic, shadow);
                }
            }
        }
        let mut to_shadow = sinks.clone();
        for topic in internal {
            let shadow = match topic.strip_prefix(&format!("{live}-")) {
                Some(rest) => format!("{shadow_application_id}-{rest}"),
                None => format!("{shadow_application_id}.{topic}"),
            };
            to_shadow.insert(topic, shadow);
        }
        let to_live = to_shadow
            .iter()
            .map(|(live, shadow)| (shadow.clone(), live.clone()))
            .collect();
        ShadowNames {
            live_application_id: live,
            shadow_application_id: shadow_application_id.to_owned(),
            to_shadow,
            to_live,
            sinks,
        }
    }

    /// The names for a shadow of `topology` under `<application>-shadow`.
    pub fn with_default_id(topology: &Topology) -> ShadowNames {
        let shadow = format!("{}{SHADOW_SUFFIX}", topology.application_id());
        ShadowNames::new(topology, &shadow)
    }

    /// The live application's id.
    pub fn live_application_id(&self) -> &str {
        &self.live_application_id
    }

    /// The shadow application's id: its consumer group.
    pub fn shadow_application_id(&self) -> &str {
        &self.shadow_application_id
    }

    /// Sink topics as `(live topic, shadow topic)`, sorted: what to compare.
    pub fn sinks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sinks
            .iter()
            .map(|(live, shadow)| (live.as_str(), shadow.as_str()))
    }

    /// Every topic the shadow writes (sinks, changelogs, repartition topics): what to
    /// delete when it is no longer needed.
    pub fn shadow_topics(&self) -> impl Iterator<Item = &str> {
        self.to_live.keys().map(String::as_str)
    }

    /// The name the shadow uses for the live name `topic`.
    pub fn to_shadow<'a>(&'a self, topic: &'a str) -> &'a str {
        self.to_shadow.get(topic).map_or(topic, String::as_str)
    }

    /// The live name of the shadow's `topic`.
    pub fn to_live<'a>(&'a self, topic: &'a str) -> &'a str {
        self.to_live.get(topic).map_or(topic, String::as_str)
    }

    /// Whether the shadow renames the live topic `topic` (it writes it).
    pub fn is_renamed(&self, topic: &str) -> bool {
        self.to_shadow.contains_key(topic)
    }

    /// The shadow's transactional id for the live one (`<application>-<instance>`).
    pub(crate) fn transactional_id(&self, live_id: &str) -> String {
        match live_id.strip_prefix(&self.live_application_id) {
            Some(rest) => format!("{}{rest}", self.shadow_application_id),
            None => format!("{}.{live_id}", self.shadow_application_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Grouped, I64Serde, StreamsBuilder, StringSerde, TimeWindows};

    /// A count re-keyed through a repartition topic, plus a table: every topic the app
    /// writes is renamed, the inputs are not, and the renames go both ways.
    #[test]
    fn renames_what_the_application_writes() {
        let builder = StreamsBuilder::new("clicks-app");
        let users = builder.table("users", StringSerde, StringSerde, "users-store");
        let clicks = builder.stream("clicks", StringSerde, StringSerde);
        clicks
            .select_key(|_, page| page.clone())
            .group_by_key_with(Grouped::new(StringSerde, StringSerde).name("by-page"))
            .windowed_by(TimeWindows::tumbling(Duration::from_secs(60)))
            .count("per-page")
            .to("page-counts", StringSerde, I64Serde);
        clicks
            .join_table(&users, |_, click, user| format!("{click}:{user}"))
            .to("enriched", StringSerde, StringSerde);
        let topology = builder.build().expect("the topology builds");
        let names = ShadowNames::with_default_id(&topology);
        assert_eq!(names.shadow_application_id(), "clicks-app-shadow");
        let sinks: Vec<_> = names.sinks().collect();
        assert_eq!(
            sinks,
            [
                ("enriched", "clicks-app-shadow.enriched"),
                ("page-counts", "clicks-app-shadow.page-counts")
            ]
        );
        let written: Vec<_> = names.shadow_topics().collect();
        assert_eq!(
            written,
            [
                "clicks-app-shadow-by-page-repartition",
                "clicks-app-shadow-per-page-changelog",
                "clicks-app-shadow.enriched",
                "clicks-app-shadow.page-counts",
            ]
        );
        assert_eq!(names.to_shadow("clicks"), "clicks");
        assert_eq!(names.to_shadow("users"), "users");
        assert_eq!(
            names.to_live("clicks-app-shadow-by-page-repartition"),
            "clicks-app-by-page-repartition"
        );
        assert_eq!(
            names.transactional_id("clicks-app-node-1"),
            "clicks-app-shadow-node-1"
        );
    }
}
