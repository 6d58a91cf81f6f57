//! The recipient registry: ID numbers are checked, personal data is sealed at rest and shown
//! only with a logged reason, and lists carry pseudonyms only.

use diesel::prelude::*;
use fundtrail_e2e::{id_number, Tree};
use serde_json::json;

#[test]
fn id_numbers_are_validated_and_a_bad_row_registers_nobody() {
    let t = Tree::build();
    let before = t.app.snapshot();
    let mut bad = id_number(900);
    bad.replace_range(17..18, if bad.ends_with('1') { "2" } else { "1" });
    let r = t.app.post_signed(
        &t.town,
        "/api/v1/recipients",
        json!({"recipients": [
            {"name": "甲", "id_number": id_number(901), "bank_account": "6228480000000000901"},
            {"name": "乙", "id_number": bad, "bank_account": "6228480000000000902"},
            {"name": "丙", "id_number": id_number(903), "bank_account": "12"},
        ]}),
    );
    assert_eq!(r.status, 422, "{:?}", r.body);
    let errors: Vec<(u64, &str, &str)> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["item"].as_u64().unwrap(),
                e["error"].as_str().unwrap(),
                e["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, "invalid_id_number", "id_number"),
            (2, "invalid_field", "bank_account")
        ]
    );
    assert_eq!(t.app.snapshot(), before);
    // Registering someone already registered (anywhere) is refused.
    let r = t.app.post_signed(&t.town2, "/api/v1/recipients", json!({"recipients": [{"name": "重复", "id_number": id_number(1), "bank_account": "6228480000000000001"}]}));
    assert_eq!(
        (r.status, r.code()),
        (409, "duplicate_recipient"),
        "{:?}",
        r.body
    );
    // ...without telling the other office who it is (no pseudonym to look payments up by).
    assert!(
        !r.body.to_string().contains(&t.recipients[0]),
        "{:?}",
        r.body
    );
}

#[test]
fn personal_data_is_sealed_at_rest_and_every_read_is_logged_with_its_reason() {
    let t = Tree::build();
    let p = &t.recipients[3];
    // Nothing personal in the database file's registry rows, list views or the ledger.
    let mut conn = t.app.conn();
    let blobs: Vec<Vec<u8>> = fundtrail_schema::schema::recipients::table
        .select(fundtrail_schema::schema::recipients::personal_data)
        .load(&mut conn)
        .unwrap();
    let needle = id_number(4);
    assert!(blobs
        .iter()
        .all(|b| !b.windows(needle.len()).any(|w| w == needle.as_bytes())));
    let list = t
        .app
        .get(Some(&t.auditor.token), "/api/v1/recipients?limit=1000");
    assert_eq!(list.body["recipients"].as_array().unwrap().len(), 20);
    assert!(!list.body.to_string().contains(&needle) && !list.body.to_string().contains("测试4"));

    let path = format!("/api/v1/recipients/{p}/personal-data");
    assert_eq!(
        t.app.get(Some(&t.auditor.token), &path).code(),
        "invalid_query",
        "a reason is required"
    );
    assert_eq!(
        t.app
            .get(Some(&t.auditor.token), &format!("{path}?reason=x"))
            .code(),
        "invalid_query",
        "a real reason"
    );
    assert_eq!(
        t.app
            .get(
                Some(&t.town2.token),
                &format!("{path}?reason=checking%20a%20complaint")
            )
            .status,
        403,
        "another office"
    );
    assert_eq!(
        t.app
            .get(
                Some(&t.prov.token),
                &format!("{path}?reason=checking%20a%20complaint")
            )
            .status,
        403,
        "a bureau"
    );
    let r = t.app.get(
        Some(&t.auditor.token),
        &format!("{path}?reason=%E5%AE%A1%E8%AE%A1%E6%8A%BD%E6%9F%A5%202026-07"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id_number"], json!(needle));
    assert_eq!(r.body["name"], json!("测试4"));
    let r = t.app.get(
        Some(&t.town.token),
        &format!("{path}?reason=payroll%20correction"),
    );
    assert_eq!(r.status, 200);

    let log = t.app.get(
        Some(&t.town.token),
        &format!("/api/v1/recipients/{p}/access-log"),
    );
    let seen: Vec<(&str, &str)> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["org"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![("AUD", "审计抽查 2026-07"), ("TOWN", "payroll correction")]
    );
    assert_eq!(
        t.app
            .get(
                Some(&t.town2.token),
                &format!("/api/v1/recipients/{p}/access-log")
            )
            .status,
        403
    );

    // A local office lists only its own; a pseudonym resolves only for its own office.
    let own = t.app.get(Some(&t.town2.token), "/api/v1/recipients");
    assert_eq!(own.body["recipients"].as_array().unwrap().len(), 0);
    let r = t.app.post(
        Some(&t.town.token),
        "/api/v1/recipients/resolve",
        &json!({"id_numbers": [id_number(4), id_number(999)]}),
    );
    assert_eq!(r.body["pseudonyms"], json!([p, null]));
    let r = t.app.post(
        Some(&t.town2.token),
        "/api/v1/recipients/resolve",
        &json!({"id_numbers": [id_number(4)]}),
    );
    assert_eq!(r.body["pseudonyms"], json!([null]));
}
