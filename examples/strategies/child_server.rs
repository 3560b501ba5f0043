//! The server of the crash-isolation section, run in a child process (`--serve-child
//! EXECUTOR`) so that a crash that takes its process down does not take the comparison down.
//!
//! Protocol: the sum server's (decimal `n` in, `sumn(n)` out, one line per request, many
//! requests per connection), plus the request `abort`, which yields the `abort_process` task
//! through the configured strategy. The first line on stdout is the port, or `error: ...`.
//! The child exits when its stdin closes, so it never outlives the parent.

use std::io::{self, BufRead, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use ythread::{Executor, YieldableThread, Yielder};
use ythread_executors::ExecutorConfig;
use ythread_suite::tasks::{abort_process, sumn};

/// The request that crashes whoever runs its task.
pub(crate) const ABORT_REQUEST: &[u8] = b"abort";

/// A connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn serve(config: &str) -> ExitCode {
    match start(config) {
        Ok((listener, executor)) => {
            watch_parent();
            accept_forever(&listener, &executor);
            ExitCode::FAILURE
        }
        Err(message) => {
            println!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn start(config: &str) -> Result<(TcpListener, Executor), String> {
    let executor = config
        .parse::<ExecutorConfig>()
        .and_then(|config| config.build())
        .map_err(|e| e.to_string())?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("could not listen on 127.0.0.1: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("could not read the bound port: {e}"))?
        .port();
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{port}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("could not tell the parent the port: {e}"))?;
    Ok((listener, executor))
}

/// Exits when the parent closes our stdin (or dies), so no child is ever left behind.
fn watch_parent() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::stdin().lock().read_until(b'\0', &mut sink);
        std::process::exit(0);
    });
}

fn accept_forever(listener: &TcpListener, executor: &Executor) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // A connection that gets no thread is dropped; the parent sees it as refused.
        let _ = YieldableThread::builder()
            .name("crash-child-conn".to_owned())
            .spawn(executor, move |y| serve_connection(y, stream));
    }
}

fn serve_connection(y: &Yielder<'_>, mut stream: TcpStream) {
    if stream.set_read_timeout(Some(IDLE_TIMEOUT)).is_err() {
        return;
    }
    let mut request = [0u8; 16];
    loop {
        let len = match stream.read(&mut request) {
            Ok(0) | Err(_) => return,
            Ok(len) => len,
        };
        let reply = answer(y, &request[..len]);
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(y: &Yielder<'_>, request: &[u8]) -> String {
    let request = request.trim_ascii();
    let outcome = if request == ABORT_REQUEST {
        y.apply(abort_process, ())
    } else {
        match std::str::from_utf8(request)
            .ok()
            .and_then(|t| t.parse().ok())
        {
            Some(n) => y.apply(sumn, n),
            None => return "error: send a decimal n or `abort`\n".to_owned(),
        }
    };
    match outcome {
        Ok(value) => format!("{value}\n"),
        Err(e) => format!("error: {e}\n"),
    }
}
