//! The `sumserver` example end to end, as a separate process on 127.0.0.1 with an OS-chosen
//! port: under every strategy it answers concurrent clients correctly, and SIGTERM (or SIGINT)
//! stops it with status 0 and leaves no process behind; with `--stats` it then prints what
//! each task ran.

mod sumserver_support;

use std::thread;

use sumserver_support::{BOUND, ServerProcess, descendants, wait_until_gone};
use ythread_suite::client::{Connection, LoadConfig, run_load};
use ythread_suite::server::Work;

/// The worker processes `subprocess:N` adds to its N: by default one express worker, which
/// takes only work predicted short.
const EXPRESS_WORKERS: usize = 1;

/// Concurrent clients on kept connections, each asking for its own values of n, so an answer
/// that went to the wrong connection would be caught.
fn distinct_requests_on_concurrent_connections(server: &ServerProcess) {
    thread::scope(|scope| {
        for client in 0..4u64 {
            scope.spawn(move || {
                let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
                for i in 0..10u64 {
                    let n = 10_000 * client + 1_000 * i + 7;
                    let reply = connection.request(n.to_string().as_bytes()).unwrap();
                    assert_eq!(reply, Work::Sumn.expected(n).to_string(), "sumn({n})");
                }
            });
        }
    });
}

/// The article's pattern: a new connection per request, several clients at once.
fn article_load(server: &ServerProcess) {
    let config = LoadConfig {
        clients: 4,
        requests: 40,
        n: 25_000,
        timeout: BOUND,
        max_duration: BOUND,
        ..LoadConfig::new(server.addr())
    };
    let report = run_load(&config, |n| Some(Work::Sumn.expected(n)));
    assert_eq!(
        (report.ok, report.errors, report.not_sent),
        (40, 0, 0),
        "{report}"
    );
}

/// Serves under `strategy`, then stops it with `signal` and checks it left nothing behind.
fn serve_and_stop(strategy: &str, workers: usize, signal: libc::c_int) {
    let mut server = ServerProcess::start(&["--executor", strategy]);
    distinct_requests_on_concurrent_connections(&server);
    article_load(&server);

    let children = descendants(server.pid());
    assert_eq!(
        children.len(),
        workers,
        "{strategy}: expected {workers} worker processes, found {children:?}"
    );
    // A kept connection that stays open and idle must not hold the stop up.
    let mut idle = Connection::connect(server.addr(), BOUND).unwrap();
    assert_eq!(idle.request(b"10").unwrap(), "55");

    stop_and_check(&mut server, strategy, signal, &children);
    assert!(
        idle.request(b"10").is_err(),
        "{strategy}: the idle connection still works after the server exited"
    );
}

/// Sends `signal`, expects exit status 0 and `children` gone.
fn stop_and_check(server: &mut ServerProcess, strategy: &str, signal: i32, children: &[u32]) {
    server.signal(signal);
    let status = server
        .wait_for_exit(BOUND)
        .unwrap_or_else(|| panic!("{strategy}: still running {BOUND:?} after signal {signal}"));
    assert!(
        status.success(),
        "{strategy}: exit status {status} after signal {signal}; stderr: {}",
        server.stderr()
    );
    let left = wait_until_gone(children, BOUND);
    assert!(
        left.is_empty(),
        "{strategy}: processes {left:?} outlived the server"
    );
}

#[test]
fn inline_serves_concurrent_clients_and_stops_on_sigterm() {
    serve_and_stop("inline", 0, libc::SIGTERM);
}

#[test]
fn inline_stops_on_sigint_too() {
    let mut server = ServerProcess::start(&["--executor", "inline"]);
    article_load(&server);
    server.signal(libc::SIGINT);
    let status = server
        .wait_for_exit(BOUND)
        .expect("the server exits after SIGINT");
    assert!(
        status.success(),
        "exit status {status}; stderr: {}",
        server.stderr()
    );
}

#[test]
fn exclusive_serves_concurrent_clients_and_stops_on_sigterm() {
    serve_and_stop("exclusive", 0, libc::SIGTERM);
}

#[test]
fn rayon_serves_concurrent_clients_and_stops_on_sigterm() {
    serve_and_stop("rayon:2", 0, libc::SIGTERM);
}

#[test]
fn subprocess_serves_concurrent_clients_and_stops_on_sigterm() {
    // Regular workers at the handlers' priority: in the idle class (the default) they may get
    // no CPU for seconds on a machine busy with other work, and this test is about serving
    // and stopping, not about priorities.
    serve_and_stop("subprocess:2,nice=0", 2 + EXPRESS_WORKERS, libc::SIGTERM);
}

#[test]
fn subprocess_answers_a_runaway_request_with_an_error_and_serves_on() {
    // The worker at the handlers' priority, as above: the request after the runaway one
    // must not wait for CPU the idle class may not get.
    let strategy = "subprocess:1,timeout=2s,nice=0";
    let mut server = ServerProcess::start(&["--executor", strategy, "--max-n", "9999999999999999"]);
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    // 10^16 steps: months of work, so the deadline always strikes first.
    let reply = connection.request(b"9999999999999999").unwrap();
    assert!(
        reply.starts_with("error: ") && reply.contains("did not finish within 2s"),
        "{reply:?}"
    );
    assert_eq!(connection.request(b"25000").unwrap(), "312512500");
    let workers = descendants(server.pid());
    assert_eq!(
        workers.len(),
        1 + EXPRESS_WORKERS,
        "the killed worker was replaced: {workers:?}"
    );
    stop_and_check(&mut server, strategy, libc::SIGTERM, &workers);
}

#[test]
fn stats_prints_a_summary_per_task_after_a_graceful_stop() {
    let mut server = ServerProcess::start(&["--executor", "rayon:2", "--stats"]);
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    let sizes = [10u64, 25_000, 7, 250_000, 1_000];
    for n in sizes {
        let reply = connection.request(n.to_string().as_bytes()).unwrap();
        assert_eq!(reply, Work::Sumn.expected(n).to_string(), "sumn({n})");
    }
    server.signal(libc::SIGTERM);
    let status = server
        .wait_for_exit(BOUND)
        .expect("the server exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status}; stderr: {}",
        server.stderr()
    );
    let stats = server
        .stdout_after_first_line(BOUND)
        .expect("stdout closes once the server has exited");
    let line = stats
        .lines()
        .find(|line| line.contains("sumn"))
        .unwrap_or_else(|| panic!("no summary line names sumn in {stats:?}"));
    assert!(
        line.contains(&format!("{} runs", sizes.len())),
        "the summary counts every request's run: {line}"
    );
}

#[test]
fn without_stats_nothing_follows_the_listening_line() {
    let mut server = ServerProcess::start(&["--executor", "inline"]);
    let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
    assert_eq!(connection.request(b"10").unwrap(), "55");
    server.signal(libc::SIGTERM);
    let status = server.wait_for_exit(BOUND).expect("the server exits");
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        server.stdout_after_first_line(BOUND).as_deref(),
        Some(""),
        "stdout carries only the listening line"
    );
}

#[test]
fn an_invalid_executor_is_refused_with_the_valid_forms() {
    let output = std::process::Command::new(sumserver_support::sumserver_binary())
        .args(["--addr", "127.0.0.1:0", "--executor", "threads:4"])
        .env_remove("YTHREAD_EXECUTOR")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown strategy `threads`"), "{stderr}");
    assert!(stderr.contains("rayon"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing is listening, so nothing is announced"
    );
}

/// The server's open descriptors, counted in `/proc`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the server's fd table is readable")
        .count()
}

#[test]
fn a_connection_holds_one_descriptor_and_gives_it_back_when_it_closes() {
    let server = ServerProcess::start(&["--executor", "inline"]);
    // Once a first connection is answered the accept loop is set up; keep that connection
    // open, so it is in both counts.
    let mut first = Connection::connect(server.addr(), BOUND).unwrap();
    assert_eq!(first.request(b"1").unwrap(), "1");
    let before = open_fds(server.pid());
    let mut connections: Vec<Connection> = (0..50)
        .map(|_| Connection::connect(server.addr(), BOUND).unwrap())
        .collect();
    for connection in &mut connections {
        // Answered, so the server has admitted the connection.
        assert_eq!(connection.request(b"3").unwrap(), "6");
    }
    assert_eq!(
        open_fds(server.pid()),
        before + 50,
        "one descriptor per connection"
    );
    drop(connections);
    drop(first);
    let before = before - 1;
    let deadline = std::time::Instant::now() + BOUND;
    while open_fds(server.pid()) != before {
        assert!(
            std::time::Instant::now() < deadline,
            "the server still holds {} descriptors, {before} before the connections",
            open_fds(server.pid())
        );
        thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn out_of_descriptors_newcomers_are_told_so_and_the_open_connections_are_served() {
    // Room for the server's own descriptors and a few connections, and a cap above that.
    let mut server = ServerProcess::start_with_fd_limit(
        32,
        &["--executor", "inline", "--max-connections", "1000"],
    );
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let mut connection = Connection::connect(server.addr(), BOUND).unwrap();
        match connection.request(b"3") {
            Ok(reply) if reply == "6" => open.push(connection),
            Ok(reply) => {
                assert!(
                    reply.starts_with("error: server busy: out of file descriptors"),
                    "{reply}"
                );
                refused += 1;
            }
            Err(e) => panic!("a newcomer got no answer: {e}"),
        }
    }
    assert!(
        !open.is_empty() && refused > 0,
        "{} open, {refused} refused",
        open.len()
    );
    for connection in &mut open {
        assert_eq!(
            connection.request(b"4").unwrap(),
            "10",
            "an open connection"
        );
    }
    drop(open);
    server.signal(libc::SIGTERM);
    assert!(
        server
            .wait_for_exit(BOUND)
            .is_some_and(|status| status.success())
    );
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches("out of file descriptors").count(),
        1,
        "said once: {stderr}"
    );
}
