//! End-to-end tests of the `thumbnails` example: the images are made here, sent over real
//! HTTP to the example running as a child process, and the thumbnails decoded back.

mod sumserver_support;
mod thumbnails_images;

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::ImageFormat;
use sumserver_support::{BOUND, ServerProcess, descendants, example_binary, is_alive};
use thumbnails_images::{bomb, encoded, picture};
use ythread_suite::client::http::{HttpReply, http_request};

/// Each request's connect, write and read is bounded by this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn start(args: &[&str]) -> ServerProcess {
    ServerProcess::start_example("thumbnails", args)
}

fn post(addr: SocketAddr, target: &str, body: &[u8]) -> HttpReply {
    http_request(addr, "POST", target, body, REQUEST_TIMEOUT)
        .unwrap_or_else(|e| panic!("POST {target} to {addr} failed: {e}"))
}

/// The dimensions of a thumbnail reply, checking that it is a PNG.
fn thumbnail_size(reply: &HttpReply) -> (u32, u32) {
    assert_eq!(reply.status, 200, "reply: {}", reply.text());
    assert_eq!(reply.content_type.as_deref(), Some("image/png"));
    let thumbnail = image::load_from_memory_with_format(&reply.body, ImageFormat::Png)
        .expect("the reply is a PNG");
    (thumbnail.width(), thumbnail.height())
}

#[test]
fn png_and_jpeg_bodies_get_png_thumbnails_of_the_width_asked_for() {
    let server = start(&["--executor", "inline"]);
    let png = encoded(&picture(640, 480), ImageFormat::Png);
    let reply = post(server.addr(), "/thumbnail?width=160", &png);
    assert_eq!(thumbnail_size(&reply), (160, 120));
    let jpeg = encoded(&picture(300, 200), ImageFormat::Jpeg);
    let reply = post(server.addr(), "/thumbnail?width=90", &jpeg);
    assert_eq!(thumbnail_size(&reply), (90, 60));
    // Larger than the original is a resize too; the height keeps the ratio, rounded.
    let reply = post(server.addr(), "/thumbnail?quality=9&width=1000", &png);
    assert_eq!(thumbnail_size(&reply), (1000, 750));
}

/// Every bad input with the status and a word of the reason it must get.
fn bad_requests() -> Vec<(&'static str, &'static str, Vec<u8>, u16, &'static str)> {
    let png = encoded(&picture(320, 240), ImageFormat::Png);
    let truncated = png[..png.len() / 2].to_vec();
    vec![
        (
            "POST",
            "/thumbnail?width=64",
            b"this is not an image".to_vec(),
            415,
            "not a PNG or JPEG",
        ),
        (
            "POST",
            "/thumbnail?width=64",
            truncated,
            422,
            "does not decode",
        ),
        ("POST", "/thumbnail?width=64", bomb(), 422, "20000x20000"),
        (
            "POST",
            "/thumbnail?width=64",
            vec![7u8; 300_000],
            413,
            "limit of 200000 bytes",
        ),
        ("POST", "/thumbnail?width=64", Vec::new(), 400, "empty"),
        ("POST", "/thumbnail?width=0", png.clone(), 400, "width `0`"),
        (
            "POST",
            "/thumbnail?width=abc",
            png.clone(),
            400,
            "width `abc`",
        ),
        (
            "POST",
            "/thumbnail?width=99999",
            png.clone(),
            400,
            "from 1 to 2048",
        ),
        ("POST", "/thumbnail", png.clone(), 400, "no width"),
        (
            "POST",
            "/thumbnails?width=64",
            png.clone(),
            404,
            "no such path",
        ),
        (
            "GET",
            "/thumbnail?width=64",
            Vec::new(),
            405,
            "POST an image",
        ),
    ]
}

/// Sends every bad request at once, each next to a good one, and checks both.
fn bad_inputs_fail_alone(server: &ServerProcess) {
    let good = encoded(&picture(400, 300), ImageFormat::Jpeg);
    std::thread::scope(|scope| {
        let mut checks = Vec::new();
        for (method, target, body, status, reason) in bad_requests() {
            let addr = server.addr();
            checks.push(scope.spawn(move || {
                let reply = http_request(addr, method, target, &body, REQUEST_TIMEOUT)
                    .unwrap_or_else(|e| panic!("{method} {target} failed: {e}"));
                assert_eq!(reply.status, status, "{method} {target}: {}", reply.text());
                assert!(
                    reply.text().contains(reason),
                    "{method} {target}: {}",
                    reply.text()
                );
                assert_eq!(
                    reply.text().lines().count(),
                    1,
                    "one line: {}",
                    reply.text()
                );
            }));
            let good = &good;
            checks.push(scope.spawn(move || {
                assert_eq!(
                    thumbnail_size(&post(addr, "/thumbnail?width=80", good)),
                    (80, 60)
                );
            }));
        }
        for check in checks {
            check.join().expect("a request got the wrong answer");
        }
    });
}

#[test]
fn bad_inputs_get_their_status_and_reason_while_good_requests_are_served_in_process() {
    let server = start(&["--executor", "rayon:2", "--max-body", "200000"]);
    bad_inputs_fail_alone(&server);
}

#[test]
fn bad_inputs_get_their_status_and_reason_while_good_requests_are_served_by_workers() {
    // A deadline far past what any of these jobs takes, even on a loaded machine, and workers
    // at the handlers' priority rather than in the idle class, which may get no CPU for
    // seconds there: this test is about the answers, not the deadline.
    let server = start(&[
        "--executor",
        "subprocess:2,nice=0,timeout=30s",
        "--max-body",
        "200000",
    ]);
    bad_inputs_fail_alone(&server);
}

#[test]
fn turning_the_decoder_limits_off_is_refused_without_a_memory_cap() {
    for strategy in ["inline", "rayon:2", "exclusive", "subprocess:2,timeout=2s"] {
        let mut child = Command::new(example_binary("thumbnails"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--decoder-limits",
                "off",
                "--executor",
                strategy,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the thumbnails example starts");
        let deadline = Instant::now() + BOUND;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting on the example works") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("the example under {strategy} did not refuse to start within {BOUND:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr is piped")
            .read_to_string(&mut stderr)
            .expect("stderr reads");
        assert!(!status.success(), "{strategy}: {status}");
        assert!(
            stderr.contains("needs a subprocess strategy with a memory cap"),
            "{stderr}"
        );
    }
}

#[test]
fn a_bomb_the_decoder_limits_reject_costs_no_worker() {
    // A bomb with the limits on costs nothing; the pool keeps its workers. Workers at the
    // handlers' priority, not in the idle class, and a deadline far past the job: on a machine
    // busy with other work an idle-class worker may get no CPU for seconds.
    let server = start(&["--executor", "subprocess:2,nice=0,timeout=30s"]);
    let workers = descendants(server.pid());
    let reply = post(server.addr(), "/thumbnail?width=64", &bomb());
    assert_eq!(reply.status, 422, "{}", reply.text());
    let png = encoded(&picture(64, 64), ImageFormat::Png);
    assert_eq!(
        thumbnail_size(&post(server.addr(), "/thumbnail?width=32", &png)),
        (32, 32)
    );
    let mut after = descendants(server.pid());
    let mut before = workers;
    after.sort_unstable();
    before.sort_unstable();
    assert_eq!(before, after, "the rejected bomb cost no worker");
}

/// The pool's workers: the server's children (they have no children of their own).
fn workers_of(server: &ServerProcess) -> Vec<u32> {
    let mut workers = descendants(server.pid());
    workers.sort_unstable();
    workers
}

/// Waits at most [`BOUND`] until the server has `count` workers; returns them.
fn wait_for_workers(server: &ServerProcess, count: usize) -> Vec<u32> {
    let deadline = Instant::now() + BOUND;
    loop {
        let workers = workers_of(server);
        if workers.len() == count {
            return workers;
        }
        assert!(
            Instant::now() < deadline,
            "the server still has workers {workers:?} after {BOUND:?}, not {count}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_bomb_past_the_workers_memory_cap_costs_one_worker_and_the_server_keeps_serving() {
    // Workers at the handlers' priority and a deadline far past the job, as above: this test
    // is about the memory cap, and the bomb must reach it however busy the machine is.
    let server = start(&[
        "--executor",
        "subprocess:2,nice=0,timeout=30s,memory=256MiB",
        "--decoder-limits",
        "off",
    ]);
    // Two regular workers and the express one.
    let before = wait_for_workers(&server, 3);
    let good = encoded(&picture(400, 300), ImageFormat::Png);
    let (bomb_reply, good_replies) = std::thread::scope(|scope| {
        let addr = server.addr();
        let bomb = scope.spawn(move || post(addr, "/thumbnail?width=64", &bomb()));
        let goods: Vec<_> = (0..4)
            .map(|_| {
                let good = &good;
                scope.spawn(move || post(addr, "/thumbnail?width=100", good))
            })
            .collect();
        let goods: Vec<HttpReply> = goods.into_iter().map(|g| g.join().unwrap()).collect();
        (bomb.join().unwrap(), goods)
    });
    assert_eq!(bomb_reply.status, 422, "{}", bomb_reply.text());
    assert!(
        bomb_reply
            .text()
            .contains("exceeded its memory limit of 256 MiB"),
        "{}",
        bomb_reply.text()
    );
    for reply in &good_replies {
        assert_eq!(thumbnail_size(reply), (100, 75));
    }
    // The pool heals: still three workers, exactly one of them new.
    let after = wait_for_workers(&server, 3);
    let lost: Vec<u32> = before
        .iter()
        .copied()
        .filter(|pid| !after.contains(pid))
        .collect();
    assert_eq!(lost.len(), 1, "before {before:?}, after {after:?}");
    assert_eq!(
        thumbnail_size(&post(server.addr(), "/thumbnail?width=40", &good)),
        (40, 30)
    );
}

/// Sends a request head declaring `declared` body bytes, three of them, and hangs up its
/// side; returns the reply's status line and the open connection.
fn lie_about_the_length(addr: SocketAddr, declared: u64) -> (String, std::net::TcpStream) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    let head = format!(
        "POST /thumbnail?width=10 HTTP/1.1\r\nHost: test\r\nContent-Length: {declared}\r\n\r\nabc"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 1024];
    while !reply.windows(2).any(|w| w == b"\r\n") {
        let len = stream.read(&mut chunk).expect("a reply within the timeout");
        assert!(len > 0, "the server closed without a reply: {reply:?}");
        reply.extend_from_slice(&chunk[..len]);
    }
    let text = String::from_utf8_lossy(&reply).into_owned();
    (text.lines().next().unwrap_or_default().to_owned(), stream)
}

#[test]
fn get_sum_answers_sumn_and_refuses_a_bad_n() {
    let server = start(&["--executor", "inline"]);
    let get = |target: &str| {
        http_request(server.addr(), "GET", target, b"", REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("GET {target} failed: {e}"))
    };
    let reply = get("/sum?n=25000");
    assert_eq!((reply.status, reply.text().trim()), (200, "312512500"));
    for target in ["/sum", "/sum?n=-1", "/sum?n=x", "/sum?n=1000000001"] {
        let reply = get(target);
        assert_eq!(reply.status, 400, "{target}: {}", reply.text());
        assert!(
            reply.text().contains("whole number from 0 to"),
            "{}",
            reply.text()
        );
    }
    let reply = post(server.addr(), "/sum?n=1", b"");
    assert_eq!(reply.status, 405, "{}", reply.text());
}

#[test]
fn a_body_declared_far_longer_than_sent_gets_413_and_the_server_keeps_serving() {
    // Without a backtrace to print, a process whose allocation fails aborts at once: so if
    // the first request below were to abort the server, it would be gone before the next.
    let server = ServerProcess::start_example_with_env(
        "thumbnails",
        &["--executor", "inline"],
        &[("RUST_BACKTRACE", "0")],
    );
    // Past what the machine could reserve: refused before a byte of the body is read, so no
    // buffer of the declared length is ever reserved.
    let (status, _refused) = lie_about_the_length(server.addr(), 100_000_000_000);
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // Over the limit but small enough to drain: the server drains what comes (three bytes,
    // then end of stream) and closes.
    let (status, mut drained) = lie_about_the_length(server.addr(), 100_000_000);
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    let mut rest = Vec::new();
    drained
        .read_to_end(&mut rest)
        .expect("the server closes a drained connection within the timeout");
    let png = encoded(&picture(64, 64), ImageFormat::Png);
    for _ in 0..3 {
        assert_eq!(
            thumbnail_size(&post(server.addr(), "/thumbnail?width=16", &png)),
            (16, 16)
        );
    }
    assert!(
        is_alive(server.pid()),
        "the server died: {}",
        server.stderr()
    );
}

#[test]
fn requests_past_max_in_flight_get_503_and_the_next_ones_are_served() {
    use std::io::Write;
    let server = start(&["--executor", "inline", "--max-in-flight", "1"]);
    let png = encoded(&picture(64, 64), ImageFormat::Png);
    // A request whose body is half sent holds the only place while its handler reads. Until
    // its handler has taken the place, a probe may get it instead, and the slow request its
    // 503 (which also means it holds no place): then start over with a fresh slow request.
    let start_slow = || {
        let mut slow =
            std::net::TcpStream::connect_timeout(&server.addr(), REQUEST_TIMEOUT).unwrap();
        write!(
            slow,
            "POST /thumbnail?width=8 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            png.len()
        )
        .unwrap();
        slow.write_all(&png[..png.len() / 2]).unwrap();
        slow.set_nonblocking(true).unwrap();
        slow
    };
    let deadline = Instant::now() + BOUND;
    let mut slow = start_slow();
    loop {
        let reply = post(server.addr(), "/thumbnail?width=8", &png);
        if reply.status == 503 {
            assert!(
                reply.text().contains("handling 1 requests already"),
                "{}",
                reply.text()
            );
            break;
        }
        assert_eq!(thumbnail_size(&reply), (8, 8));
        assert!(Instant::now() < deadline, "no 503 within {BOUND:?}");
        let mut peek = [0u8; 1];
        if slow.peek(&mut peek).is_ok() {
            // The slow request was answered (its 503): it holds nothing.
            slow = start_slow();
        }
        // A pause lets the slow request's handler reach the place before the next probe; the
        // test is right however long it takes.
        std::thread::sleep(Duration::from_millis(5));
    }
    slow.set_nonblocking(false).unwrap();
    slow.set_read_timeout(Some(REQUEST_TIMEOUT)).unwrap();
    slow.write_all(&png[png.len() / 2..]).unwrap();
    let mut reply = Vec::new();
    slow.read_to_end(&mut reply)
        .expect("the slow request's reply");
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply[..40.min(reply.len())])
    );
    assert_eq!(
        thumbnail_size(&post(server.addr(), "/thumbnail?width=8", &png)),
        (8, 8)
    );
}
