//! What both sides of the subprocess boundary share: the worker's socket and its frames, the
//! start-up marker and handshake, the shared-memory regions, direct copies, and where a
//! payload goes. Imports `settings` and the crate's `wire`; never `pool/` or `worker/`, so the
//! parent and the child meet here and nowhere else. Items are `pub(crate)` inside modules that
//! only `subprocess` can name, so they reach exactly as far as `pub(in crate::subprocess)`
//! would.

#[allow(unsafe_code)] // process_vm_readv/writev over memory this process owns
pub(super) mod direct;
pub(super) mod frame;
pub(super) mod marker;
pub(super) mod payload;
pub(super) mod protocol;
pub(super) mod receive;
#[allow(unsafe_code)] // memfd regions mapped, sealed and inherited
pub(super) mod shm;
#[allow(unsafe_code)] // sendmsg/recvmsg on the worker's socket, descriptors closed
pub(super) mod socket;
