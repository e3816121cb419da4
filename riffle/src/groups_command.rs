//! `riffle groups list` and `riffle groups describe GROUP`: consumer groups as an operator
//! sees them, in the shape of Kafka's `kafka-consumer-groups.sh --list` / `--describe`.
//!
//! `list` prints one line per group: GROUP, STATE, PROTOCOL TYPE (ListGroups v4).
//! `describe` prints one line per partition the group has committed or is assigned:
//! GROUP, TOPIC, PARTITION, CURRENT-OFFSET, LOG-END-OFFSET, LAG, CONSUMER-ID, HOST, CLIENT-ID.
//! Committed offsets come from OffsetFetch, log end offsets from ListOffsets and the owners
//! from DescribeGroups, whose member assignments are decoded here
//! ([`decode_consumer_assignment`]). A partition without a committed offset shows `-` as its
//! current offset and lag; a member without partitions gets a line of its own with `-` for
//! the topic and partition.
//!
//! `reset-offsets` (dry run by default) is in [`reset_offsets`]. `--format json` prints the
//! same rows as JSON objects. Group requests go to the group's coordinator (FindCoordinator),
//! ListGroups to the bootstrap broker. Every command connects as `--bootstrap` and
//! `--command-config` say (see [`crate::client_config`]), so they work against TLS and SASL
//! listeners too.
//!
//! The network work is in [`run`]; building rows ([`describe_rows`]) and laying out columns
//! ([`format_table`]) are pure functions with unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use riffle_protocol::ErrorCode;
use riffle_protocol::api::describe_groups::DescribedGroup;
use riffle_protocol::api::list_groups::ListedGroup;

use crate::admin_client::{
    AdminClient, AdminClientError, BrokerErrorCode, CommittedOffset, LogEndOffset,
};
pub use crate::cli_support::format_table;
use crate::cli_support::output::to_json;
use crate::cli_support::{CommandError, OutputFormat};
use crate::client_config::{ConnectError, ConnectionArgs};
use riffle_server::group::consumer_protocol::decode_consumer_assignment;

pub mod reset_offsets;

/// `riffle groups`: the broker to ask and what to do.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// The broker to ask and how to connect.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// How to print the result: `text` (tables, for people) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t, global = true)]
    pub format: OutputFormat,

    /// What to show.
    #[command(subcommand)]
    pub command: GroupsCommand,
}

/// The `riffle groups` subcommands.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List every consumer group with its state and protocol type.
    List,
    /// Show a group's committed offsets, log end offsets, lag and owners, per partition.
    Describe {
        /// The group id.
        group: String,
    },
    /// Move a group's committed offsets in a topic: to the earliest or latest offset, to a
    /// time, or by N. Shows the new offsets; commits them only with --execute.
    ResetOffsets(reset_offsets::ResetOffsetsArgs),
}

/// Why a `riffle groups` command failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupsCommandError {
    /// The broker has no such group (no members and no committed offsets).
    #[error("Consumer group '{0}' does not exist.")]
    GroupNotFound(String),
    /// The command config could not be read, or the connection failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A request failed.
    #[error(transparent)]
    Client(#[from] AdminClientError),
    /// A client command failed (`reset-offsets`).
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// The value shown for an unknown or absent cell.
const ABSENT: &str = "-";

/// The protocol type whose member assignments use the consumer protocol layout.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The state Kafka reports for a group it does not know.
const DEAD_STATE: &str = "Dead";

/// Runs `riffle groups ...`: prints the table on stdout, or the error on stderr.
pub fn run(args: GroupsArgs) -> ExitCode {
    let format = args.format;
    let result = args
        .connection
        .connect_brokers()
        .map_err(GroupsCommandError::from)
        .and_then(|mut brokers| match &args.command {
            GroupsCommand::List => list(brokers.any(), format),
            GroupsCommand::Describe { group } => {
                let coordinator = brokers.coordinator(group)?;
                match format {
                    OutputFormat::Text => describe(coordinator, group),
                    OutputFormat::Json => describe_table(coordinator, group)
                        .map(|(_, rows)| rows_json(&DESCRIBE_HEADERS, &rows)),
                }
            }
            GroupsCommand::ResetOffsets(reset) => {
                Ok(reset_offsets::reset_offsets(&mut brokers, reset, format)?)
            }
        });
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error @ GroupsCommandError::GroupNotFound(_)) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("riffle: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `riffle groups list`: the table of every group.
fn list(client: &mut AdminClient, format: OutputFormat) -> Result<String, GroupsCommandError> {
    let rows = list_rows(client.list_groups()?);
    Ok(match format {
        OutputFormat::Text => format_table(&LIST_HEADERS, &rows),
        OutputFormat::Json => rows_json(&LIST_HEADERS, &rows),
    })
}

/// `riffle groups describe GROUP`: the per-partition table, preceded by a note when the
/// group has no active members.
fn describe(client: &mut AdminClient, group_id: &str) -> Result<String, GroupsCommandError> {
    let (no_members, rows) = describe_table(client, group_id)?;
    let mut output = String::new();
    if no_members {
        output.push_str(&format!(
            "Consumer group '{group_id}' has no active members.\n\n"
        ));
    }
    output.push_str(&format_table(&DESCRIBE_HEADERS, &rows));
    Ok(output)
}

/// Rows as a JSON array of objects: each header in lower case with `_` for `-` and ` `
/// names a field; `-` cells are null and whole numbers are numbers.
fn rows_json(headers: &[&str], rows: &[Vec<String>]) -> String {
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|row| {
            headers
                .iter()
                .zip(row)
                .map(|(header, cell)| {
                    let name = header.to_lowercase().replace(['-', ' '], "_");
                    let value = match cell.parse::<i64>() {
                        _ if cell == ABSENT => serde_json::Value::Null,
                        Ok(number) => serde_json::Value::from(number),
                        Err(_) => serde_json::Value::from(cell.clone()),
                    };
                    (name, value)
                })
                .collect()
        })
        .collect();
    to_json(&objects)
}

/// The describe table's rows, and whether the group has no active members.
fn describe_table(
    client: &mut AdminClient,
    group_id: &str,
) -> Result<(bool, Vec<Vec<String>>), GroupsCommandError> {
    let group = client.describe_group(group_id)?;
    match group.error_code {
        0 => {}
        code if code == ErrorCode::GroupIdNotFound.code() => {
            return Err(GroupsCommandError::GroupNotFound(group_id.to_owned()));
        }
        code => {
            return Err(AdminClientError::Broker {
                api: "DescribeGroups",
                context: format!(" for group '{group_id}'"),
                code: BrokerErrorCode(code),
                message: None,
            }
            .into());
        }
    }
    let committed = match client.committed_offsets(group_id) {
        Ok(committed) => committed,
        Err(AdminClientError::Broker { code, .. })
            if code.known() == Some(ErrorCode::GroupIdNotFound) =>
        {
            BTreeMap::new()
        }
        Err(error) => return Err(error.into()),
    };
    if group.group_state == DEAD_STATE && group.members.is_empty() && committed.is_empty() {
        return Err(GroupsCommandError::GroupNotFound(group_id.to_owned()));
    }
    let members = group_members(&group);
    let log_end = client.log_end_offsets(&partitions_by_topic(&committed, &members))?;
    let rows = describe_rows(group_id, &committed, &log_end, &members);
    Ok((members.is_empty(), rows))
}

/// The columns of `riffle groups list`.
pub const LIST_HEADERS: [&str; 3] = ["GROUP", "STATE", "PROTOCOL TYPE"];

/// The columns of `riffle groups describe`, as `kafka-consumer-groups.sh --describe` names them.
pub const DESCRIBE_HEADERS: [&str; 9] = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
];

/// One row per listed group, sorted by group id; empty cells show `-`.
pub fn list_rows(mut groups: Vec<ListedGroup>) -> Vec<Vec<String>> {
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    groups
        .into_iter()
        .map(|group| {
            vec![
                cell(group.group_id),
                cell(group.group_state),
                cell(group.protocol_type),
            ]
        })
        .collect()
}

/// A group member as the describe table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSummary {
    /// The member id the coordinator assigned.
    pub member_id: String,
    /// The host the member connected from.
    pub host: String,
    /// The member's client id.
    pub client_id: String,
    /// The partitions assigned to it, as (topic, partition).
    pub partitions: Vec<(String, i32)>,
}

/// The members of a described group, with their assignments decoded when the group uses the
/// consumer protocol. An assignment that does not decode is reported on stderr and shown as
/// no partitions: the table is still useful without it.
fn group_members(group: &DescribedGroup) -> Vec<MemberSummary> {
    group
        .members
        .iter()
        .map(|member| {
            let partitions = if group.protocol_type == CONSUMER_PROTOCOL_TYPE {
                match decode_consumer_assignment(&member.member_assignment) {
                    Ok(assignment) => assignment.partitions,
                    Err(error) => {
                        eprintln!(
                            "riffle: cannot decode the assignment of member {}: {error}",
                            member.member_id
                        );
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            MemberSummary {
                member_id: member.member_id.clone(),
                host: member.client_host.clone(),
                client_id: member.client_id.clone(),
                partitions,
            }
        })
        .collect()
}

/// Every partition that is committed or assigned, grouped by topic, for ListOffsets.
fn partitions_by_topic(
    committed: &BTreeMap<(String, i32), CommittedOffset>,
    members: &[MemberSummary],
) -> BTreeMap<String, Vec<i32>> {
    let all: BTreeSet<(String, i32)> = committed
        .keys()
        .cloned()
        .chain(
            members
                .iter()
                .flat_map(|member| member.partitions.iter().cloned()),
        )
        .collect();
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in all {
        by_topic.entry(topic).or_default().push(partition);
    }
    by_topic
}

/// The rows of the describe table: one per committed or assigned partition, sorted by topic
/// and partition, then one per member without partitions.
///
/// CURRENT-OFFSET is `-` when nothing (or -1) is committed or the partition had an error;
/// LOG-END-OFFSET is `-` when ListOffsets failed for it; LAG is their difference when both
/// are known; the owner columns are `-` when no member is assigned the partition.
pub fn describe_rows(
    group_id: &str,
    committed: &BTreeMap<(String, i32), CommittedOffset>,
    log_end: &BTreeMap<(String, i32), LogEndOffset>,
    members: &[MemberSummary],
) -> Vec<Vec<String>> {
    let mut owners: BTreeMap<(String, i32), &MemberSummary> = BTreeMap::new();
    for member in members {
        for topic_partition in &member.partitions {
            owners.insert(topic_partition.clone(), member);
        }
    }
    let partitions: BTreeSet<&(String, i32)> = committed.keys().chain(owners.keys()).collect();
    let mut rows = Vec::new();
    for topic_partition in partitions {
        let current = committed
            .get(topic_partition)
            .filter(|offset| offset.error_code == 0 && offset.offset >= 0)
            .map(|offset| offset.offset);
        let end = log_end.get(topic_partition).and_then(|end| end.ok());
        let lag = current.zip(end).map(|(current, end)| end - current);
        let mut row = vec![
            cell(group_id.to_owned()),
            cell(topic_partition.0.clone()),
            topic_partition.1.to_string(),
            optional_cell(current),
            optional_cell(end),
            optional_cell(lag),
        ];
        row.extend(owner_cells(owners.get(topic_partition).copied()));
        rows.push(row);
    }
    for member in members.iter().filter(|member| member.partitions.is_empty()) {
        let mut row = vec![cell(group_id.to_owned())];
        row.extend(std::iter::repeat_n(ABSENT.to_owned(), 5));
        row.extend(owner_cells(Some(member)));
        rows.push(row);
    }
    rows
}

/// CONSUMER-ID, HOST and CLIENT-ID of a partition's owner, or `-` three times.
fn owner_cells(owner: Option<&MemberSummary>) -> [String; 3] {
    match owner {
        Some(member) => [
            cell(member.member_id.clone()),
            cell(member.host.clone()),
            cell(member.client_id.clone()),
        ],
        None => [ABSENT.to_owned(), ABSENT.to_owned(), ABSENT.to_owned()],
    }
}

/// A text cell; empty text shows as `-` so every row has the same number of words.
fn cell(text: String) -> String {
    if text.is_empty() {
        ABSENT.to_owned()
    } else {
        text
    }
}

/// A number cell, `-` when unknown.
fn optional_cell(value: Option<i64>) -> String {
    value.map_or_else(|| ABSENT.to_owned(), |value| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_client::tests::{advertise, fake_broker};
    use bytes::Bytes;
    use riffle_protocol::Response;
    use riffle_protocol::api::describe_groups::{DescribeGroupsResponse, DescribedGroupMember};
    use riffle_protocol::api::list_offsets::{
        ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
    };
    use riffle_protocol::api::offset_fetch::{
        OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopics,
    };
    use riffle_server::group::consumer_protocol::{AssignmentError, ConsumerAssignment};

    /// Encodes an assignment the way the Java and librdkafka clients do.
    fn encode_assignment(
        version: i16,
        topics: &[(&str, &[i32])],
        user_data: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            bytes.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            bytes.extend_from_slice(topic.as_bytes());
            bytes.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for partition in *partitions {
                bytes.extend_from_slice(&partition.to_be_bytes());
            }
        }
        match user_data {
            Some(data) => {
                bytes.extend_from_slice(&(data.len() as i32).to_be_bytes());
                bytes.extend_from_slice(data);
            }
            None => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        bytes
    }

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            metadata: None,
            error_code: 0,
        }
    }

    fn member(id: &str, partitions: &[(&str, i32)]) -> MemberSummary {
        MemberSummary {
            member_id: id.to_owned(),
            host: "/127.0.0.1".to_owned(),
            client_id: format!("client-{id}"),
            partitions: partitions
                .iter()
                .map(|(topic, partition)| ((*topic).to_owned(), *partition))
                .collect(),
        }
    }

    fn connect(address: std::net::SocketAddr) -> AdminClient {
        AdminClient::connect(&address.to_string()).expect("connect")
    }

    fn key(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_owned(), partition)
    }

    /// Every API `describe` calls, at the versions it sends.
    fn group_apis() -> Vec<riffle_protocol::api::api_versions::ApiVersion> {
        use riffle_protocol::ApiKey;
        vec![
            advertise(ApiKey::DescribeGroups, 0, 5),
            advertise(ApiKey::OffsetFetch, 0, 9),
            advertise(ApiKey::ListOffsets, 1, 8),
        ]
    }

    fn described(state: &str, members: Vec<DescribedGroupMember>) -> Response {
        Response::DescribeGroups(DescribeGroupsResponse {
            groups: vec![DescribedGroup {
                group_id: "g".into(),
                group_state: state.into(),
                protocol_type: "consumer".into(),
                protocol_data: "range".into(),
                members,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn offsets(partitions: &[(i32, i64)]) -> Response {
        Response::OffsetFetch(OffsetFetchResponse {
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                topics: vec![OffsetFetchResponseTopics {
                    name: "orders".into(),
                    partitions: partitions
                        .iter()
                        .map(
                            |&(partition_index, committed_offset)| OffsetFetchResponsePartitions {
                                partition_index,
                                committed_offset,
                                ..Default::default()
                            },
                        )
                        .collect(),
                }],
                error_code: 0,
            }],
            ..Default::default()
        })
    }

    fn log_ends(partitions: &[(i32, i64)]) -> Response {
        Response::ListOffsets(ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "orders".into(),
                partitions: partitions
                    .iter()
                    .map(|&(partition_index, offset)| ListOffsetsPartitionResponse {
                        partition_index,
                        offset,
                        ..Default::default()
                    })
                    .collect(),
            }],
            ..Default::default()
        })
    }

    #[test]
    fn describe_asks_three_apis_and_prints_the_table() {
        // Proves `describe` end to end against a stand-in broker: the member's decoded
        // assignment, the committed offsets and the log end offsets meet in one table.
        let member = DescribedGroupMember {
            member_id: "consumer-1-abc".into(),
            client_id: "consumer-1".into(),
            client_host: "/127.0.0.1".into(),
            member_assignment: Bytes::from(encode_assignment(0, &[("orders", &[0, 1])], None)),
            ..Default::default()
        };
        let address = fake_broker(
            group_apis(),
            vec![
                described("Stable", vec![member]),
                offsets(&[(0, 10)]),
                log_ends(&[(0, 25), (1, 3)]),
            ],
        );
        let output = describe(&mut connect(address), "g").expect("describe");
        assert_eq!(
            output,
            "GROUP  TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID     HOST        \
             CLIENT-ID\n\
             g      orders  0          10              25              15   consumer-1-abc  /127.0.0.1  \
             consumer-1\n\
             g      orders  1          -               3               -    consumer-1-abc  /127.0.0.1  \
             consumer-1\n"
        );
    }

    #[test]
    fn describe_of_an_unknown_group_says_it_does_not_exist() {
        // Proves Kafka's answer for an unknown group (state Dead, no members, no offsets)
        // becomes the "does not exist" error, and so does GROUP_ID_NOT_FOUND.
        let address = fake_broker(group_apis(), vec![described("Dead", vec![]), offsets(&[])]);
        let error = describe(&mut connect(address), "g").expect_err("unknown group");
        assert_eq!(error.to_string(), "Consumer group 'g' does not exist.");
        let mut not_found = described("", vec![]);
        if let Response::DescribeGroups(response) = &mut not_found {
            response.groups[0].error_code = ErrorCode::GroupIdNotFound.code();
        }
        let address = fake_broker(group_apis(), vec![not_found]);
        let error = describe(&mut connect(address), "g").expect_err("unknown group");
        assert!(
            matches!(error, GroupsCommandError::GroupNotFound(_)),
            "{error}"
        );
    }

    #[test]
    fn describe_of_an_empty_group_notes_it_has_no_members() {
        // Proves a group with offsets but no members still prints its lag, after a note.
        let address = fake_broker(
            group_apis(),
            vec![
                described("Empty", vec![]),
                offsets(&[(2, 4)]),
                log_ends(&[(2, 4)]),
            ],
        );
        let output = describe(&mut connect(address), "g").expect("describe");
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines[0], "Consumer group 'g' has no active members.");
        assert_eq!(lines[1], "");
        assert!(lines[2].starts_with("GROUP"), "{output}");
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["g", "orders", "2", "4", "4", "0", "-", "-", "-"]
        );
    }

    #[test]
    fn assignment_decodes_topics_partitions_and_user_data() {
        // Proves the decoder reads the consumer protocol layout, both user-data forms.
        let bytes = encode_assignment(1, &[("orders", &[0, 2]), ("audit", &[5])], Some(b"sticky"));
        let assignment = decode_consumer_assignment(&bytes).expect("valid assignment");
        assert_eq!(
            assignment,
            ConsumerAssignment {
                version: 1,
                partitions: vec![key("orders", 0), key("orders", 2), key("audit", 5)],
                user_data: Some(b"sticky".to_vec()),
            }
        );
        let bytes = encode_assignment(3, &[], None);
        let assignment = decode_consumer_assignment(&bytes).expect("valid assignment");
        assert_eq!(assignment.version, 3);
        assert!(assignment.partitions.is_empty());
        assert_eq!(assignment.user_data, None);
    }

    #[test]
    fn assignment_tolerates_trailing_bytes_and_missing_user_data() {
        // Proves extra bytes after user_data and an assignment that stops before it both
        // decode, and that empty bytes mean "not synced yet": no partitions.
        let mut bytes = encode_assignment(0, &[("t", &[1])], None);
        bytes.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(
            decode_consumer_assignment(&bytes)
                .expect("trailing bytes")
                .partitions,
            vec![key("t", 1)]
        );
        let without_user_data = &bytes[..bytes.len() - 6];
        assert_eq!(
            decode_consumer_assignment(without_user_data)
                .expect("no user data")
                .partitions,
            vec![key("t", 1)]
        );
        assert!(
            decode_consumer_assignment(&[])
                .expect("empty")
                .partitions
                .is_empty()
        );
    }

    #[test]
    fn assignment_rejects_truncated_and_oversized_input() {
        // Proves bad bytes become errors naming the field, never a panic or a huge allocation.
        let bytes = encode_assignment(0, &[("orders", &[0, 1])], None);
        for cut in 1..bytes.len() - 4 {
            assert!(
                decode_consumer_assignment(&bytes[..cut]).is_err(),
                "cut at {cut} must fail"
            );
        }
        let huge_count = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(
            decode_consumer_assignment(&huge_count),
            Err(AssignmentError::InvalidLength {
                field: "assigned_partitions",
                length: i64::from(i32::MAX),
                position: 2,
            })
        );
        let negative_topic = [0, 0, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0];
        assert_eq!(
            decode_consumer_assignment(&negative_topic),
            Err(AssignmentError::InvalidLength {
                field: "topic",
                length: -2,
                position: 6,
            })
        );
    }

    #[test]
    fn table_columns_align_without_trailing_spaces() {
        // Proves every column starts at the same character in every line and lines end with
        // their last cell.
        let rows = vec![
            vec!["a".to_owned(), "Stable".to_owned(), "consumer".to_owned()],
            vec![
                "long-group-name".to_owned(),
                "Empty".to_owned(),
                "-".to_owned(),
            ],
        ];
        let table = format_table(&LIST_HEADERS, &rows);
        assert_eq!(
            table,
            "GROUP            STATE   PROTOCOL TYPE\n\
             a                Stable  consumer\n\
             long-group-name  Empty   -\n"
        );
    }

    #[test]
    fn list_rows_sort_by_group_and_fill_empty_cells() {
        // Proves groups come out sorted and an empty protocol type shows as "-".
        let groups = vec![
            ListedGroup {
                group_id: "b".into(),
                protocol_type: "consumer".into(),
                group_state: "Stable".into(),
                ..Default::default()
            },
            ListedGroup {
                group_id: "a".into(),
                protocol_type: String::new(),
                group_state: "Empty".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            list_rows(groups),
            vec![vec!["a", "Empty", "-"], vec!["b", "Stable", "consumer"]]
        );
    }

    #[test]
    fn describe_rows_join_offsets_log_ends_and_owners() {
        // Proves the describe table: lag is log end minus committed, an uncommitted assigned
        // partition shows "-" for offset and lag, a committed partition nobody owns shows "-"
        // owners, a failed log end shows "-", and an idle member gets its own line.
        let committed = BTreeMap::from([
            (key("orders", 0), committed(40)),
            (key("orders", 2), committed(7)),
            (key("orders", 3), committed(-1)),
        ]);
        let log_end = BTreeMap::from([
            (key("orders", 0), Ok(100)),
            (key("orders", 1), Ok(55)),
            (key("orders", 2), Err(BrokerErrorCode(3))),
            (key("orders", 3), Ok(9)),
        ]);
        let members = vec![
            member("m-1", &[("orders", 0), ("orders", 1)]),
            member("m-2", &[]),
        ];
        let rows = describe_rows("g", &committed, &log_end, &members);
        let expected = [
            "g orders 0 40 100 60 m-1 /127.0.0.1 client-m-1",
            "g orders 1 - 55 - m-1 /127.0.0.1 client-m-1",
            "g orders 2 7 - - - - -",
            "g orders 3 - 9 - - - -",
            "g - - - - - m-2 /127.0.0.1 client-m-2",
        ];
        let actual: Vec<String> = rows.iter().map(|row| row.join(" ")).collect();
        assert_eq!(actual, expected);
        let table = format_table(&DESCRIBE_HEADERS, &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "GROUP  TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        \
             CLIENT-ID"
        );
        assert_eq!(
            lines[1],
            "g      orders  0          40              100             60   m-1          /127.0.0.1  \
             client-m-1"
        );
        let lag_column = lines[0].find("LAG").expect("LAG header");
        for line in &lines[1..] {
            assert_ne!(line.as_bytes()[lag_column], b' ', "{line}");
            assert_eq!(line.as_bytes()[lag_column - 1], b' ', "{line}");
        }
    }
}
