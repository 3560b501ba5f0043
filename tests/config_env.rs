//! `ExecutorConfig::from_env` and `YTHREAD_EXECUTOR`.
//!
//! The environment is process-global, so this binary holds exactly one test, which walks
//! through every case in order: no other thread of the process reads or writes it meanwhile.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use ythread_executors::{ENV_VAR, ExecutorConfig};

fn set(value: &OsStr) {
    // SAFETY: `set_var` is unsafe because another thread might read or write the environment
    // at the same time (through libc too). This binary has a single test, and the harness's
    // main thread only waits for it; nothing else in the process touches the environment.
    unsafe { std::env::set_var(ENV_VAR, value) };
}

fn unset() {
    // SAFETY: as in `set`: the only thread touching the environment is this test's.
    unsafe { std::env::remove_var(ENV_VAR) };
}

#[test]
fn from_env_reads_ythread_executor() {
    assert_eq!(ENV_VAR, "YTHREAD_EXECUTOR");

    unset();
    assert_eq!(ExecutorConfig::from_env().unwrap(), ExecutorConfig::Inline);

    for blank in ["", "   "] {
        set(OsStr::new(blank));
        assert_eq!(
            ExecutorConfig::from_env().unwrap(),
            ExecutorConfig::Inline,
            "`{blank}`"
        );
    }

    for text in [
        "inline",
        "exclusive",
        "rayon:3,nice=4",
        "subprocess:2,timeout=2s",
    ] {
        set(OsStr::new(text));
        assert_eq!(
            ExecutorConfig::from_env().unwrap(),
            text.parse::<ExecutorConfig>().unwrap()
        );
    }

    set(OsStr::new("rayon:0"));
    let err = ExecutorConfig::from_env().unwrap_err();
    let message = err.to_string();
    assert!(err.is_config(), "{message}");
    assert!(
        message.starts_with("YTHREAD_EXECUTOR"),
        "names the variable: {message}"
    );
    assert!(
        message.contains("`rayon:0`") && message.contains("at least 1"),
        "{message}"
    );
    assert!(
        message.contains("rayon[:THREADS][,nice=N]"),
        "quotes the form: {message}"
    );
    assert!(!message.ends_with('.'), "{message}");

    set(OsStr::from_bytes(b"rayon:\xff"));
    let err = ExecutorConfig::from_env().unwrap_err();
    let message = err.to_string();
    assert!(err.is_config(), "{message}");
    assert!(
        message.contains("YTHREAD_EXECUTOR") && message.contains("unicode"),
        "{message}"
    );
    assert!(
        message.contains("valid strategies: inline, exclusive, rayon[:THREADS]"),
        "{message}"
    );

    unset();
}
