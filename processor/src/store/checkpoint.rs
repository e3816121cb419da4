//! Checkpoints: a task's last commit, kept beside its stores (Kafka Streams' `.checkpoint`).
//!
//! After each successful commit the runtime flushes the task's persistent stores to disk,
//! syncs them, and then writes `<state dir>/<application>/<task>/.checkpoint`: the input
//! offsets that commit named and its [`CommitMetadata`] (changelog end offsets, stream
//! time, operator progress). So a persistent store on disk holds exactly the changelog up
//! to the offsets the checkpoint derives (a crash between the flush and the file leaves a
//! store a little ahead within the changelog, which replaying the tail again overwrites
//! with the same writes). A restart restores only the changelog tail past them, nothing
//! after a clean stop; and where a broker drops commit metadata, the checkpoint is the
//! restore point.
//!
//! # Format
//!
//! One JSON object, written to `.checkpoint.tmp`, synced, renamed over `.checkpoint`, and
//! the directory synced:
//!
//! ```text
//! {"version":1,"input_offsets":{"clicks-0":1234},"metadata":{"stream_time_ms":..,"changelog_end_offsets":{..},"operator_progress":{..}}}
//! ```

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::engine::StateError;
use crate::record::TopicPartition;
use crate::task::{CommitMetadata, TaskId};

/// The checkpoint file of a task, in its directory.
pub const CHECKPOINT_FILE_NAME: &str = ".checkpoint";

/// The only checkpoint version written and read.
const CHECKPOINT_VERSION: u32 = 1;

/// A task's last commit, as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// Per input partition (`topic-partition`), the next offset to read.
    pub input_offsets: BTreeMap<String, i64>,
    /// What the commit covered.
    pub metadata: CommitMetadata,
    /// Set while the task's stores are wiped and restored from the start: the stores are
    /// not at this checkpoint, though its restore point still holds.
    #[serde(default)]
    pub restoring: bool,
}

impl Checkpoint {
    /// A checkpoint of a commit of `input_offsets` with `metadata`.
    pub fn new(input_offsets: &[(TopicPartition, i64)], metadata: CommitMetadata) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            input_offsets: input_offsets
                .iter()
                .map(|(partition, offset)| (partition.to_string(), *offset))
                .collect(),
            metadata,
            restoring: false,
        }
    }

    /// The next offset to read from `partition`, if the checkpoint names it.
    pub fn input_offset(&self, partition: &TopicPartition) -> Option<i64> {
        self.input_offsets.get(&partition.to_string()).copied()
    }
}

/// The directory of `task` in the state directory `state_dir`.
pub fn task_dir(state_dir: &Path, task: TaskId) -> PathBuf {
    state_dir.join(task.to_string())
}

/// Reads the checkpoint of `task`: `Ok(None)` when there is none. Blocks.
///
/// # Errors
/// [`StateError::CorruptCheckpoint`] when the file does not parse; I/O errors.
pub fn read(state_dir: &Path, task: TaskId) -> Result<Option<Checkpoint>, StateError> {
    let path = task_dir(state_dir, task).join(CHECKPOINT_FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StateError::io("read checkpoint", &path)(error)),
    };
    let corrupt = |reason: String| StateError::CorruptCheckpoint {
        path: path.clone(),
        reason,
    };
    let checkpoint: Checkpoint =
        serde_json::from_str(&text).map_err(|error| corrupt(error.to_string()))?;
    if checkpoint.version != CHECKPOINT_VERSION {
        return Err(corrupt(format!("unknown version {}", checkpoint.version)));
    }
    Ok(Some(checkpoint))
}

/// Writes the checkpoint of `task`, replacing the previous one atomically. Blocks (two
/// fsyncs).
///
/// # Errors
/// I/O errors.
pub fn write(state_dir: &Path, task: TaskId, checkpoint: &Checkpoint) -> Result<(), StateError> {
    let dir = task_dir(state_dir, task);
    std::fs::create_dir_all(&dir).map_err(StateError::io("create task directory", &dir))?;
    let path = dir.join(CHECKPOINT_FILE_NAME);
    let temp = dir.join(format!("{CHECKPOINT_FILE_NAME}.tmp"));
    let json = serde_json::to_vec(checkpoint).map_err(|error| {
        StateError::io("encode checkpoint", &path)(std::io::Error::other(error))
    })?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(StateError::io("create checkpoint", &temp))?;
    file.write_all(&json)
        .map_err(StateError::io("write checkpoint", &temp))?;
    // The new contents are durable before they replace the old ones.
    file.sync_all()
        .map_err(StateError::io("sync checkpoint", &temp))?;
    std::fs::rename(&temp, &path).map_err(StateError::io("rename checkpoint", &path))?;
    // The rename itself survives a power loss.
    let dir_file =
        std::fs::File::open(&dir).map_err(StateError::io("open task directory", &dir))?;
    dir_file
        .sync_all()
        .map_err(StateError::io("sync task directory", &dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("riffle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A written checkpoint reads back whole; none reads as `None`; garbage is refused
    /// naming the file.
    #[test]
    fn checkpoints_round_trip_and_refuse_garbage() {
        let dir = temp_dir("checkpoint-round-trip");
        let task = TaskId {
            subtopology: 1,
            partition: 3,
        };
        assert_eq!(read(&dir, task).unwrap(), None);
        let metadata = CommitMetadata {
            stream_time_ms: 42,
            changelog_end_offsets: BTreeMap::from([("app-s-changelog-3".to_string(), 7)]),
            operator_progress: BTreeMap::new(),
        };
        let checkpoint = Checkpoint::new(&[(TopicPartition::new("in", 3), 10)], metadata);
        write(&dir, task, &checkpoint).unwrap();
        assert_eq!(read(&dir, task).unwrap(), Some(checkpoint.clone()));
        assert_eq!(
            checkpoint.input_offset(&TopicPartition::new("in", 3)),
            Some(10)
        );

        let path = task_dir(&dir, task).join(CHECKPOINT_FILE_NAME);
        std::fs::write(&path, b"{not json").unwrap();
        let error = read(&dir, task).unwrap_err();
        assert!(error.to_string().contains(".checkpoint"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
