//! A byte range of a segment file, as `Log::read_range` hands it out: the broker sends it
//! to a socket with `sendfile`, so large fetches never copy record bytes through user space
//! (Kafka's zero-copy transfer). `read` copies it into memory for everyone else.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::error::{StorageError, io_error};

/// Bytes `position..position + length` of a segment's `.log` file: whole batches, all below
/// the high watermark when the range was taken.
///
/// The range holds the file open, so it stays readable after the segment is deleted by
/// retention. Segment files only grow while the broker serves (truncation happens in
/// recovery, before), so the range keeps its bytes; a reader still checks the count it got.
#[derive(Clone, Debug)]
pub struct FileRange {
    file: Arc<File>,
    path: Arc<Path>,
    position: u64,
    length: usize,
    /// The offset after the range's last batch (its first batch's base offset if empty).
    next_offset: i64,
}

impl FileRange {
    pub(crate) fn new(
        file: Arc<File>,
        path: Arc<Path>,
        position: u64,
        length: usize,
        next_offset: i64,
    ) -> Self {
        FileRange {
            file,
            path,
            position,
            length,
            next_offset,
        }
    }

    /// The offset after the range's last batch: where a reader continues, and the upper bound
    /// of the aborted transactions a read_committed reader of the range needs.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The open `.log` file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Where the range starts in the file, in bytes.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The range's length in bytes.
    pub fn len(&self) -> usize {
        self.length
    }

    /// Whether the range holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The file's path, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the range into memory, with one `pread` into a buffer that is not zeroed first.
    pub fn read(&self) -> Result<Bytes, StorageError> {
        let mut buffer = BytesMut::with_capacity(self.length);
        let mut position = self.position;
        while buffer.len() < self.length {
            let wanted = self.length - buffer.len();
            let spare = &mut buffer.spare_capacity_mut()[..wanted];
            let offset = libc::off_t::try_from(position)
                .map_err(|_| io_error(&self.path)(io::ErrorKind::InvalidInput.into()))?;
            // SAFETY: the pointer and length describe `spare`, writable memory owned by
            // `buffer`; the kernel writes at most that many bytes into it and we only mark
            // as initialised the count it reports.
            let read = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    spare.as_mut_ptr().cast::<libc::c_void>(),
                    spare.len(),
                    offset,
                )
            };
            match usize::try_from(read) {
                Ok(0) => {
                    return Err(io_error(&self.path)(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(read) => {
                    // SAFETY: the kernel initialised `read` bytes after the current length.
                    unsafe { buffer.set_len(buffer.len() + read) };
                    position += u64::try_from(read).expect("a read fits u64");
                }
                Err(_) => {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::Interrupted {
                        return Err(io_error(&self.path)(error));
                    }
                }
            }
        }
        Ok(buffer.freeze())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn read_returns_exactly_the_range() {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(b"0123456789").expect("write");
        let range = FileRange::new(Arc::new(file), Path::new("test.log").into(), 3, 4, 0);
        assert_eq!(range.read().expect("read"), Bytes::from_static(b"3456"));
        assert_eq!(range.len(), 4);
    }

    #[test]
    fn read_past_the_end_of_the_file_is_an_error_not_short_bytes() {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(b"0123").expect("write");
        let range = FileRange::new(Arc::new(file), Path::new("test.log").into(), 2, 8, 0);
        assert!(range.read().is_err());
    }
}
