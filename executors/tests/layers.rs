//! The layers of `src/` (see `docs/design.md`, "The executors crate's layout"), checked on every
//! path the code names: a strategy never imports the configuration that picks it or
//! [`init`](ythread_executors::init), the subprocess and nats strategies never import each
//! other, and the two sides of each (the pool and the worker; the caller and the node) never
//! import each other. The compiler would accept any of these; this test is what keeps them
//! out, and each failure says which rule a path breaks and what to do instead.
//!
//! Paths are read from the code with comments removed: `crate::…`, `super::…` and `self::…`,
//! with `use` groups expanded and `super` resolved against the file's own module, so a path
//! through a re-export at the crate root (`crate::ExecutorConfig`) or a climb out of a
//! directory (`super::super::worker`) counts the same as the direct one.

use std::fs;
use std::path::{Path, PathBuf};

/// One rule: code under `scope` (a file, or a directory ending in `/`) must not name a path
/// under any of `forbidden` (crate-rooted, `::`-separated, without `crate::`).
struct Rule {
    scope: &'static [&'static str],
    forbidden: &'static [&'static str],
    why: &'static str,
}

/// What the configuration and the entry point are, as paths: their modules and what the crate
/// root re-exports from them.
const CONFIG_AND_INIT: &[&str] = &["config", "init", "ExecutorConfig", "ENV_VAR", "WORKER_ENV"];

const STRATEGIES_AND_SHARED: &[&str] = &[
    "exclusive.rs",
    "rayon_pool.rs",
    "schedule/",
    "wire/",
    "subprocess/",
    "nats/",
];

const RULES: &[Rule] = &[
    Rule {
        scope: STRATEGIES_AND_SHARED,
        forbidden: CONFIG_AND_INIT,
        why: "a strategy (or the machinery below it) never imports the configuration that picks \
              it or init: settings come down as values (SubprocessConfig, NatsConfig, \
              Scheduling), and each strategy writes its own form (write_spec)",
    },
    Rule {
        scope: &["subprocess/"],
        forbidden: &["nats", "NatsExecutor", "NatsConfig"],
        why: "the subprocess strategy never imports the nats strategy: what both send is in \
              crate::wire, and init.rs starts a node",
    },
    Rule {
        scope: &["nats/"],
        forbidden: &[
            "subprocess",
            "SubprocessPool",
            "SubprocessBuilder",
            "SubprocessConfig",
            "PoolStatus",
            "CopyMode",
        ],
        why: "the nats strategy never imports the subprocess strategy: the job and reply bodies \
              are in crate::wire, the registry in crate::role",
    },
    Rule {
        scope: &["subprocess/pool/"],
        forbidden: &["subprocess::worker"],
        why: "the pool (parent side) never imports the worker (child side): what both need \
              belongs in subprocess/transport/ or subprocess/settings.rs",
    },
    Rule {
        scope: &["subprocess/worker/"],
        forbidden: &["subprocess::pool"],
        why: "the worker (child side) never imports the pool (parent side): what both need \
              belongs in subprocess/transport/ or subprocess/settings.rs",
    },
    Rule {
        scope: &["subprocess/transport/", "subprocess/settings.rs"],
        forbidden: &["subprocess::pool", "subprocess::worker"],
        why: "the shared floor of the subprocess strategy imports neither side of it",
    },
    Rule {
        scope: &["nats/caller/"],
        forbidden: &["nats::node"],
        why: "the caller never imports the node: what both need belongs in the shared files of \
              nats/",
    },
    Rule {
        scope: &["nats/node/"],
        forbidden: &["nats::caller"],
        why: "the node never imports the caller: what both need belongs in the shared files of \
              nats/",
    },
    Rule {
        scope: &["schedule/", "wire/"],
        forbidden: &[
            "exclusive",
            "rayon_pool",
            "subprocess",
            "nats",
            "Exclusive",
            "RayonPool",
            "SubprocessPool",
            "NatsExecutor",
        ],
        why: "the shared machinery sits below every strategy and imports none",
    },
    Rule {
        scope: &["exclusive.rs"],
        forbidden: &[
            "rayon_pool",
            "subprocess",
            "nats",
            "RayonPool",
            "SubprocessPool",
        ],
        why: "a strategy never imports another strategy",
    },
    Rule {
        scope: &["rayon_pool.rs"],
        forbidden: &[
            "exclusive",
            "subprocess",
            "nats",
            "Exclusive",
            "SubprocessPool",
        ],
        why: "a strategy never imports another strategy",
    },
];

/// The one place a rule is broken on purpose: `subprocess::init` and `subprocess::WORKER_ENV`
/// were public there before `init.rs` existed, and stay so through a re-export.
const EXCEPTIONS: &[(&str, &str)] = &[("subprocess/mod.rs", "init")];

#[test]
fn every_module_imports_only_from_its_own_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for file in rust_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let code = without_comments(&fs::read_to_string(&file).expect("readable source"));
        for (line, path) in paths(&code, &module_of(&rel)) {
            for rule in RULES.iter().filter(|rule| in_scope(&rel, rule.scope)) {
                let Some(hit) = rule.forbidden.iter().find(|f| under(&path, f)) else {
                    continue;
                };
                if EXCEPTIONS.iter().any(|(f, p)| *f == rel && under(&path, p)) {
                    continue;
                }
                broken.push(format!(
                    "executors/src/{rel}:{line}: `crate::{path}` is under `{hit}`: {}",
                    rule.why
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} path(s) break the layers of ythread-executors:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_relative_and_re_exported_paths() {
    let code = without_comments(
        "use crate::{Error, ExecutorConfig};\n\
         // use crate::config::Hidden;\n\
         use super::super::worker::serve; /* crate::init */\n\
         let x = \"nats://host\"; crate::init::WORKER_ENV\n",
    );
    let found = paths(&code, &["subprocess", "pool", "builder"]);
    let found: Vec<(usize, &str)> = found.iter().map(|(l, p)| (*l, p.as_str())).collect();
    assert_eq!(
        found,
        [
            (1, "Error"),
            (1, "ExecutorConfig"),
            (3, "subprocess::worker::serve"),
            (4, "init::WORKER_ENV"),
        ]
    );
    assert!(under("subprocess::worker::serve", "subprocess::worker"));
    assert!(!under("subprocess::workers", "subprocess::worker"));
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The module a file defines, as segments: `subprocess/pool/mod.rs` is `subprocess::pool`.
fn module_of(rel: &str) -> Vec<String> {
    let mut segments: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
        segments.pop();
    }
    segments
}

fn in_scope(rel: &str, scope: &[&str]) -> bool {
    scope.iter().any(|s| {
        if s.ends_with('/') {
            rel.starts_with(s)
        } else {
            rel == *s
        }
    })
}

/// Whether `path` is `prefix` or inside it, segment by segment.
fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

/// `source` with `//` and `/* */` comments blanked, lines kept. String literals are skipped
/// over, so a `//` inside one (`"nats://…"`) is not taken for a comment.
fn without_comments(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
                i += 2;
            }
            b'\'' if bytes.get(i + 1) == Some(&b'"') && bytes.get(i + 2) == Some(&b'\'') => {
                out.push_str("'\"'");
                i += 3;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                out.push_str(&source[start..i]);
            }
            _ => {
                let len = source[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&source[i..i + len]);
                i += len;
            }
        }
    }
    out
}

/// Every `crate::`, `super::` and `self::` path in `code` (groups expanded), crate-rooted and
/// without `crate::`, with its line number.
fn paths(code: &str, module: &[impl AsRef<str>]) -> Vec<(usize, String)> {
    let module: Vec<&str> = module.iter().map(AsRef::as_ref).collect();
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':';
        let head = ["crate", "super", "self"].into_iter().find(|h| {
            bytes[i..].starts_with(h.as_bytes()) && bytes[i + h.len()..].starts_with(b"::")
        });
        let (true, Some(head)) = (starts_word, head) else {
            i += 1;
            continue;
        };
        let line = code[..i].matches('\n').count() + 1;
        let mut pos = i + head.len();
        let mut raw = Vec::new();
        tree(code, &mut pos, vec![head.to_owned()], &mut raw);
        for segments in raw {
            if let Some(path) = resolve(&segments, &module) {
                found.push((line, path));
            }
        }
        i = pos.max(i + 1);
    }
    found
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Reads a use tree at `pos` (just after its first segment): `::a::b`, `::{a, b::{c, d}}`.
fn tree(code: &str, pos: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = code.as_bytes();
    let mut segments = prefix;
    loop {
        if !bytes[*pos..].starts_with(b"::") {
            break;
        }
        *pos += 2;
        skip_space(bytes, pos);
        if bytes.get(*pos) == Some(&b'{') {
            *pos += 1;
            loop {
                skip_space(bytes, pos);
                match bytes.get(*pos) {
                    Some(b'}') => {
                        *pos += 1;
                        return;
                    }
                    Some(b',') => *pos += 1,
                    Some(_) => item(code, pos, segments.clone(), out),
                    None => return,
                }
            }
        }
        let start = *pos;
        while *pos < bytes.len() && (is_ident(bytes[*pos]) || bytes[*pos] == b'*') {
            *pos += 1;
        }
        if *pos == start {
            break;
        }
        segments.push(code[start..*pos].to_owned());
    }
    out.push(segments);
}

/// One item of a use group: `self`, `name`, `name::rest`, `name as alias`.
fn item(code: &str, pos: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let bytes = code.as_bytes();
    let start = *pos;
    while *pos < bytes.len() && (is_ident(bytes[*pos]) || bytes[*pos] == b'*') {
        *pos += 1;
    }
    if *pos == start {
        *pos += 1; // not a path: step over it
        return;
    }
    let name = &code[start..*pos];
    let mut segments = prefix;
    if name != "self" {
        segments.push(name.to_owned());
    }
    tree(code, pos, segments, out);
    // `as alias` and anything else up to the next `,` or `}` does not name a module.
    while *pos < bytes.len() && !matches!(bytes[*pos], b',' | b'}') {
        *pos += 1;
    }
}

fn skip_space(bytes: &[u8], pos: &mut usize) {
    while *pos < bytes.len() && bytes[*pos].is_ascii_whitespace() {
        *pos += 1;
    }
}

/// `segments` (starting with `crate`, `super` or `self`) as a crate-rooted path, from `module`.
fn resolve(segments: &[String], module: &[&str]) -> Option<String> {
    let mut base: Vec<&str> = module.to_vec();
    let mut rest = segments;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        _ => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
    }
    let path: Vec<&str> = base
        .into_iter()
        .chain(rest.iter().map(String::as_str))
        .collect();
    (!path.is_empty()).then(|| path.join("::"))
}
