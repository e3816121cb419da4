//! Length-prefixed framing: every request and response is an INT32 size, then that many
//! bytes.
//!
//! Checking happens before anything is allocated: [`check_frame`] looks only at the size
//! prefix and the bytes buffered so far.

/// How many bytes the size prefix takes.
pub const FRAME_SIZE_PREFIX_BYTES: usize = 4;

/// What the buffered bytes hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCheck {
    /// A whole frame is buffered: its body is `body_bytes` long, after the prefix.
    Complete {
        /// Length of the frame body, without the size prefix.
        body_bytes: usize,
    },
    /// More bytes are needed; `frame_bytes` is the total once known (prefix included).
    Incomplete {
        /// The full frame length, if the prefix has arrived.
        frame_bytes: Option<usize>,
    },
}

/// Why a frame can never be accepted. Either closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("negative frame size {0}")]
    NegativeSize(i32),
    /// The size prefix exceeds the configured maximum.
    #[error("frame of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        /// The size the peer announced.
        size_bytes: usize,
        /// The configured limit.
        max_bytes: usize,
    },
}

/// Checks whether `buffered` starts with a whole frame of at most `max_body_bytes`.
pub fn check_frame(buffered: &[u8], max_body_bytes: usize) -> Result<FrameCheck, FrameError> {
    let Some(prefix) = buffered.get(..FRAME_SIZE_PREFIX_BYTES) else {
        return Ok(FrameCheck::Incomplete { frame_bytes: None });
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let body_bytes = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
    if body_bytes > max_body_bytes {
        return Err(FrameError::TooLarge {
            size_bytes: body_bytes,
            max_bytes: max_body_bytes,
        });
    }
    if buffered.len() - FRAME_SIZE_PREFIX_BYTES >= body_bytes {
        Ok(FrameCheck::Complete { body_bytes })
    } else {
        Ok(FrameCheck::Incomplete {
            frame_bytes: Some(FRAME_SIZE_PREFIX_BYTES + body_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_incomplete_and_oversized() {
        assert_eq!(
            check_frame(&[0, 0], 100),
            Ok(FrameCheck::Incomplete { frame_bytes: None })
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 3, 1], 100),
            Ok(FrameCheck::Incomplete {
                frame_bytes: Some(7)
            })
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 1, 9], 100),
            Ok(FrameCheck::Complete { body_bytes: 1 })
        );
        assert_eq!(
            check_frame(&[0x7f, 0, 0, 0], 100),
            Err(FrameError::TooLarge {
                size_bytes: 0x7f00_0000,
                max_bytes: 100
            })
        );
        assert_eq!(
            check_frame(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::NegativeSize(-1))
        );
    }
}
