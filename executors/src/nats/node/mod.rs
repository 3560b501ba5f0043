//! The worker node's side: serving jobs from the broker through a local strategy that
//! [`init`](crate::init()) built, admitting them, draining on SIGTERM. Imports the shared files
//! of `nats`; never `caller/`.

mod admission;
mod drain;
mod identity;
mod serve;

pub use self::drain::EXIT_ABANDONED;
pub(crate) use self::identity::this_node;
pub use self::serve::UNANNOUNCED_BELOW;
pub(crate) use self::serve::{LocalStrategy, complain, serve};
