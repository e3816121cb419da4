//! `Topology::describe`: Kafka Streams' text layout and the data behind it.

use std::time::Duration;

use riffle_processor::{
    Grouped, I64Serde, JoinWindows, NodeKind, StoreType, StreamJoined, StreamsBuilder, StringSerde,
    Topology,
};

fn stateless_chain() -> Topology {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("input", StringSerde, I64Serde)
        .filter(|_, amount| *amount > 0)
        .map_values(|amount| amount * 2)
        .to("output", StringSerde, I64Serde);
    builder.build().unwrap()
}

/// A stateless chain prints exactly as Kafka Streams prints the same topology.
#[test]
fn a_stateless_chain_prints_like_kafka_streams() {
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [input])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-MAPVALUES-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-FILTER-0000000001
    Sink: KSTREAM-SINK-0000000003 (topic: output)
      <-- KSTREAM-MAPVALUES-0000000002

";
    assert_eq!(stateless_chain().describe().to_string(), expected);
}

/// A group-by splits the graph at its repartition topic: two sub-topologies, the edge
/// between them, and the count's store with its changelog in the second.
#[test]
fn a_group_by_is_two_subtopologies_joined_by_its_repartition_topic() {
    let builder = StreamsBuilder::new("app");
    builder
        .stream("words", StringSerde, StringSerde)
        .group_by(
            |_, word: &String| word.clone(),
            Grouped::new(StringSerde, StringSerde).name("by-word"),
        )
        .count("counts")
        .to_stream()
        .to("word-counts", StringSerde, I64Serde);
    let description = builder.build().unwrap().describe();
    let expected = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [words])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> KSTREAM-SINK-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000002 (topic: app-by-word-repartition)
      <-- KSTREAM-KEY-SELECT-0000000001

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000003 (topics: [app-by-word-repartition])
      --> KSTREAM-AGGREGATE-0000000004
";
    let text = description.to_string();
    assert!(text.starts_with(expected), "{text}");
    assert!(
        text.contains("Processor: KSTREAM-AGGREGATE-0000000004 (stores: [counts])"),
        "{text}"
    );
    assert_eq!(description.repartition_topics.len(), 1);
    let edge = &description.repartition_topics[0];
    assert_eq!(
        (
            edge.topic.as_str(),
            edge.from_subtopology,
            edge.to_subtopology
        ),
        ("app-by-word-repartition", 0, 1)
    );
    let store = &description.subtopologies[1].stores[0];
    assert_eq!(
        (
            store.name.as_str(),
            store.kind,
            store.changelog_topic.as_str()
        ),
        ("counts", StoreType::KeyValue, "app-counts-changelog")
    );
    assert!(description.subtopologies[0].stores.is_empty());
}

/// A windowed stream-stream join is one sub-topology reading both topics; both join sides
/// name both window stores, which are listed with their changelogs.
#[test]
fn a_join_lists_both_window_stores() {
    let builder = StreamsBuilder::new("app");
    let clicks = builder.stream("clicks", StringSerde, StringSerde);
    let views = builder.stream("views", StringSerde, StringSerde);
    let window = JoinWindows::of_time_difference(Duration::from_secs(60));
    clicks
        .join(
            &views,
            |_, click: &String, view: &String| format!("{click}+{view}"),
            window,
            StreamJoined::new("click-view", StringSerde, StringSerde, StringSerde),
        )
        .to("joined", StringSerde, StringSerde);
    let description = builder.build().unwrap().describe();
    assert_eq!(description.subtopologies.len(), 1);
    let sub = &description.subtopologies[0];
    let sources: Vec<&Vec<String>> = sub
        .nodes
        .iter()
        .filter_map(|node| match &node.kind {
            NodeKind::Source { topics } => Some(topics),
            _ => None,
        })
        .collect();
    assert_eq!(
        sources,
        vec![&vec!["clicks".to_string()], &vec!["views".to_string()]]
    );
    let join_sides: Vec<&Vec<String>> = sub
        .nodes
        .iter()
        .filter(|node| node.name.contains("JOIN-SIDE"))
        .map(|node| &node.stores)
        .collect();
    assert_eq!(join_sides.len(), 2);
    assert!(join_sides.iter().all(|stores| stores.len() == 2));
    let stores: Vec<(&str, StoreType)> = sub
        .stores
        .iter()
        .map(|store| (store.changelog_topic.as_str(), store.kind))
        .collect();
    assert_eq!(
        stores,
        vec![
            (
                "app-click-view-this-join-store-changelog",
                StoreType::Window
            ),
            (
                "app-click-view-other-join-store-changelog",
                StoreType::Window
            ),
        ]
    );
    let text = description.to_string();
    assert!(
        text.contains("(stores: [click-view-this-join-store, click-view-other-join-store])"),
        "{text}"
    );
    let sink = sub.nodes.last().unwrap();
    assert_eq!(
        sink.kind,
        NodeKind::Sink {
            topic: "joined".into()
        }
    );
    assert_eq!(sink.predecessors.len(), 1);
}

/// The description serializes to JSON for a console: node kinds tagged, edges by name.
#[test]
fn the_description_serializes_to_json() {
    let json = serde_json::to_value(stateless_chain().describe()).unwrap();
    let source = &json["subtopologies"][0]["nodes"][0];
    assert_eq!(source["type"], "source");
    assert_eq!(source["topics"], serde_json::json!(["input"]));
    assert_eq!(
        source["successors"],
        serde_json::json!(["KSTREAM-FILTER-0000000001"])
    );
    let sink = &json["subtopologies"][0]["nodes"][3];
    assert_eq!(sink["type"], "sink");
    assert_eq!(sink["topic"], "output");
    assert_eq!(json["application_id"], "app");
}
