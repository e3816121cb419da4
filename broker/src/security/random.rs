//! Where the security code's randomness comes from: the operating system's CSPRNG, read
//! directly (`getrandom`), for SCRAM nonces, salts and the key behind unknown users' fake
//! salts. No user-space generator sits in between, so there is no state to seed or fork.

/// The operating system would not hand out random bytes (on Linux: `getrandom(2)` failed,
/// which in practice means a kernel without it and no readable `/dev/urandom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source is unavailable: {0}")]
pub struct RandomUnavailable(pub getrandom::Error);

/// `N` bytes from the operating system's CSPRNG.
///
/// # Errors
/// [`RandomUnavailable`] when the OS refuses.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(RandomUnavailable)?;
    Ok(bytes)
}
