//! Programs beyond the Rust toolchain that some tests need (`nats-server`, `wrk`).
//!
//! `cargo test --workspace` passes on a machine with only the toolchain: a test whose
//! program is missing is skipped, saying which program and how to install it. CI must not
//! skip what it means to run, so with [`REQUIRE_TOOLS_ENV`] set to `1` (`.ci/run` sets it) a
//! missing program fails the test instead.
//!
//! Trade-off: the test harness has no "skipped" outcome, so a skipped test returns early and
//! is counted as passed. Its reason goes straight to the process's stderr, past the
//! harness's capture of test output, so that it shows in a plain `cargo test` run.

use std::io::Write;
use std::path::PathBuf;

/// Set to `1` to make a missing program fail the tests that need it instead of skipping them.
pub const REQUIRE_TOOLS_ENV: &str = "YTHREAD_REQUIRE_TOOLS";

/// A program some tests need, and how to install it.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// The program's file name.
    pub name: &'static str,
    /// What to do when it is missing.
    pub install: &'static str,
}

/// The NATS broker, for the tests of the `nats` strategy.
pub const NATS_SERVER: Tool = Tool {
    name: "nats-server",
    install: "install nats-server (Debian and Ubuntu: `apt-get install -y nats-server`; \
              elsewhere see the NATS documentation) and put it on PATH",
};

/// The HTTP load generator.
pub const WRK: Tool = Tool {
    name: "wrk",
    install: "install wrk (Debian and Ubuntu: `apt-get install -y wrk`; macOS: `brew install \
              wrk`) and put it on PATH",
};

/// Where distributions put programs that are not on every user's `PATH`.
const SYSTEM_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

impl Tool {
    /// The program: on `PATH`, or in a system directory; `None` if it is in neither.
    pub fn find(&self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
            .map(|dir| dir.join(self.name))
            .find(|candidate| candidate.is_file())
    }

    /// The program for the calling test, or `None` when the test should skip: then the reason
    /// and the install hint are printed. With [`REQUIRE_TOOLS_ENV`] set to `1`, a missing
    /// program panics instead, failing the test.
    pub fn for_test(&self) -> Option<PathBuf> {
        self.for_test_reporting_to(tools_required(), &mut std::io::stderr())
    }

    /// [`Tool::for_test`], with the requirement given and the skip written to `out`.
    fn for_test_reporting_to(&self, required: bool, out: &mut impl Write) -> Option<PathBuf> {
        if let Some(program) = self.find() {
            return Some(program);
        }
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let why = format!("no {} found; {}", self.name, self.install);
        assert!(
            !required,
            "{test}: {why} ({REQUIRE_TOOLS_ENV}=1 makes a missing program fail the test)"
        );
        let _ = writeln!(
            out,
            "skipped {test}: {why} (it would fail with {REQUIRE_TOOLS_ENV}=1)"
        );
        None
    }
}

/// Whether a missing program fails the tests that need it.
fn tools_required() -> bool {
    std::env::var(REQUIRE_TOOLS_ENV).is_ok_and(|value| value == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MISSING: Tool = Tool {
        name: "ythread-no-such-program",
        install: "nothing to install",
    };

    #[test]
    fn a_program_on_path_is_found() {
        let shell = Tool {
            name: "sh",
            install: "",
        };
        assert!(shell.find().is_some_and(|path| path.ends_with("sh")));
    }

    #[test]
    fn a_missing_program_skips_the_test_saying_why() {
        let mut said = Vec::new();
        assert_eq!(MISSING.for_test_reporting_to(false, &mut said), None);
        let said = String::from_utf8(said).unwrap();
        assert!(
            said.starts_with("skipped ")
                && said.contains("no ythread-no-such-program found; nothing to install"),
            "{said}"
        );
    }

    #[test]
    fn a_missing_program_fails_the_test_when_required() {
        let outcome =
            std::panic::catch_unwind(|| MISSING.for_test_reporting_to(true, &mut Vec::new()));
        let message = outcome.expect_err("a required program that is missing panics");
        let text = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            text.contains("no ythread-no-such-program found; nothing to install")
                && text.contains(REQUIRE_TOOLS_ENV),
            "{text}"
        );
    }
}
