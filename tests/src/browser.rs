//! A real headless browser for tests of rendered pages: what an inspector's browser makes of
//! the HTML (the DOM after parsing), and whether it prints.
//!
//! Chromium is required, not optional: a test that skipped when it is missing would let a broken
//! page through CI, so its absence fails loudly (`.ci/run` installs it on a fresh machine).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one browser run may take before the test fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(60);

/// The Chromium (or Chrome) binary on `PATH`; panics with how to install it when there is none.
pub fn chromium() -> PathBuf {
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no headless browser found: none of {names:?} is on PATH. The HTML report tests need a \
         real browser; install one (`apt-get install -y chromium` on Debian, as .ci/run does)"
    );
}

/// Opens `html_path` in headless Chromium and returns the DOM it built (`--dump-dom`).
pub fn rendered_text(html_path: &Path) -> String {
    let run = run_chromium(&["--dump-dom".to_string(), file_url(html_path)]);
    String::from_utf8(run.stdout).expect("the dumped DOM is UTF-8")
}

/// Prints `html_path` to PDF with headless Chromium and returns the PDF's bytes.
pub fn print_to_pdf(html_path: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let pdf = dir.path().join("page.pdf");
    let run = run_chromium(&[
        format!("--print-to-pdf={}", pdf.display()),
        // The header/footer would carry the temp file's URL and today's date.
        "--no-pdf-header-footer".to_string(),
        file_url(html_path),
    ]);
    std::fs::read(&pdf).unwrap_or_else(|e| {
        panic!(
            "chromium wrote no PDF ({e}); its stderr:\n{}",
            String::from_utf8_lossy(&run.stderr)
        )
    })
}

struct Run {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs headless Chromium with `args` and a throwaway profile, killing it (and the processes it
/// started) if it outlives [`DEADLINE`].
fn run_chromium(args: &[String]) -> Run {
    use std::os::unix::process::CommandExt;
    let browser = chromium();
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = dir.path().join("profile");
    // Files, not pipes: a pipe nobody reads while we poll could fill and stall the browser.
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            // Tests often run as root in containers, where the sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            // Small /dev/shm in containers crashes the renderer.
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--mute-audio",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        // Its own process group, so a timeout can kill the renderer and helpers too.
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {DEADLINE:?} (args {args:?}); stderr:\n{}",
                browser.display(),
                String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    assert!(
        status.success(),
        "{} failed ({status}, args {args:?}); stderr:\n{}",
        browser.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

/// `file://` URL of a local file, percent-encoding what a URL path cannot carry as is.
pub fn file_url(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut url = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}
