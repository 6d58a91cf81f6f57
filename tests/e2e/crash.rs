//! A crash in the middle of an import: a real `fundtrail serve` child process is killed
//! (SIGKILL) while it imports a large statement, and the ledger and the statement tables are
//! exactly as they were; the same file then imports whole.

use fundtrail_e2e::{fundtrail_bin, today, Tree};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "6222000011112222";
/// Big enough that importing takes seconds in a debug build, so the kill lands mid-import.
const ROWS: usize = 150_000;

#[test]
fn a_server_killed_mid_import_leaves_ledger_and_statements_as_they_were() {
    let t = Tree::build();
    t.app.register_account(&t.town, ACCOUNT);
    t.app
        .append(&t.town, vec![t.payment(0, "780.00", "PAY-1")])
        .unwrap();
    let mut file =
        String::from("account,date,amount,currency,counterparty_account,reference,bank_txn_id\n");
    let day = today();
    file.push_str(&format!(
        "{ACCOUNT},{day},-780.00,CNY,6228480000000000001,PAY-1,T0\n"
    ));
    for i in 1..ROWS {
        file.push_str(&format!(
            "{ACCOUNT},{day},-{}.00,CNY,9{i:012},,T{i}\n",
            1 + i % 997
        ));
    }
    let file = file.into_bytes();
    let before = t.app.snapshot();

    // A second server process over the same database.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(fundtrail_bin())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(&t.app.db_path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (started_tx, started) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("statement import started") {
                let _ = started_tx.send(());
            }
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(format!("{base}/api/v1/health")).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "the child server did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let upload = {
        let file = file.clone();
        let town = t.town.clone();
        let base = base.clone();
        std::thread::spawn(move || {
            let manifest = serde_json::json!({
                "file_sha256": hex::encode(fundtrail::crypto::sha256(&file)),
                "size_bytes": file.len(), "file_name": "big.csv", "format": "auto", "account": null,
            });
            let req = fundtrail::signing::SignedRequest::sign(
                &town.key,
                "POST /api/v1/statements",
                manifest,
            )
            .unwrap();
            let header = fundtrail::crypto::b64(serde_json::to_string(&req).unwrap().as_bytes());
            // The server dies under this request: any outcome but success will do.
            ureq::post(format!("{base}/api/v1/statements"))
                .header("authorization", &format!("Bearer {}", town.token))
                .header("fundtrail-signature", &header)
                .send(&file[..])
                .map(|r| r.status().as_u16())
        })
    };
    started
        .recv_timeout(Duration::from_secs(60))
        .expect("the child logged the start of the import");
    // Well into the transaction: rows are being matched and written.
    std::thread::sleep(Duration::from_millis(400));
    child.kill().unwrap();
    child.wait().unwrap();
    let outcome = upload.join().unwrap();
    assert!(
        !matches!(outcome, Ok(201)),
        "the import finished before the kill ({outcome:?}); make ROWS larger"
    );

    // Everything as it was: every table's row count, the funds, the chain.
    assert_eq!(t.app.snapshot(), before);
    let report = t.app.verify_db();
    assert!(report.ok(), "{:?}", report.failure);
    // The file imports whole afterwards (the stored copy left by the killed upload is the same
    // content, under the same address).
    let r = t.app.upload(&t.town, "big.csv", &file);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["statement"]["rows_total"], ROWS as i64);
    assert_eq!(r.body["statement"]["confirmed_strong"], 1);
}
