//! Writers racing: conservation and the chain must hold under concurrency, within one server
//! and across two servers (two connection pools and writer locks: as two processes would).

use fundtrail::client::Client;
use fundtrail::ledger::EntryBody;
use fundtrail::signing::SignedRequest;
use fundtrail_e2e::Tree;
use serde_json::json;
use std::sync::Arc;

#[test]
fn eight_writers_racing_to_overdraw_one_allocation_never_overdraw_nor_fork_the_chain() {
    let t = Arc::new(Tree::build());
    let head_before = t.app.verify_db().head_seq;
    let second = t.app.second_server();
    const WRITERS: usize = 8;
    const BATCHES: usize = 10;
    const PER_BATCH: usize = 5;
    // 8 x 10 x 5 x 50.00 = 20,000.00 attempted against TOWN's 10,000.00.
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let t = Arc::clone(&t);
            let base = if w % 2 == 0 {
                t.app.base.clone()
            } else {
                second.clone()
            };
            std::thread::spawn(move || {
                let client = Client::new(&base, Some(t.town.token.clone()));
                let mut accepted = 0usize;
                let mut refused = Vec::new();
                for b in 0..BATCHES {
                    let bodies: Vec<EntryBody> = (0..PER_BATCH)
                        .map(|i| {
                            // Twenty recipients paid over and over: repeats on purpose.
                            t.payment((w + i) % 20, "50.00", &format!("W{w}-B{b}-{i}"))
                                .memo("再次发放：并发测试")
                        })
                        .collect();
                    match client.post_signed::<serde_json::Value>(
                        "/api/v1/entries",
                        &t.town.key,
                        json!({ "entries": bodies }),
                    ) {
                        Ok(_) => accepted += PER_BATCH,
                        Err(e) => refused.push(e.code().as_str()),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let mut accepted = 0;
    for h in handles {
        let (a, refused) = h.join().unwrap();
        accepted += a;
        assert!(
            refused.iter().all(|c| *c == "overdraw"),
            "unexpected refusals: {refused:?}"
        );
    }
    // 50.00 divides 10,000.00, so the allocation is spent exactly and not a cent more.
    assert_eq!(accepted, 200, "accepted {accepted} payments of 50.00");
    let held = t
        .app
        .get(Some(&t.auditor.token), "/api/v1/balances?org=TOWN")
        .body[0]
        .clone();
    assert_eq!(
        (held["disbursed"].as_str(), held["held"].as_str()),
        (Some("10000.00"), Some("0.00"))
    );
    let report = t.app.verify_db();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(
        report.head_seq,
        head_before + accepted as i64,
        "seqs are dense: no fork, no gap"
    );
}

#[test]
fn the_same_signed_batch_sent_eight_times_at_once_is_written_once() {
    let t = Arc::new(Tree::build());
    let second = t.app.second_server();
    let req = SignedRequest::sign(
        &t.town.key,
        "POST /api/v1/entries",
        json!({"entries": [t.payment(0, "780.00", "ONCE")]}),
    )
    .unwrap();
    let body = Arc::new(serde_json::to_value(req).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let t = Arc::clone(&t);
            let body = Arc::clone(&body);
            let base = if w % 2 == 0 {
                t.app.base.clone()
            } else {
                second.clone()
            };
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let r = agent
                    .post(format!("{base}/api/v1/entries"))
                    .header("authorization", &format!("Bearer {}", t.town.token))
                    .send_json(&*body)
                    .unwrap();
                r.status().as_u16()
            })
        })
        .collect();
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);
    assert!(t.app.verify_db().ok());
}
