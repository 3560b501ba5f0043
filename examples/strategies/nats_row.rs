//! The `nats` row: the same work shipped through a real broker to two worker nodes on this
//! machine, when `nats-server` is installed; otherwise a line saying how to install it.
//!
//! The broker listens on a free loopback port; each node is this program started again with
//! `YTHREAD_WORKER` set (its `main` hands over to `ythread_executors::init` first) and runs one
//! job at once (`rayon:1`), so the two nodes together run as many jobs at once as `rayon:2`,
//! on the same two cores, and the row shows what the broker hop costs against it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ythread_executors::{ExecutorConfig, WORKER_ENV};
use ythread_suite::nats_broker::{Broker, die_with_this_thread};

use crate::plan::Strategy;

/// Worker nodes of the row.
const NODES: usize = 2;

/// Each node's own strategy.
const NODE_STRATEGY: &str = "rayon:1";

/// How long a node may take to start serving.
const NODE_START: Duration = Duration::from_secs(30);

/// The broker and nodes behind the row; stopped on drop.
pub(crate) struct NatsRow {
    nodes: Vec<Child>,
    strategy: Strategy,
    // Dropped last: the nodes go first, so they do not spend their exit reconnecting.
    _broker: Broker,
}

impl NatsRow {
    /// Starts the broker and the nodes, or says on stderr why there is no `nats` row.
    pub(crate) fn start() -> Option<NatsRow> {
        match Self::try_start() {
            Ok(row) => Some(row),
            Err(why) => {
                eprintln!("no nats row: {why}");
                None
            }
        }
    }

    fn try_start() -> Result<NatsRow, String> {
        let broker = Broker::start()?;
        let mut row = NatsRow {
            nodes: Vec::new(),
            strategy: strategy(&broker)?,
            _broker: broker,
        };
        let program = std::env::current_exe().map_err(|e| e.to_string())?;
        for _ in 0..NODES {
            let mut command = Command::new(&program);
            command
                .env(WORKER_ENV, row._broker.url())
                .env(ythread_executors::ENV_VAR, NODE_STRATEGY)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            // A comparison killed mid-run takes its nodes with it, as it does its broker.
            die_with_this_thread(&mut command);
            let mut node = command
                .spawn()
                .map_err(|e| format!("could not start a node: {e}"))?;
            let serving = serving(node.stderr.take().expect("stderr is piped"));
            row.nodes.push(node);
            serving
                .recv_timeout(NODE_START)
                .map_err(|_| format!("a node did not start serving within {NODE_START:?}"))?;
        }
        Ok(row)
    }

    /// The row's strategy: a caller of the broker, labelled by its set-up.
    pub(crate) fn strategy(&self) -> Strategy {
        self.strategy.clone()
    }
}

fn strategy(broker: &Broker) -> Result<Strategy, String> {
    let config: ExecutorConfig = broker.url().parse().map_err(|e| format!("{e}"))?;
    Ok(Strategy {
        label: format!("nats, {NODES} nodes of {NODE_STRATEGY}"),
        config,
        fifo_of: None,
    })
}

/// Signals once when the node says it serves; keeps reading its stderr so it never blocks.
fn serving(stderr: impl std::io::Read + Send + 'static) -> mpsc::Receiver<()> {
    let (ready, serving) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(": serving ") {
                let _ = ready.send(());
            }
        }
    });
    serving
}

impl Drop for NatsRow {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}
