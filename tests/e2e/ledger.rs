//! Appending entries: every kind of bad entry is refused with its code, names its item and
//! field, and writes nothing; good batches chain and balance.

use fundtrail::domain::EntryKind;
use fundtrail::ledger::EntryBody;
use fundtrail::signing::SignedRequest;
use fundtrail_e2e::{body, period, today, year, Tree, PROGRAM};
use serde_json::{json, Value};

/// Appends `bodies` as `TOWN` and expects a refusal with `code` at `item`, writing nothing.
fn refused(
    t: &Tree,
    bodies: Vec<Value>,
    status: u16,
    code: &str,
    item: Option<usize>,
    field: Option<&str>,
) {
    let before = t.app.snapshot();
    let r = t
        .app
        .post_signed(&t.town, "/api/v1/entries", json!({ "entries": bodies }));
    assert_eq!((r.status, r.code()), (status, code), "{:?}", r.body);
    assert_eq!(
        r.body["item"].as_u64().map(|i| i as usize),
        item,
        "{:?}",
        r.body
    );
    assert_eq!(r.body["field"].as_str(), field, "{:?}", r.body);
    assert_eq!(t.app.snapshot(), before, "a refused batch wrote something");
}

fn v(b: EntryBody) -> Value {
    serde_json::to_value(b).unwrap()
}

#[test]
fn bad_amounts_sources_and_holders_are_refused_with_their_codes_and_write_nothing() {
    let t = Tree::build();
    let ok = |i: usize| v(t.payment(i, "780.00", &format!("OK-{i}")));
    let with = |amount: &str| v(t.payment(3, amount, "BAD"));
    refused(
        &t,
        vec![ok(0), with("-780.00")],
        422,
        "amount_not_positive",
        Some(1),
        Some("amount"),
    );
    refused(
        &t,
        vec![with("0.00")],
        422,
        "amount_not_positive",
        Some(0),
        Some("amount"),
    );
    refused(
        &t,
        vec![ok(0), ok(1), with("780.001")],
        422,
        "amount_too_precise",
        Some(2),
        Some("amount"),
    );
    refused(
        &t,
        vec![with("780.5")],
        422,
        "amount_not_canonical",
        Some(0),
        Some("amount"),
    );
    refused(
        &t,
        vec![with("7.8e2")],
        422,
        "invalid_amount",
        Some(0),
        Some("amount"),
    );
    refused(
        &t,
        vec![with("10000.01")],
        409,
        "overdraw",
        Some(0),
        Some("amount"),
    );
    refused(
        &t,
        vec![with("800000000000000000000000000.00")],
        422,
        "amount_too_large",
        Some(0),
        Some("amount"),
    );
    // Together they overdraw even though each alone fits.
    refused(
        &t,
        vec![
            v(t.payment(0, "6000.00", "X1")),
            v(t.payment(1, "4000.01", "X2")),
        ],
        409,
        "overdraw",
        Some(1),
        Some("amount"),
    );
    refused(
        &t,
        vec![v(t.payment(0, "1.00", "X3").source(999_999))],
        422,
        "unknown_source",
        Some(0),
        Some("source"),
    );
    // TOWN draws on money CNTY holds.
    refused(
        &t,
        vec![v(t.payment(0, "1.00", "X4").source(t.county_seq))],
        403,
        "wrong_holder",
        Some(0),
        Some("source"),
    );
    // Money can only leave the signing org.
    refused(
        &t,
        vec![v(t.payment(0, "1.00", "X5").from("TOWN2"))],
        403,
        "wrong_holder",
        Some(0),
        Some("from"),
    );
    // A disbursement is not money anyone can draw on.
    let paid = t
        .app
        .append(&t.town, vec![t.payment(0, "100.00", "PAID-1")])
        .unwrap()
        .first_seq;
    refused(
        &t,
        vec![v(t.payment(1, "1.00", "X6").source(paid))],
        422,
        "not_drawable",
        Some(0),
        Some("source"),
    );
    refused(
        &t,
        vec![v(t.payment(1, "1.00", "PAID-1"))],
        409,
        "duplicate_reference",
        Some(0),
        Some("reference"),
    );
    refused(
        &t,
        vec![
            v(t.payment(1, "1.00", "DUP")),
            v(t.payment(2, "1.00", "DUP")),
        ],
        409,
        "duplicate_reference",
        Some(1),
        Some("reference"),
    );
    refused(
        &t,
        vec![v(t.payment(1, "1.00", "has space"))],
        422,
        "invalid_reference",
        Some(0),
        Some("reference"),
    );
    refused(
        &t,
        vec![v(t.payment(1, "1.00", "X7").recipient("Rnobody"))],
        422,
        "unknown_recipient",
        Some(0),
        Some("recipient"),
    );
    let future = chrono::Utc::now().date_naive() + chrono::Days::new(3);
    let mut late = t.payment(1, "1.00", "X8");
    late.value_date = future.to_string();
    if chrono::Datelike::year(&future) == year() {
        refused(
            &t,
            vec![v(late)],
            422,
            "invalid_value_date",
            Some(0),
            Some("value_date"),
        );
    }
    let mut last_year = t.payment(1, "1.00", "X9");
    last_year.value_date = format!("{}-12-31", year() - 1);
    refused(
        &t,
        vec![v(last_year)],
        422,
        "invalid_value_date",
        Some(0),
        Some("value_date"),
    );
    let mut bad_period = t.payment(1, "1.00", "X10");
    bad_period.period = format!("{}", year() + 1);
    refused(
        &t,
        vec![v(bad_period)],
        422,
        "invalid_period",
        Some(0),
        Some("period"),
    );
    // A field left out is refused: required ones by the parser, and optional ones (which
    // would silently read as null) because the signed bytes would no longer match.
    let mut missing_memo = v(t.payment(1, "1.00", "X11"));
    missing_memo.as_object_mut().unwrap().remove("memo");
    refused(
        &t,
        vec![missing_memo],
        400,
        "invalid_json",
        None,
        Some("payload"),
    );
    let mut missing_to = v(t.payment(1, "1.00", "X11"));
    missing_to.as_object_mut().unwrap().remove("to");
    refused(
        &t,
        vec![missing_to],
        422,
        "entry_not_canonical",
        Some(0),
        Some("to"),
    );
    let mut unknown_field = v(t.payment(1, "1.00", "X12"));
    unknown_field["extra"] = json!(1);
    refused(
        &t,
        vec![unknown_field],
        400,
        "invalid_json",
        None,
        Some("payload"),
    );
    refused(&t, vec![], 422, "empty_batch", None, Some("entries"));
    assert!(t.app.verify_db().ok());
}

#[test]
fn every_problem_in_a_batch_is_listed_with_its_item() {
    let t = Tree::build();
    let r = t.app.post_signed(
        &t.town,
        "/api/v1/entries",
        json!({"entries": [v(t.payment(0, "1.00", "A1")), v(t.payment(1, "-1.00", "A2")), v(t.payment(2, "1.00", "A3")), v(t.payment(3, "1.001", "A4"))]}),
    );
    assert_eq!(r.status, 422);
    // The full shape clients parse: the first problem at the top, every problem in `errors`.
    insta::assert_json_snapshot!("batch_error_body", r.body);
    let items: Vec<(u64, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["item"].as_u64().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        items,
        vec![(1, "amount_not_positive"), (3, "amount_too_precise")]
    );
}

#[test]
fn malformed_json_and_bad_paths_get_client_errors_not_500s() {
    let t = Tree::build();
    let before = t.app.snapshot();
    for (bytes, code) in [
        (&b"{not json"[..], "invalid_json"),
        (b"", "invalid_json"),
        (b"[1,2,3]", "unsigned"),
        (b"{\"payload\":1,\"signature\":2}", "invalid_json"),
    ] {
        let r = t.app.post_bytes(&t.town.token, "/api/v1/entries", bytes);
        assert_eq!(r.code(), code, "{:?}", String::from_utf8_lossy(bytes));
        assert!(r.status == 400 || r.status == 401, "{}", r.status);
    }
    // A float anywhere in a payload has no canonical form.
    let req = json!({"payload": {"entries": [], "x": 1.5}, "org": "TOWN", "key_id": t.town.key.key_id, "nonce": "aaaaaaaaaaaaaaaaaaaa", "signed_at": fundtrail::domain::format_micros(fundtrail::domain::now_micros()), "signature": "AAAA"});
    assert_eq!(
        t.app
            .post(Some(&t.town.token), "/api/v1/entries", &req)
            .code(),
        "invalid_json"
    );
    assert_eq!(
        t.app
            .get(Some(&t.town.token), "/api/v1/entries/not-a-number")
            .code(),
        "invalid_path"
    );
    assert_eq!(
        t.app
            .get(Some(&t.town.token), "/api/v1/entries?limit=0")
            .code(),
        "invalid_query"
    );
    assert_eq!(
        t.app
            .get(Some(&t.town.token), "/api/v1/entries?bogus=1")
            .code(),
        "invalid_query"
    );
    assert_eq!(
        t.app
            .get(Some(&t.town.token), "/api/v1/entries?program=NOPE")
            .code(),
        "invalid_query"
    );
    assert_eq!(
        t.app
            .get(Some(&t.town.token), "/api/v1/entries/999999")
            .status,
        404
    );
    assert_eq!(
        t.app
            .get(Some(&t.town.token), "/api/v1/no-such-thing")
            .code(),
        "not_found"
    );
    let huge = format!("{{\"payload\": \"{}\"}}", "x".repeat(9 * 1024 * 1024));
    let r = t
        .app
        .post_bytes(&t.town.token, "/api/v1/entries", huge.as_bytes());
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    assert_eq!(t.app.snapshot(), before);
}

#[test]
fn a_batch_whose_signature_fails_writes_nothing_even_if_every_entry_is_valid() {
    let t = Tree::build();
    let bodies: Vec<EntryBody> = (0..50)
        .map(|i| t.payment(i % 20, "10.00", &format!("SIG-{i}")))
        .collect();
    let mut req = SignedRequest::sign(
        &t.town.key,
        "POST /api/v1/entries",
        json!({"entries": bodies}),
    )
    .unwrap();
    // Change one amount in the 50th entry after signing.
    req.payload["entries"][49]["amount"] = json!("10.01");
    let before = t.app.snapshot();
    let r = t.app.post(
        Some(&t.town.token),
        "/api/v1/entries",
        &serde_json::to_value(&req).unwrap(),
    );
    assert_eq!((r.status, r.code()), (401, "bad_signature"));
    assert_eq!(t.app.snapshot(), before);
}

#[test]
fn batches_chain_balances_add_up_and_reversals_release_money() {
    let t = Tree::build();
    let bodies: Vec<EntryBody> = (0..20)
        .map(|i| t.payment(i, "400.00", &format!("PAY-{i}")))
        .collect();
    let out = t.app.append(&t.town, bodies).unwrap();
    assert_eq!(out.count, 20);
    assert_eq!(out.last_seq - out.first_seq, 19);
    let detail = t.app.get(
        Some(&t.auditor.token),
        &format!("/api/v1/entries/{}", out.first_seq),
    );
    assert_eq!(detail.body["prev_seq"], json!(out.first_seq - 1));
    let prev = t.app.get(
        Some(&t.auditor.token),
        &format!("/api/v1/entries/{}", out.first_seq - 1),
    );
    assert_eq!(
        detail.body["entry"]["prev_hash"],
        prev.body["entry"]["hash"]
    );
    let alloc = t.app.get(
        Some(&t.auditor.token),
        &format!("/api/v1/entries/{}", t.town_seq),
    );
    assert_eq!(alloc.body["remaining"], json!("2000.00"));
    assert_eq!(alloc.body["children"].as_array().unwrap().len(), 20);

    let balance = |org: &str| {
        t.app
            .get(
                Some(&t.auditor.token),
                &format!("/api/v1/balances?program={PROGRAM}&org={org}"),
            )
            .body[0]
            .clone()
    };
    assert_eq!(
        balance("TOWN"),
        json!({"org": "TOWN", "program": PROGRAM, "currency": "CNY", "received": "10000.00", "passed_down": "0.00", "disbursed": "8000.00", "returned": "0.00", "held": "2000.00"})
    );
    assert_eq!(balance("CNTY")["held"], json!("40000.00"));
    assert_eq!(balance("PROV")["held"], json!("900000.00"));

    // Reversing a payment gives its money back to TOWN's allocation.
    let rev = EntryBody::new(
        EntryKind::Reversal,
        PROGRAM,
        &period(),
        "400.00",
        "REV-0",
        &today(),
    )
    .source(out.first_seq);
    t.app.append(&t.town, vec![rev.clone()]).unwrap();
    assert_eq!(balance("TOWN")["held"], json!("2400.00"));
    let mut again = rev.clone();
    again.reference = "REV-0b".into();
    assert_eq!(
        t.app
            .append(&t.town, vec![again])
            .unwrap_err()
            .code()
            .as_str(),
        "already_reversed"
    );
    // The county cannot reverse its allocation to TOWN while TOWN has paid from it...
    let rev_alloc = EntryBody::new(
        EntryKind::Reversal,
        PROGRAM,
        &period(),
        "10000.00",
        "REV-ALC",
        &today(),
    )
    .source(t.town_seq);
    assert_eq!(
        t.app
            .append(&t.county, vec![rev_alloc.clone()])
            .unwrap_err()
            .code()
            .as_str(),
        "source_already_drawn"
    );
    // ...and TOWN cannot reverse what the county wrote.
    assert_eq!(
        t.app
            .append(&t.town, vec![rev_alloc])
            .unwrap_err()
            .code()
            .as_str(),
        "wrong_holder"
    );
    // Partial reversals are not a thing: reverse whole, re-issue right.
    let partial = EntryBody::new(
        EntryKind::Reversal,
        PROGRAM,
        &period(),
        "100.00",
        "REV-P",
        &today(),
    )
    .source(out.first_seq + 1);
    assert_eq!(
        t.app
            .append(&t.town, vec![partial])
            .unwrap_err()
            .code()
            .as_str(),
        "amount_mismatch"
    );
    let report = t.app.verify_db();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.head_seq, out.last_seq + 1);
}

#[test]
fn only_payable_recipients_of_the_office_can_be_paid() {
    let t = Tree::build();
    let r = t.app.post_signed(
        &t.town,
        &format!("/api/v1/recipients/{}/status", t.recipients[5]),
        json!({"status": "deceased", "status_date": today()}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let err = t
        .app
        .append(&t.town, vec![t.payment(5, "780.00", "DEAD-1")])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "recipient_not_payable");
    // A payment dated before the death is still fine (last month's payroll, loaded late).
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    if chrono::Datelike::year(&yesterday) == year()
        && yesterday.format("%Y-%m").to_string() == period()
    {
        let mut before_death = t.payment(5, "780.00", "DEAD-0");
        before_death.value_date = yesterday.to_string();
        t.app.append(&t.town, vec![before_death]).unwrap();
    }
    let other = t.app.register_recipients(&t.town2, 100, 1);
    let err = t
        .app
        .append(
            &t.town,
            vec![t.payment(0, "1.00", "OTHER").recipient(&other[0])],
        )
        .unwrap_err();
    assert_eq!(err.code().as_str(), "recipient_not_in_office");
}

#[test]
fn money_moves_down_the_tree_one_level_at_a_time() {
    let t = Tree::build();
    let skip = body(EntryKind::Allocation, "1.00", "SKIP")
        .source(t.budget_seq)
        .from("PROV")
        .to("CNTY");
    assert_eq!(
        t.app
            .append(&t.prov, vec![skip])
            .unwrap_err()
            .code()
            .as_str(),
        "not_a_child_org"
    );
    let up = body(EntryKind::Allocation, "1.00", "UP")
        .source(t.town_seq)
        .from("TOWN")
        .to("CNTY");
    assert_eq!(
        t.app.append(&t.town, vec![up]).unwrap_err().code().as_str(),
        "not_a_child_org"
    );
    let by_city = EntryBody::new(
        EntryKind::Budget,
        PROGRAM,
        &year().to_string(),
        "1.00",
        "B-CITY",
        &today(),
    )
    .to("CITY");
    assert_eq!(
        t.app
            .append(&t.city, vec![by_city])
            .unwrap_err()
            .code()
            .as_str(),
        "kind_not_allowed"
    );
}

#[test]
fn entries_draw_only_on_entries_already_on_the_ledger() {
    let t = Tree::build();
    let head = t.app.verify_db().head_seq;
    // A budget and an allocation guessing the budget's seq, in one batch.
    let budget = EntryBody::new(
        EntryKind::Budget,
        PROGRAM,
        &year().to_string(),
        "10.00",
        "B-GUESS",
        &today(),
    )
    .to("PROV");
    let alloc = body(EntryKind::Allocation, "10.00", "A-GUESS")
        .source(head + 1)
        .from("PROV")
        .to("CITY");
    let err = t.app.append(&t.prov, vec![budget, alloc]).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.first.item),
        ("unknown_source", Some(1))
    );
    assert_eq!(t.app.verify_db().head_seq, head);
}

#[test]
fn money_is_allocated_only_to_orgs_that_can_hold_it() {
    let t = Tree::build();
    t.app
        .create_org("AUD-CITY", fundtrail::domain::Role::Inspector, Some("PROV"));
    let to_auditor = body(EntryKind::Allocation, "1.00", "TO-AUD")
        .source(t.budget_seq)
        .from("PROV")
        .to("AUD-CITY");
    let err = t.app.append(&t.prov, vec![to_auditor]).unwrap_err();
    assert_eq!(
        (err.code().as_str(), err.first.field.as_deref()),
        ("invalid_field", Some("to"))
    );
}
