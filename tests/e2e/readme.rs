//! The README's own commands, run as a newcomer would type them, so the README cannot rot.
//!
//! Each shell block marked `<!-- readme-test: NAME -->` is split into commands (a `\` at a
//! line's end continues it); every command must exit 0 (`! cmd` is how the README says a
//! command is meant to fail), every `fundtrail`, `curl` and `python3` command must print
//! something, and a comment line `# → TEXT` after a command says what its output must contain. The commands run in one bash process, in a scratch copy of the
//! repository's layout (`fixtures/`, `importers/`, `docs/` linked, `target/debug/fundtrail` the
//! built binary), against a server on a free loopback port in place of the README's.

use fundtrail_e2e::fundtrail_bin;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One command of a block and what its output must contain.
#[derive(Debug)]
struct Step {
    command: String,
    expect: Vec<String>,
}

/// The commands of the block marked `name`.
fn block(name: &str) -> Vec<Step> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- readme-test: {name} -->");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no block {marker}"));
    let rest = &readme[at..];
    let start = rest.find("```sh\n").expect("a sh block after the marker") + 6;
    let body = &rest[start..];
    let body = &body[..body.find("```").expect("the block ends")];
    let mut steps: Vec<Step> = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        let trimmed = line.trim();
        if pending.is_empty() {
            if let Some(text) = trimmed.strip_prefix("# → ") {
                steps
                    .last_mut()
                    .expect("an expectation follows a command")
                    .expect
                    .push(text.trim_end_matches('…').trim().to_string());
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
        }
        // A continued line keeps its `\`, so bash joins the lines as the reader's shell would.
        pending.push_str(line);
        if line.ends_with('\\') {
            pending.push('\n');
        } else {
            steps.push(Step {
                command: std::mem::take(&mut pending),
                expect: Vec::new(),
            });
        }
    }
    assert!(pending.is_empty(), "the block ends inside a command");
    assert!(!steps.is_empty());
    steps
}

/// A scratch directory laid out like the repository for the README's relative paths.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["fixtures", "importers", "docs"] {
        std::os::unix::fs::symlink(
            repo().join(name).canonicalize().unwrap(),
            dir.path().join(name),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.path().join("target/debug")).unwrap();
    std::os::unix::fs::symlink(fundtrail_bin(), dir.path().join("target/debug/fundtrail")).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `steps` in one bash process in `dir`, with `from` replaced by `to` in every command.
/// Panics naming the first command that failed or printed something other than expected.
fn run(dir: &Path, steps: &[Step], from: &str, to: &str) {
    let out = dir.join("readme-test");
    std::fs::create_dir_all(&out).unwrap();
    let mut script = String::from("set -u\n");
    for (i, s) in steps.iter().enumerate() {
        let command = s.command.replace(from, to);
        // Braces, not a subshell: exports and background jobs stay in the one shell.
        script.push_str(&format!(
            "{{ {command}\n}} > {o}/{i}.out 2>&1 < /dev/null; echo $? > {o}/{i}.rc\n",
            o = out.display()
        ));
    }
    // Whatever the block left running (a server) ends with it, pass or fail.
    script.push_str("jobs -p | xargs -r kill 2>/dev/null\nwait\n");
    std::fs::write(out.join("script.sh"), &script).unwrap();
    let status = Command::new("bash")
        .arg(out.join("script.sh"))
        .current_dir(dir)
        .env_remove("FUNDTRAIL_DB")
        .env_remove("FUNDTRAIL_SERVER")
        .env_remove("FUNDTRAIL_TOKEN")
        .env_remove("FUNDTRAIL_KEY")
        .status()
        .expect("bash runs");
    assert!(status.success(), "the script itself failed: {status}");
    for (i, s) in steps.iter().enumerate() {
        let rc = std::fs::read_to_string(out.join(format!("{i}.rc"))).unwrap();
        let printed = std::fs::read_to_string(out.join(format!("{i}.out"))).unwrap();
        assert_eq!(
            rc.trim(),
            "0",
            "README command {} failed:\n$ {}\n{printed}",
            i + 1,
            s.command
        );
        // Every command of the tool says what it did: silence would hide a no-op.
        let speaks = [
            "./target/debug/fundtrail",
            "! ./target/debug/fundtrail",
            "curl",
            "python3",
        ];
        if speaks.iter().any(|p| s.command.starts_with(p)) && !s.command.ends_with('&') {
            assert!(
                !printed.trim().is_empty(),
                "README command {} printed nothing:\n$ {}",
                i + 1,
                s.command
            );
        }
        for e in &s.expect {
            assert!(
                printed.contains(e.as_str()),
                "README command {} should print `{e}`:\n$ {}\n{printed}",
                i + 1,
                s.command
            );
        }
    }
}

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, db: &str, port: u16) -> Server {
    let child = Command::new(fundtrail_bin())
        .args(["--db", db, "serve", "--bind", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn the_readme_quick_start_runs_against_the_demo() {
    let steps = block("demo");
    assert!(steps.len() >= 25, "{} commands", steps.len());
    let dir = scratch();
    let loaded = Command::new(fundtrail_bin())
        .args([
            "--db",
            "data/fundtrail.db",
            "demo",
            "--fixtures",
            "fixtures/demo",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let port = free_port();
    let _server = serve(dir.path(), "data/fundtrail.db", port);
    run(
        dir.path(),
        &steps,
        "127.0.0.1:8080",
        &format!("127.0.0.1:{port}"),
    );
    // What the walk wrote stays under data/, which git ignores.
    for f in ["report.html", "findings.csv", "report.json", "ledger.jsonl"] {
        assert!(dir.path().join("data/quickstart").join(f).is_file(), "{f}");
    }
}

#[test]
fn the_readme_onboarding_walks_a_new_county_from_init_to_reconcile() {
    let steps = block("onboarding");
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    for needed in [
        "init",
        "serve",
        "keygen",
        "org create",
        "token create",
        "program create",
        "recipients register",
        "account add",
        "budget",
        "allocate",
        "disburse",
        "import",
        "reconcile",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.contains(&format!("fundtrail {needed}"))),
            "the onboarding walk has no `fundtrail {needed}`"
        );
    }
    let dir = scratch();
    std::fs::create_dir_all(dir.path().join("data/county")).unwrap();
    let port = free_port();
    run(
        dir.path(),
        &steps,
        "127.0.0.1:8090",
        &format!("127.0.0.1:{port}"),
    );
}

#[test]
fn every_path_the_readme_names_exists_in_a_clone() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut checked = 0;
    for word in readme.split(|c: char| c.is_whitespace() || "`'\"()[],;".contains(c)) {
        let word = word.trim_end_matches(['.', ':']);
        let rooted = [
            "fixtures/",
            "importers/",
            "docs/",
            "scripts/",
            "openapi/",
            "../",
        ];
        if !rooted.iter().any(|r| word.starts_with(r)) || word.contains('<') || word.contains('*') {
            continue;
        }
        assert!(
            repo().join(word).exists(),
            "README.md names {word}, which a clone does not have"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} paths checked");
}
