//! Who may write what: every write endpoint against every role, and every way a submission's
//! signature can be wrong. Each refusal must also write nothing.

use fundtrail::domain::EntryKind;
use fundtrail::ledger::EntryBody;
use fundtrail::signing::SignedRequest;
use fundtrail_e2e::{body, id_number, period, today, year, Org, Tree, PROGRAM};
use serde_json::{json, Value};

/// One write endpoint, what a valid payload for it looks like when sent by `org`, and which
/// orgs may use it.
struct Endpoint {
    path: String,
    payload: Box<dyn Fn(&Org) -> Value>,
    allowed: Vec<&'static str>,
}

fn endpoints(t: &Tree) -> Vec<Endpoint> {
    let town_recipient = t.recipients[0].clone();
    let paid = t.recipients[1].clone();
    let budget = t.budget_seq;
    let town_seq = t.town_seq;
    let p = period();
    vec![
        Endpoint {
            path: "/api/v1/orgs".into(),
            payload: Box::new(
                |_| json!({"code": "NEW-ORG", "name": "新机构", "role": "local_office", "parent": "CNTY", "public_key": null}),
            ),
            allowed: vec!["OPERATOR"],
        },
        Endpoint {
            path: "/api/v1/orgs/TOWN2/keys".into(),
            payload: Box::new(
                |_| json!({"public_key": fundtrail::crypto::SigningKey::generate("TOWN2").public_key_b64()}),
            ),
            // Not the admin: TOWN2 has a valid key, so only TOWN2 adds keys.
            allowed: vec!["TOWN2"],
        },
        Endpoint {
            path: "/api/v1/orgs/TOWN2/tokens".into(),
            payload: Box::new(|_| json!({"label": "clerk"})),
            allowed: vec!["OPERATOR", "TOWN2"],
        },
        Endpoint {
            path: "/api/v1/programs".into(),
            payload: Box::new(
                |o| json!({"code": format!("P-{}", o.code), "name": "高龄津贴", "fiscal_year": year(), "standard_amount": "100", "period_granularity": "month"}),
            ),
            allowed: vec!["PROV", "CITY"],
        },
        Endpoint {
            path: "/api/v1/recipients".into(),
            payload: Box::new(|o| {
                let n =
                    5000 + o.code.len() as u32 * 17 + o.code.bytes().map(u32::from).sum::<u32>();
                json!({"recipients": [{"name": "新人", "id_number": id_number(n), "bank_account": "6228480000000000001"}]})
            }),
            allowed: vec!["CNTY", "TOWN", "TOWN2"],
        },
        Endpoint {
            path: format!("/api/v1/recipients/{town_recipient}/status"),
            payload: Box::new(|_| json!({"status": "suspended", "status_date": today()})),
            allowed: vec!["TOWN"],
        },
        Endpoint {
            path: "/api/v1/entries".into(),
            payload: Box::new(
                move |o| json!({"entries": [body(EntryKind::Budget, "1.00", &format!("B-{}", o.code)).to(&o.code)]}),
            ),
            allowed: vec!["PROV"],
        },
        Endpoint {
            path: "/api/v1/entries".into(),
            payload: Box::new(
                move |o| json!({"entries": [body(EntryKind::Allocation, "1.00", &format!("A-{}", o.code)).source(budget).from(&o.code).to("CITY")]}),
            ),
            allowed: vec!["PROV"],
        },
        Endpoint {
            path: "/api/v1/entries".into(),
            payload: Box::new(
                move |o| json!({"entries": [EntryBody::new(EntryKind::Disbursement, PROGRAM, &p, "1.00", &format!("D-{}", o.code), &today()).source(town_seq).from(&o.code).recipient(&paid)]}),
            ),
            allowed: vec!["TOWN"],
        },
    ]
}

fn all_orgs(t: &Tree) -> Vec<Org> {
    vec![
        t.app.admin.clone(),
        t.prov.clone(),
        t.city.clone(),
        t.county.clone(),
        t.town.clone(),
        t.town2.clone(),
        t.auditor.clone(),
    ]
}

#[test]
fn every_write_endpoint_refuses_every_role_that_must_not_use_it_and_writes_nothing() {
    let t = Tree::build();
    for ep in endpoints(&t) {
        for org in all_orgs(&t) {
            let allowed = ep.allowed.contains(&org.code.as_str());
            let before = t.app.snapshot();
            let r = t.app.post_signed(&org, &ep.path, (ep.payload)(&org));
            if allowed {
                assert!(
                    r.status == 200 || r.status == 201,
                    "{} by {} should succeed: {:?}",
                    ep.path,
                    org.code,
                    r.body
                );
            } else {
                // Roles that can never write here get 403; an org whose role may write this but
                // not this money (not its holder, not its child, not its recipient) gets the
                // specific refusal. Either way nothing is written.
                let never = ["OPERATOR", "AUD"].contains(&org.code.as_str())
                    || !ep.path.ends_with("/entries");
                if never {
                    assert_eq!(
                        r.status, 403,
                        "{} by {} should be forbidden: {:?}",
                        ep.path, org.code, r.body
                    );
                }
                assert!(
                    matches!(
                        r.code(),
                        "forbidden"
                            | "kind_not_allowed"
                            | "wrong_holder"
                            | "not_a_child_org"
                            | "recipient_not_in_office"
                    ),
                    "{} by {}: {:?}",
                    ep.path,
                    org.code,
                    r.body
                );
                assert_eq!(
                    t.app.snapshot(),
                    before,
                    "{} by {} wrote something",
                    ep.path,
                    org.code
                );
            }
        }
    }
    assert!(t.app.verify_db().ok());
}

#[test]
fn every_write_endpoint_refuses_missing_tokens_unsigned_wrongly_signed_and_replayed_submissions() {
    let t = Tree::build();
    let eps = endpoints(&t);
    for ep in &eps {
        let org = all_orgs(&t)
            .into_iter()
            .find(|o| ep.allowed.contains(&o.code.as_str()))
            .unwrap();
        let payload = (ep.payload)(&org);
        let purpose = format!("POST {}", ep.path);
        let signed = SignedRequest::sign(&org.key, &purpose, payload.clone()).unwrap();
        let before = t.app.snapshot();
        let check = |what: &str, token: Option<&str>, body: Value, status: u16, code: &str| {
            let r = t.app.post(token, &ep.path, &body);
            assert_eq!(
                (r.status, r.code()),
                (status, code),
                "{what} at {}: {:?}",
                ep.path,
                r.body
            );
            assert_eq!(
                t.app.snapshot(),
                before,
                "{what} at {} wrote something",
                ep.path
            );
        };
        let as_json = |s: &SignedRequest| serde_json::to_value(s).unwrap();

        check("no token", None, as_json(&signed), 401, "unauthorized");
        check(
            "unknown token",
            Some("ftk_not-a-token"),
            as_json(&signed),
            401,
            "unauthorized",
        );
        check(
            "unsigned payload",
            Some(&org.token),
            payload.clone(),
            401,
            "unsigned",
        );

        let mut tampered = signed.clone();
        tampered.payload = json!({"tampered": true, "was": payload.clone()});
        check(
            "payload changed after signing",
            Some(&org.token),
            as_json(&tampered),
            401,
            "bad_signature",
        );

        let impostor = fundtrail::crypto::SigningKey::generate(&org.code);
        let mut wrong_key = SignedRequest::sign(&impostor, &purpose, payload.clone()).unwrap();
        check(
            "signed by an unregistered key",
            Some(&org.token),
            as_json(&wrong_key),
            401,
            "unknown_key",
        );
        wrong_key.key_id = org.key.key_id.clone();
        check(
            "signature by another key under the org's key id",
            Some(&org.token),
            as_json(&wrong_key),
            401,
            "bad_signature",
        );

        let other_purpose =
            SignedRequest::sign(&org.key, "POST /api/v1/somewhere-else", payload.clone()).unwrap();
        check(
            "signed for another endpoint",
            Some(&org.token),
            as_json(&other_purpose),
            401,
            "bad_signature",
        );

        let other = if org.code == "TOWN2" {
            &t.town
        } else {
            &t.town2
        };
        let by_other = SignedRequest::sign(&other.key, &purpose, payload.clone()).unwrap();
        check(
            "signed by another org than the token's",
            Some(&org.token),
            as_json(&by_other),
            403,
            "signer_mismatch",
        );

        let stale = SignedRequest::sign_with(
            &org.key,
            &purpose,
            payload.clone(),
            &fundtrail::crypto::new_nonce(),
            "2020-01-01T00:00:00Z",
        )
        .unwrap();
        check(
            "signed long ago",
            Some(&org.token),
            as_json(&stale),
            401,
            "stale_signature",
        );

        let mut bad_sig = signed.clone();
        bad_sig.signature = "not base64!".into();
        check(
            "garbled signature",
            Some(&org.token),
            as_json(&bad_sig),
            401,
            "bad_signature",
        );

        // The genuine one is accepted once, then replaying it is refused and writes nothing.
        let r = t.app.post(Some(&org.token), &ep.path, &as_json(&signed));
        assert!(
            r.status == 200 || r.status == 201,
            "genuine at {}: {:?}",
            ep.path,
            r.body
        );
        let after_first = t.app.snapshot();
        let r = t.app.post(Some(&org.token), &ep.path, &as_json(&signed));
        assert_eq!(
            (r.status, r.code()),
            (409, "replayed_submission"),
            "replay at {}: {:?}",
            ep.path,
            r.body
        );
        assert_eq!(
            t.app.snapshot(),
            after_first,
            "replay at {} wrote something",
            ep.path
        );
    }
    assert!(t.app.verify_db().ok());
}

#[test]
fn a_retired_key_can_no_longer_sign_but_its_old_entries_still_verify() {
    let t = Tree::build();
    let new_key = fundtrail::crypto::SigningKey::generate("TOWN");
    let r = t.app.post_signed(
        &t.town,
        "/api/v1/orgs/TOWN/keys",
        json!({"public_key": new_key.public_key_b64()}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    t.app
        .append(&t.town, vec![t.payment(0, "780.00", "OLD-KEY-1")])
        .unwrap();
    let r = t.app.post_signed(
        &t.town,
        &format!("/api/v1/orgs/TOWN/keys/{}/retire", t.town.key.key_id),
        json!({}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let err = t
        .app
        .append(&t.town, vec![t.payment(1, "780.00", "OLD-KEY-2")])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "key_not_valid");
    let rotated = Org {
        key: std::sync::Arc::new(new_key),
        ..t.town.clone()
    };
    t.app
        .append(&rotated, vec![t.payment(1, "780.00", "NEW-KEY-1")])
        .unwrap();
    let report = t.app.verify_db();
    assert!(report.ok(), "{:?}", report.failure);
}

#[test]
fn revoked_tokens_and_reads_without_tokens_are_refused() {
    let t = Tree::build();
    let r = t.app.post_signed(
        &t.town,
        "/api/v1/orgs/TOWN/tokens",
        json!({"label": "temp"}),
    );
    let id = r.body["id"].as_i64().unwrap();
    let token = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(t.app.get(Some(&token), "/api/v1/orgs").status, 200);
    let r = t
        .app
        .post_signed(&t.town2, &format!("/api/v1/tokens/{id}/revoke"), json!({}));
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = t
        .app
        .post_signed(&t.town, &format!("/api/v1/tokens/{id}/revoke"), json!({}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        t.app.get(Some(&token), "/api/v1/orgs").code(),
        "unauthorized"
    );
    for path in [
        "/api/v1/orgs",
        "/api/v1/entries",
        "/api/v1/balances",
        "/api/v1/recipients",
        "/api/v1/keys",
        "/api/v1/programs",
        "/api/v1/ledger/head",
    ] {
        assert_eq!(t.app.get(None, path).status, 401, "{path}");
    }
    assert_eq!(t.app.get(None, "/api/v1/health").status, 200);
    let listed = t.app.get(Some(&t.town.token), "/api/v1/orgs/TOWN/tokens");
    assert!(listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .any(|tok| tok["id"] == id && tok["revoked_at"].is_string()));
    assert!(
        !listed.body.to_string().contains("ftk_"),
        "token secrets must never be listed"
    );
    assert_eq!(
        t.app
            .get(Some(&t.town2.token), "/api/v1/orgs/TOWN/tokens")
            .status,
        403
    );
}

#[test]
fn the_operator_cannot_give_itself_a_key_to_an_org_that_has_one() {
    let t = Tree::build();
    let operator_key = fundtrail::crypto::SigningKey::generate("TOWN");
    let add = |by: &Org, key: &fundtrail::crypto::SigningKey| {
        t.app.post_signed(
            by,
            "/api/v1/orgs/TOWN/keys",
            json!({"public_key": key.public_key_b64()}),
        )
    };
    let r = add(&t.app.admin, &operator_key);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{:?}", r.body);
    // TOWN rotates its own key: recorded as registered by TOWN.
    let rotated = fundtrail::crypto::SigningKey::generate("TOWN");
    let r = add(&t.town, &rotated);
    assert_eq!(
        (r.status, r.body["registered_by"].as_str()),
        (201, Some("TOWN")),
        "{:?}",
        r.body
    );
    // Recovery: once every key of TOWN is retired (a lost laptop), the admin may register
    // one, and the public key list says who did.
    for key_id in [t.town.key.key_id.clone(), rotated.key_id.clone()] {
        let r = t.app.post_signed(
            &t.app.admin,
            &format!("/api/v1/orgs/TOWN/keys/{key_id}/retire"),
            json!({}),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let r = add(&t.app.admin, &operator_key);
    assert_eq!(
        (r.status, r.body["registered_by"].as_str()),
        (201, Some("OPERATOR")),
        "{:?}",
        r.body
    );
    assert!(t.app.verify_db().ok());
}

#[test]
fn a_key_retired_while_its_batch_waited_cannot_be_recorded() {
    let t = Tree::build();
    let mut conn = t.app.conn();
    let actor = fundtrail::auth::Actor::for_org(&mut conn, "TOWN").unwrap();
    let purpose = fundtrail::ledger::ENTRIES_PURPOSE;
    let req = SignedRequest::sign(
        &t.town.key,
        purpose,
        json!({"entries": [t.payment(0, "1.00", "LATE")]}),
    )
    .unwrap();
    let now = fundtrail::domain::now_micros();
    let verified = fundtrail::signing::verify(&mut conn, &actor, purpose, req, now).unwrap();
    // Retired five seconds from now (a margin for a slow machine), while the batch waits for
    // the writer lock...
    let at = fundtrail::domain::format_micros(now + 5_000_000);
    let r = t.app.post_signed(
        &t.town,
        &format!("/api/v1/orgs/TOWN/keys/{}/retire", t.town.key.key_id),
        json!({"at": at}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // ...and appended (in simulated time) ten seconds from now: refused, nothing written, the
    // chain stays valid.
    let before = t.app.snapshot();
    let err =
        fundtrail::ledger::append::append(&mut conn, &verified, now + 10_000_000).unwrap_err();
    assert_eq!(err.code().as_str(), "key_not_valid");
    assert_eq!(t.app.snapshot(), before);
    assert!(t.app.verify_db().ok());
}
