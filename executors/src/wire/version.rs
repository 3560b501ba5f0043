//! The version of the bodies in [`crate::wire`].

/// The version of the job and reply bodies, which the `nats` strategy shares (its subjects
/// carry it). Bumped whenever a body changes shape.
#[cfg(feature = "nats")]
pub(crate) const PROTOCOL_VERSION: u32 = 5;
