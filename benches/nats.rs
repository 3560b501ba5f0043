//! The `nats` strategy against the raw broker round trip, on one broker in one run.
//!
//! ```text
//! cargo bench --bench nats
//! ```
//!
//! | measure | how | bar |
//! |---|---|---|
//! | tiny round trip | `tiny` through `nats` (one node, inline) against a raw async-nats request/reply of the same bytes (a responder process that answers the same reply bytes at once), alternating in rounds; median of the per-round ratios | ≤ 1.3× |
//! | ~1 ms work, 1 node vs 2 nodes | `sumn(3_000_000)` from 4 callers through nodes of `rayon:1` (one job at once each); jobs/s, and each node's ceiling (1 / the task's time on one core) | none: both nodes share this machine's cores |
//! | no responders | a task no node serves: time to the `Unavailable` error, median and max | < 100 ms |
//! | broker restart | kill the broker, start it again on its port: time from the restart until a job succeeds, max of the rounds | ≤ 2 s |
//!
//! This binary is its own node program (`main` hands over to `ythread_executors::init`) and
//! its own raw responder (with [`RAW_RESPONDER`] set). `nats-server` must be installed;
//! without it the benchmark says how to install one and exits.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ythread::{Executor, YieldableThread};
use ythread_executors::{NatsConfig, NatsExecutor};
use ythread_suite::nats_broker::Broker;
use ythread_suite::tasks::{self, sumn, tiny};

/// Set (to the broker URL) in the environment of the raw responder process.
const RAW_RESPONDER: &str = "YTHREAD_BENCH_RAW_RESPONDER";

/// The raw responder's subject.
const RAW_SUBJECT: &str = "bench.raw";

fn main() {
    // Only the tasks that compute: its nodes serve no fault-injection task.
    ythread_executors::init(tasks::work_registry());
    if let Ok(url) = std::env::var(RAW_RESPONDER) {
        raw_responder(&url);
        return;
    }
    let mut broker = match Broker::start() {
        Ok(broker) => broker,
        Err(why) => {
            println!("nats benchmark skipped: {why}");
            return;
        }
    };
    println!(
        "broker {} (both nodes and callers share this machine's cores)",
        broker.url()
    );
    tiny_round_trip(&broker);
    one_node_against_two(&broker);
    no_responders(&broker);
    broker_restart(&mut broker);
}

/// A worker node: this program with `YTHREAD_WORKER` set, killed on drop.
struct Node(Child);

impl Node {
    fn start(broker: &Broker, local: &str) -> Node {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("YTHREAD_WORKER", broker.url())
            .env("YTHREAD_EXECUTOR", local)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        wait_for_line(stderr, ": serving ");
        Node(child)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `pipe` until a line contains `marker` (bounded), then keeps draining it.
fn wait_for_line(pipe: impl std::io::Read + Send + 'static, marker: &'static str) {
    use std::io::BufRead;
    let (seen, wait) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = seen.send(());
            }
        }
    });
    wait.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no `{marker}` line within 30 s"));
}

fn caller(broker: &Broker, options: &str) -> Executor {
    let text = format!("{}{options}", broker.url());
    let config: NatsConfig = match text.parse() {
        Ok(ythread_executors::ExecutorConfig::Nats(config)) => config,
        other => panic!("{text} is not a nats config: {other:?}"),
    };
    Executor::new(NatsExecutor::connect(config, tasks::work_registry()).unwrap())
}

/// A small runtime and client for the raw side.
fn raw_client(url: &str) -> (tokio::runtime::Runtime, async_nats::Client) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async_nats::connect(url)).unwrap();
    (runtime, client)
}

/// Answers every request on [`RAW_SUBJECT`] with the bytes a node answers `tiny` with.
fn raw_responder(url: &str) {
    let (runtime, client) = raw_client(url);
    // The reply a node sends for `tiny`: done tag, run time, the postcard result.
    let mut reply = vec![0u8; 9];
    reply.extend(postcard::to_stdvec(&42u64).unwrap());
    let reply = bytes::Bytes::from(reply);
    runtime.block_on(async move {
        let mut requests = client.subscribe(RAW_SUBJECT).await.unwrap();
        client.flush().await.unwrap();
        eprintln!("raw responder: serving");
        while let Some(request) = requests.next().await {
            if let Some(to) = request.reply {
                let _ = client.publish(to, reply.clone()).await;
            }
        }
    });
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn tiny_round_trip(broker: &Broker) {
    let _node = Node::start(broker, "inline");
    let mut responder = Command::new(std::env::current_exe().unwrap())
        .env(RAW_RESPONDER, broker.url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_line(responder.stderr.take().unwrap(), "raw responder: serving");
    let executor = caller(broker, "");
    let (runtime, client) = raw_client(&broker.url());
    // The job body `nats` sends for `tiny(41)`: the task name, then the argument.
    let name = <tiny as ythread::Task>::NAME;
    let mut job = postcard::to_stdvec(&name).unwrap();
    job.extend(postcard::to_stdvec(&41u64).unwrap());
    let job = bytes::Bytes::from(job);
    let raw = || {
        let reply = runtime.block_on(client.request(RAW_SUBJECT, job.clone()));
        black_box(reply.unwrap());
    };
    let ours = |i: u64| black_box(executor.run(tiny, i).unwrap());
    for i in 0..3_000 {
        raw();
        ours(i);
    }
    let (rounds, per_round) = (30, 200);
    let (mut raw_us, mut ours_us, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..per_round {
            raw();
        }
        let raw_time = started.elapsed().as_secs_f64() * 1e6 / per_round as f64;
        let started = Instant::now();
        for i in 0..per_round {
            ours(i);
        }
        let ours_time = started.elapsed().as_secs_f64() * 1e6 / per_round as f64;
        raw_us.push(raw_time);
        ours_us.push(ours_time);
        ratios.push(ours_time / raw_time);
    }
    let ratio = median(&mut ratios);
    println!(
        "tiny round trip: nats {:.1} us, raw async-nats request/reply {:.1} us (medians of {rounds} \
         rounds of {per_round}); ratio {ratio:.2}x (bar <= 1.3x: {})",
        median(&mut ours_us),
        median(&mut raw_us),
        if ratio <= 1.3 { "met" } else { "MISSED" }
    );
    let _ = responder.kill();
    let _ = responder.wait();
}

fn one_node_against_two(broker: &Broker) {
    // About 1 ms on this machine's cores (sumn costs about 0.35 ns a step in release builds).
    let n = 3_000_000;
    let jobs_per_caller = 60;
    let callers = 4;
    let mut rates = Vec::new();
    let mut ceiling = f64::NAN;
    for nodes in [1, 2] {
        let _nodes: Vec<Node> = (0..nodes).map(|_| Node::start(broker, "rayon:1")).collect();
        let executor = caller(broker, "");
        // Warm up: connections, the nodes' first runs.
        for _ in 0..10 {
            executor.run(sumn, n).unwrap();
        }
        let started = Instant::now();
        let handlers: Vec<_> = (0..callers)
            .map(|_| {
                YieldableThread::spawn(&executor, move |y| {
                    for _ in 0..jobs_per_caller {
                        y.apply(sumn, n).unwrap();
                    }
                })
            })
            .collect();
        for handler in handlers {
            handler.join().unwrap();
        }
        let rate = (callers * jobs_per_caller) as f64 / started.elapsed().as_secs_f64();
        if nodes == 1 {
            // What the node measured a run to take (it reports each run's time in its reply).
            let metrics = executor.metrics();
            let learned = metrics
                .task("::sumn")
                .and_then(|t| t.learned.first().cloned());
            let run = learned.map_or(Duration::ZERO, |l| l.cost);
            ceiling = 1.0 / run.as_secs_f64();
            println!(
                "~1 ms work: sumn({n}) ran {:.2} ms on the node, so a node running one job at \
                 once tops out near {ceiling:.0} jobs/s",
                run.as_secs_f64() * 1e3
            );
        }
        println!(
            "  {nodes} node(s) of rayon:1, {callers} callers: {rate:.0} jobs/s ({:.0}% of {nodes} x \
             the per-node ceiling)",
            100.0 * rate / (ceiling * nodes as f64)
        );
        rates.push(rate);
    }
    println!(
        "  2 nodes / 1 node: {:.2}x (the nodes, the broker and the callers share this machine's \
         {} cores)",
        rates[1] / rates[0],
        thread::available_parallelism().map_or(1, |n| n.get())
    );
}

fn no_responders(broker: &Broker) {
    // No node listens under this prefix.
    let executor = caller(broker, ",subject=nobody");
    let mut times = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let error = executor.run(tiny, 1).unwrap_err();
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(error.kind(), ythread::ErrorKind::Unavailable, "{error}");
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "no responders: error after {:.3} ms median, {max:.3} ms max (bar < 100 ms: {})",
        median(&mut times),
        if max < 100.0 { "met" } else { "MISSED" }
    );
}

fn broker_restart(broker: &mut Broker) {
    let _node = Node::start(broker, "inline");
    let executor = caller(broker, ",timeout=1s");
    executor.run(tiny, 1).unwrap();
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        broker.restart().unwrap_or_else(|e| panic!("{e}"));
        let restarted = Instant::now();
        let limit = Duration::from_secs(30);
        while executor.run(tiny, 1).is_err() {
            assert!(restarted.elapsed() < limit, "no recovery within {limit:?}");
            thread::sleep(Duration::from_millis(1));
        }
        worst = worst.max(restarted.elapsed());
    }
    println!(
        "broker restart: jobs succeed again {:.0} ms after the broker is back (worst of 3; bar \
         <= 2 s: {})",
        worst.as_secs_f64() * 1e3,
        if worst <= Duration::from_secs(2) {
            "met"
        } else {
            "MISSED"
        }
    );
}
