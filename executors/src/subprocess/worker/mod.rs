//! The child's side: a worker process serving jobs until its parent closes the socket. Imports
//! `transport/`; never `pool/`, whose state lives in another process.

mod answer;
mod serve;

pub(crate) use self::serve::serve_if_worker;
