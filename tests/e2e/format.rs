//! docs/ledger-format.md is the spec an outsider verifies with: recompute its worked example
//! from the document's own text, and run the independent Python verifier over real exports.

use fundtrail::crypto::{b64_decode, sha256, verify_signature};
use fundtrail::ledger::{
    batch_payload_canonical, entry_canonical, ChainFields, EntryView, SubmissionView,
};
use fundtrail::signing::signing_message;
use fundtrail_e2e::Tree;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The fenced block right after `<!-- name -->` in the format document.
fn block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- {name} -->");
    let after = &doc[doc.find(&marker).unwrap_or_else(|| panic!("no {marker}")) + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()]
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn the_documented_example_recomputes_hash_payload_and_signature() {
    let doc = std::fs::read_to_string(root().join("docs/ledger-format.md")).unwrap();
    let entry: EntryView = serde_json::from_str(&block(&doc, "example-entry")).unwrap();
    let prev: [u8; 32] = hex::decode(&entry.prev_hash).unwrap().try_into().unwrap();
    let chain = ChainFields {
        seq: entry.seq,
        author: &entry.author,
        batch: &entry.batch,
        recorded_at: &entry.recorded_at,
        prev_hash: &prev,
    };
    let canonical = entry_canonical(&entry.body(), &chain);
    assert_eq!(canonical, block(&doc, "example-canonical"));
    let hash = hex::encode(sha256(canonical.as_bytes()));
    assert_eq!(hash, block(&doc, "example-hash"));
    assert_eq!(hash, entry.hash);

    let payload = batch_payload_canonical([&entry.body()]);
    assert_eq!(payload, block(&doc, "example-payload"));
    let sub: SubmissionView = serde_json::from_str(&block(&doc, "example-submission")).unwrap();
    let digest = sha256(payload.as_bytes());
    assert_eq!(hex::encode(digest), sub.payload_sha256);
    let message = signing_message(
        &sub.purpose,
        &sub.org,
        &sub.key_id,
        &sub.nonce,
        &sub.signed_at,
        &digest,
    );
    assert_eq!(
        String::from_utf8(message.clone()).unwrap(),
        block(&doc, "example-message")
    );
    let public_key = b64_decode(&block(&doc, "example-public-key")).unwrap();
    assert_eq!(fundtrail::crypto::key_id_for(&public_key), sub.key_id);
    assert!(verify_signature(
        &public_key,
        &message,
        &b64_decode(&sub.signature).unwrap()
    ));
    let mut forged = message.clone();
    forged[10] ^= 1;
    assert!(!verify_signature(
        &public_key,
        &forged,
        &b64_decode(&sub.signature).unwrap()
    ));
}

fn python(args: &[&str]) -> (i32, String) {
    let out = Command::new("python3")
        .args(args)
        .current_dir(root())
        .output()
        .expect("python3 is on every Fundtrail machine");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn an_independent_python_verifier_agrees_with_the_service() {
    let (code, out) = python(&["docs/verify_export.py", "--self-test"]);
    assert_eq!(code, 0, "{out}");

    let t = Tree::build();
    t.app
        .append(
            &t.town,
            (0..5)
                .map(|i| {
                    t.payment(i, "780.00", &format!("PY-{i}"))
                        .memo("低保 \"引号\"\n第二行")
                })
                .collect(),
        )
        .unwrap();
    let export = t.app.dir.path().join("export.jsonl");
    let mut file = std::fs::File::create(&export).unwrap();
    let lines = fundtrail::cli::export(&mut t.app.client(&t.auditor), &mut file).unwrap();
    assert!(lines > 10);
    let head = t.app.verify_db();
    let (code, out) = python(&["docs/verify_export.py", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("head #{} {}", head.head_seq, head.head_hash)),
        "{out}"
    );

    // Change one amount in the export: the Python verifier names that entry too.
    let text = std::fs::read_to_string(&export).unwrap();
    let target = format!("\"seq\":{}", head.head_seq - 2);
    let tampered: String = text
        .lines()
        .map(|l| {
            if l.contains(&target) && l.contains("\"type\":\"entry\"") {
                l.replace("780.00", "870.00")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(tampered, text);
    let bad = t.app.dir.path().join("tampered.jsonl");
    std::fs::write(&bad, tampered).unwrap();
    let (code, out) = python(&["docs/verify_export.py", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("FAILED at entry #{}", head.head_seq - 2)),
        "{out}"
    );
}
