//! HTTP/1.1 on the serving layer, through the public API: heads split across writes, bodies
//! over the limit, bad request lines, HEAD, keep-alive and close, heads trickled past the
//! deadline, too many or too long headers, pipelining, and a client that never reads.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ythread::{Executor, Yielder};
use ythread_serve::http::{Body, Http, HttpLimits, Request, Response};
use ythread_serve::{RunningServer, ServeConfig, Server};

/// Longest any single wait may take before the test fails as hung.
const BOUND: Duration = Duration::from_secs(30);

/// Echoes what it got: `METHOD PATH?QUERY body-length`, or a large body for `/large`.
fn echo(_y: &Yielder<'_>, request: &Request, body: &mut Body<'_, '_>) -> Response {
    if request.path == "/ignore" {
        return Response::text(200, "ignored");
    }
    if request.path == "/large" {
        return Response::new(200, "application/octet-stream", vec![7u8; 1 << 20]);
    }
    Response::text(
        200,
        format!(
            "{} {}?{} {}",
            request.method,
            request.path,
            request.query,
            match body.read() {
                Ok(bytes) => bytes.len(),
                Err(refusal) => return refusal,
            }
        ),
    )
}

fn start(config: ServeConfig) -> RunningServer {
    let http = Http::new(echo).limits(HttpLimits {
        max_body: 1_000,
        ..HttpLimits::default()
    });
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Server::bind(addr, config, Executor::inline(), http)
        .unwrap()
        .spawn()
}

fn connect(server: &RunningServer) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    BufReader::new(stream)
}

/// One response: its status, headers (lowercased names) and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads one response; `head_only` for a reply to HEAD (no body follows its length).
fn read_reply(connection: &mut BufReader<TcpStream>, head_only: bool) -> Reply {
    let mut line = String::new();
    connection.read_line(&mut line).unwrap();
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        connection.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: String::new(),
    };
    let length: usize = reply.header("content-length").unwrap().parse().unwrap();
    if !head_only {
        let mut body = vec![0u8; length];
        connection.read_exact(&mut body).unwrap();
        reply.body = String::from_utf8_lossy(&body).into_owned();
    }
    reply
}

fn send(connection: &mut BufReader<TcpStream>, bytes: &[u8]) {
    connection.get_mut().write_all(bytes).unwrap();
}

fn assert_closed(connection: &mut BufReader<TcpStream>) {
    let mut rest = Vec::new();
    match connection.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "more after the last reply: {rest:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn keep_alive_serves_requests_in_order_until_connection_close() {
    let server = start(ServeConfig::default());
    let mut connection = connect(&server);
    send(&mut connection, b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    let reply = read_reply(&mut connection, false);
    assert_eq!((reply.status, reply.body.as_str()), (200, "GET /a?x=1 0\n"));
    assert_eq!(reply.header("connection"), None);
    // Pipelined, one with a body, the last one closing.
    send(
        &mut connection,
        b"POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\n\r\n\
          GET /d HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(read_reply(&mut connection, false).body, "POST /b? 5\n");
    assert_eq!(read_reply(&mut connection, false).body, "GET /c? 0\n");
    let last = read_reply(&mut connection, false);
    assert_eq!(last.body, "GET /d? 0\n");
    assert_eq!(last.header("connection"), Some("close"));
    assert_closed(&mut connection);
    server.shutdown().unwrap();
}

#[test]
fn a_body_the_handler_leaves_unread_ends_the_connection() {
    let server = start(ServeConfig::default());
    let mut connection = connect(&server);
    send(
        &mut connection,
        b"POST /ignore HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /never HTTP/1.1\r\n\r\n",
    );
    let reply = read_reply(&mut connection, false);
    assert_eq!((reply.status, reply.body.as_str()), (200, "ignored\n"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert_closed(&mut connection);
    server.shutdown().unwrap();
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = start(ServeConfig::default());
    let mut connection = connect(&server);
    send(
        &mut connection,
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(read_reply(&mut connection, false).status, 200);
    send(&mut connection, b"GET /b HTTP/1.0\r\n\r\n");
    assert_eq!(read_reply(&mut connection, false).body, "GET /b? 0\n");
    assert_closed(&mut connection);
    server.shutdown().unwrap();
}

#[test]
fn a_head_split_across_writes_is_put_together() {
    let server = start(ServeConfig::default());
    let mut connection = connect(&server);
    for piece in [
        &b"GE"[..],
        b"T /split HT",
        b"TP/1.1\r\nHo",
        b"st: h\r\n",
        b"\r\n",
    ] {
        send(&mut connection, piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(read_reply(&mut connection, false).body, "GET /split? 0\n");
    server.shutdown().unwrap();
}

#[test]
fn head_gets_the_length_and_no_body() {
    let server = start(ServeConfig::default());
    let mut connection = connect(&server);
    send(
        &mut connection,
        b"HEAD /h HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
    );
    let head = read_reply(&mut connection, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("11"));
    // Had a body followed, this would read it instead of the next reply.
    assert_eq!(read_reply(&mut connection, false).body, "GET /after? 0\n");
    server.shutdown().unwrap();
}

#[test]
fn bad_requests_get_a_status_with_a_reason_and_the_server_serves_on() {
    let server = start(ServeConfig::default());
    let many_headers: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    let long_header = format!("X-Long: {}\r\n", "v".repeat(9_000));
    let cases: [(Vec<u8>, u16, &str); 5] = [
        (b"NOT A REQUEST\r\n\r\n".to_vec(), 400, "malformed"),
        (
            b"POST /big HTTP/1.1\r\nContent-Length: 1001\r\n\r\n".to_vec(),
            413,
            "limit of 1000 bytes",
        ),
        (
            format!("GET / HTTP/1.1\r\n{many_headers}\r\n").into_bytes(),
            431,
            "more than 64 header fields",
        ),
        (
            format!("GET / HTTP/1.1\r\n{long_header}\r\n").into_bytes(),
            431,
            "longer than 8192 bytes",
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            501,
            "Content-Length",
        ),
    ];
    for (request, status, reason) in cases {
        let mut connection = connect(&server);
        // A write may fail once the server has answered and closed: the reply still counts.
        let _ = connection.get_mut().write_all(&request);
        let reply = read_reply(&mut connection, false);
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(reply.body.contains(reason), "{reply:?}");
        assert_eq!(reply.body.matches('\n').count(), 1, "{reply:?}");
        assert_eq!(reply.header("connection"), Some("close"));
        assert_closed(&mut connection);
    }
    let mut fine = connect(&server);
    send(&mut fine, b"GET /still HTTP/1.1\r\n\r\n");
    assert_eq!(read_reply(&mut fine, false).body, "GET /still? 0\n");
    server.shutdown().unwrap();
}

#[test]
fn a_head_trickled_past_the_deadline_gets_408() {
    let config = ServeConfig::default().turn_deadline(Duration::from_millis(300));
    let server = start(config);
    let mut connection = connect(&server);
    let started = Instant::now();
    let mut sent = 0;
    let request = b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n";
    // One byte every 100 ms: the head would take 3 s, the deadline is 300 ms.
    while sent < request.len() - 1 && started.elapsed() < BOUND {
        if connection
            .get_mut()
            .write_all(&request[sent..=sent])
            .is_err()
        {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
        if sent > 5 {
            break;
        }
    }
    let reply = read_reply(&mut connection, false);
    assert_eq!(reply.status, 408, "{reply:?}");
    assert!(reply.body.contains("did not arrive in time"), "{reply:?}");
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_never_reads_its_responses_is_cut_off() {
    let config = ServeConfig::default().write_timeout(Duration::from_millis(300));
    let server = start(config);
    let hog = connect(&server);
    hog.get_ref()
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Ask for 1 MiB responses and never read them: the socket buffers fill, the server's
    // write times out and it closes the connection, so the client's writes fail.
    let started = Instant::now();
    let mut cut_off = false;
    while started.elapsed() < BOUND {
        match hog.get_ref().write_all(b"GET /large HTTP/1.1\r\n\r\n") {
            Ok(()) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(_) => {
                cut_off = true;
                break;
            }
        }
    }
    assert!(
        cut_off,
        "the server kept a client that never reads for {BOUND:?}"
    );
    let mut other = connect(&server);
    send(&mut other, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(read_reply(&mut other, false).body, "GET /other? 0\n");
    server.shutdown().unwrap();
}

#[test]
fn the_busy_refusal_is_a_503() {
    let config = ServeConfig::default()
        .max_connections(1)
        .shed_idle_after(None);
    let server = start(config);
    let mut held = connect(&server);
    send(&mut held, b"GET /mine HTTP/1.1\r\n\r\n");
    assert_eq!(read_reply(&mut held, false).status, 200);
    let mut refused = connect(&server);
    let reply = read_reply(&mut refused, false);
    assert_eq!(reply.status, 503);
    assert!(reply.body.contains("server busy"), "{reply:?}");
    server.shutdown().unwrap();
}
