//! The caller's side: [`NatsExecutor`], which sends jobs to the nodes and waits for their
//! replies. Imports the shared files of `nats`; never `node/`.

mod executor;
mod round_trip;
mod routes;

pub use self::executor::NatsExecutor;
