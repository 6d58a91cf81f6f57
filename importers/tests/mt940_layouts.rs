//! MT940 as banks write it: every transaction of every shared sample against the values
//! another implementation expects (mt940-rs JSON, wolph/mt940 YAML), the `:86:` layouts on
//! real samples and on hand-written fields modelled on the banks' format descriptions, and
//! each branch of the `:61:` grammar.

mod common;

use std::collections::HashMap;

use chrono::NaiveDate;
use common::{dec, parse, sample, sample_json, Parsed};
use fundtrail_importers::{ErrorKind, Format, Location, Transaction};
use serde_json::Value;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

fn mt940(text: &str) -> Parsed {
    parse(text.as_bytes(), Format::Mt940)
}

/// One statement around `body` (`:61:`/`:86:` lines), in EUR.
fn statement(body: &str) -> Parsed {
    mt940(&format!(
        ":20:T1\n:25:NL01TEST0123456789\n:28C:1/1\n:60F:C240101EUR1000,00\n{body}\n:62F:C240131EUR1000,00\n-\n"
    ))
}

/// The only transaction of `body`, which must parse without errors.
fn one(body: &str) -> Transaction {
    let p = statement(body);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.txs.len(), 1, "{:?}", p.txs);
    p.txs[0].clone()
}

// ------------------------------------------------------------------------------------------
// Samples against mt940-rs's expected results
// ------------------------------------------------------------------------------------------

/// mt940-rs reduces free text to the SWIFT character set; do the same to ours to compare.
fn swift_sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ü' => 'u',
            'ä' => 'a',
            'ö' => 'o',
            'é' | 'ë' => 'e',
            c if c.is_ascii_alphanumeric() || " \n/-?:().,+".contains(c) => c,
            _ => '.',
        })
        .collect()
}

fn json_str(v: &Value) -> Option<&str> {
    v.as_str()
}

/// What the `:61:` reference fields mean when a bank fills them with a placeholder.
fn placeholder(r: &str) -> bool {
    let t = r.trim();
    t.is_empty() || ["NONREF", "EREF", "NOTPROVIDED"].contains(&t)
}

/// Checks every statement and transaction of `file` against mt940-rs's JSON: account,
/// balances, and per transaction the value and entry dates, the amount with its mark
/// (debit, credit, reversals), the customer and bank references, and — for banks whose
/// `:86:` is free text (`free_text`) — the text.
fn check_against_mt940_rs(file: &str, free_text: bool) -> Parsed {
    let p = parse(&sample(&format!("mt940/{file}.sta")), Format::Mt940);
    assert!(p.errors.is_empty(), "{file}: {:?}", p.errors);
    let expected = sample_json(&format!("mt940/{file}.expected-by-mt940-rs.json"));
    let expected = expected.as_array().expect("a list of statements");
    assert_eq!(p.stmts.len(), expected.len(), "{file}: statements");
    let lines: Vec<&Value> = expected
        .iter()
        .flat_map(|e| e["statement_lines"].as_array().expect("lines"))
        .collect();
    assert_eq!(p.txs.len(), lines.len(), "{file}: transactions");
    for (s, e) in p.stmts.iter().zip(expected) {
        assert_eq!(
            Some(s.account.as_str()),
            json_str(&e["account_id"]),
            "{file}"
        );
        for (ours, key) in [
            (s.opening_balance, "opening_balance"),
            (s.closing_balance, "closing_balance"),
        ] {
            let b = &e[key];
            let a = dec(b["amount"].as_str().expect("amount"));
            let signed = if b["debit_credit_indicator"] == "Debit" {
                -a
            } else {
                a
            };
            assert_eq!(ours, Some(signed), "{file}: {key}");
        }
    }
    for (n, (t, line)) in p.txs.iter().zip(&lines).enumerate() {
        let at = format!("{file}, transaction {n} ({})", t.location);
        let value = date(line["value_date"].as_str().expect("value date"));
        assert_eq!(t.value_date, Some(value), "{at}");
        let booked = json_str(&line["entry_date"]).map_or(value, date);
        assert_eq!(t.booking_date, booked, "{at}");
        let a = dec(line["amount"].as_str().expect("amount"));
        let (amount, reversal) = match line["ext_debit_credit_indicator"].as_str() {
            Some("Debit") => (-a, false),
            Some("Credit") => (a, false),
            Some("ReverseCredit") => (-a, true),
            Some("ReverseDebit") => (a, true),
            other => panic!("{at}: mark {other:?}"),
        };
        assert_eq!((t.amount, t.reversal), (amount, reversal), "{at}");
        let customer = json_str(&line["customer_ref"]).unwrap_or("");
        if !placeholder(customer) {
            assert_eq!(t.reference.as_deref(), Some(customer.trim()), "{at}");
        }
        assert_eq!(
            t.bank_txn_id.as_deref(),
            json_str(&line["bank_ref"]).map(str::trim),
            "{at}"
        );
        if free_text {
            assert_eq!(
                t.text.as_deref().map(swift_sanitize).as_deref(),
                json_str(&line["information_to_account_owner"]),
                "{at}"
            );
        }
        assert_eq!(t.currency.len(), 3, "{at}");
    }
    p
}

#[test]
fn abnamro_every_transaction() {
    let p = check_against_mt940_rs("abnamro", true);
    assert_eq!(p.txs.len(), 4);
    assert!(p.txs.iter().all(|t| t.reference.is_none()), "all NONREF");
}

#[test]
fn danskebank_every_transaction() {
    let p = check_against_mt940_rs("danskebank-dk", true);
    assert_eq!((p.txs.len(), p.stmts.len()), (89, 15));
    // `DK`: debit with funds code K (the third letter of DKK); `CK`: credit.
    assert_eq!(p.txs[0].amount, dec("-829419.78"));
    assert_eq!(p.txs[5].amount, dec("2000.00"));
    // A bank reference with a slash and a space: `DBT.F.M.T//v/teste kunden`.
    let t = p
        .txs
        .iter()
        .find(|t| t.amount == dec("-10625.00"))
        .expect("the F.M.T row");
    assert_eq!(
        (t.reference.as_deref(), t.bank_txn_id.as_deref()),
        (Some("DBT.F.M.T"), Some("v/teste kunden"))
    );
    assert!(p.txs.iter().all(|t| t.currency == "DKK"));
}

#[test]
fn ing_every_transaction() {
    let p = check_against_mt940_rs("ing", true);
    assert_eq!(p.txs.len(), 7);
    assert_eq!(p.txs[2].reference.as_deref(), Some("TMG TANGO"));
}

#[test]
fn mbank_every_transaction_keeps_trailing_spaces_of_wrapped_lines() {
    let p = check_against_mt940_rs("mbank", true);
    assert_eq!(p.txs.len(), 3);
    // `CN`: credit with funds code N; the bank reference is the transaction id.
    assert_eq!(p.txs[0].amount, dec("0.01"));
    assert_eq!(p.txs[0].bank_txn_id.as_deref(), Some("MB170119012058"));
    assert!(p.txs[0]
        .text
        .as_deref()
        .unwrap()
        .contains("Z RACH.: \n5611401081"));
}

#[test]
fn sparkasse_every_transaction() {
    let p = check_against_mt940_rs("sparkasse-buxtehude", true);
    assert_eq!(p.txs.len(), 3);
    assert!(p.txs.iter().all(|t| !t.reversal), "DR is a funds code");
}

#[test]
fn rabobank_every_transaction() {
    // Rabobank's `:86:` is structured: its text is checked in `rabobank_slash_layout`.
    let p = check_against_mt940_rs("rabobank-iban", false);
    assert_eq!((p.txs.len(), p.stmts.len()), (4, 2));
}

// ------------------------------------------------------------------------------------------
// Samples against wolph/mt940's expected results, and ASN without one
// ------------------------------------------------------------------------------------------

fn base64(s: &str) -> Vec<u8> {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ABC.iter().position(|&a| a == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// The transactions of a wolph/mt940 expected YAML, read by hand (it is Python-tagged): each
/// transaction's fields as text; amounts as written, dates (pickled: year as two bytes,
/// month, day) as `YYYY-MM-DD`; `null`s left out.
fn wolph_transactions(yml: &str) -> Vec<HashMap<String, String>> {
    let blocks = yml
        .split("- !!python/object:mt940.models.Transaction\n")
        .skip(1);
    blocks
        .map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            let mut fields = HashMap::new();
            for (i, line) in lines.iter().enumerate() {
                let Some(kv) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) else {
                    continue;
                };
                let Some((key, value)) = kv.split_once(": ") else {
                    continue;
                };
                let value = if value.starts_with("!!python/object:mt940.models.Amount") {
                    lines[i..]
                        .iter()
                        .find_map(|l| l.trim().strip_prefix("- '"))
                        .map(|v| v.trim_end_matches('\'').to_string())
                } else if value.starts_with("!!python/object/apply:mt940.models.Date") {
                    let b = base64(lines[i + 2].trim());
                    let year = u16::from_be_bytes([b[0], b[1]]);
                    Some(format!("{year:04}-{:02}-{:02}", b[2], b[3]))
                } else if value == "null" {
                    None
                } else {
                    Some(value.trim_matches('\'').to_string())
                };
                if let Some(v) = value {
                    fields.insert(key.to_string(), v);
                }
            }
            fields
        })
        .collect()
}

#[test]
fn german_gv_codes_every_transaction_against_wolph() {
    let p = parse(&sample("mt940/german-gv-codes.sta"), Format::Mt940);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let yml = String::from_utf8(sample("mt940/german-gv-codes.expected-by-wolph-mt940.yml"))
        .expect("UTF-8");
    let expected = wolph_transactions(&yml);
    assert_eq!(expected.len(), 2, "the YAML was read");
    assert_eq!(p.txs.len(), expected.len());
    for (t, e) in p.txs.iter().zip(&expected) {
        assert_eq!(t.amount, dec(&e["amount"]), "{e:?}");
        assert_eq!(e["status"], "D");
        assert!(t.amount < dec("0") && !t.reversal);
        assert_eq!(t.value_date, Some(date(&e["date"])));
        let booked = e.get("entry_date").map_or(date(&e["date"]), |d| date(d));
        assert_eq!(t.booking_date, booked);
    }
    assert_eq!(p.txs[1].booking_date, date("2019-10-25"));
}

#[test]
fn asnbank_every_transaction() {
    // SOURCES.md lists an expected YAML for this file, but none was copied: the values are
    // read off the file by eye.
    let p = parse(&sample("mt940/asnbank.sta"), Format::Mt940);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.stmts.len(), 31);
    let got: Vec<_> = p
        .txs
        .iter()
        .map(|t| (t.booking_date, t.value_date, t.amount, t.reversal))
        .collect();
    let want: Vec<_> = [
        ("2020-01-01", "-65.00"),
        ("2020-01-05", "1000.00"),
        ("2020-01-05", "-801.55"),
        ("2020-01-25", "-1.65"),
        ("2020-01-29", "828.72"),
        ("2020-01-29", "-1000.00"),
        ("2020-01-31", "1000.18"),
        ("2020-01-31", "-903.76"),
    ]
    .into_iter()
    .map(|(d, a)| (date(d), Some(date(d)), dec(a), false))
    .collect();
    assert_eq!(got, want);
    // ASN writes the counterparty's IBAN as the customer reference (18 characters, more
    // than SWIFT's 16): kept, not refused.
    assert_eq!(p.txs[0].reference.as_deref(), Some("NL47INGB9999999999"));
    assert_eq!(p.txs[3].reference, None, "no reference at all");
    assert_eq!(
        p.txs[3].text.as_deref(),
        Some("Kosten gebruik betaalrekening inclusief 1 betaalpas")
    );
}

// ------------------------------------------------------------------------------------------
// `:86:` layouts on real samples
// ------------------------------------------------------------------------------------------

#[test]
fn rabobank_slash_layout() {
    let p = parse(&sample("mt940/rabobank-iban.sta"), Format::Mt940);
    let t = &p.txs[0];
    // `/EREF/` wins over the `EREF` placeholder of `:61:`.
    assert_eq!(
        t.reference.as_deref(),
        Some("01-01-2013 12:00 0030000987654321")
    );
    // `/BENM//NAME/CONTRA ACCOUN` + `T HOLDER/`: wrapped mid-word, joined as it was.
    assert_eq!(
        t.counterparty_name.as_deref(),
        Some("CONTRA ACCOUNT HOLDER")
    );
    // The account is the second line of `:61:`.
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("NL70ABNA0987654321")
    );
    assert_eq!(t.text, None, "`/REMI//` is empty; the account is not text");
    let t = &p.txs[1];
    assert_eq!(t.reference, None, "NONREF and no /EREF/");
    assert_eq!(t.counterparty_name.as_deref(), Some("JOHN DOE"));
    assert_eq!(t.counterparty_account.as_deref(), Some("P001234567"));
    assert_eq!(t.text.as_deref(), Some("Reference 201301234"));
    assert_eq!(
        p.txs[2].reference.as_deref(),
        Some("08-01-2013 12:00 0030000987654321")
    );
}

#[test]
fn german_subfield_layout_against_wolph() {
    let p = parse(&sample("mt940/german-gv-codes.sta"), Format::Mt940);
    let yml = String::from_utf8(sample("mt940/german-gv-codes.expected-by-wolph-mt940.yml"))
        .expect("UTF-8");
    let e = &wolph_transactions(&yml)[0];
    let t = &p.txs[0];
    // `?22EREF+ 1234567890123 PAYPAL?23MREF+…`: the value runs to the next keyword.
    assert_eq!(
        t.reference.as_deref(),
        Some(e["end_to_end_reference"].trim())
    );
    assert_eq!(t.reference.as_deref(), Some("1234567890123 PAYPAL"));
    assert_eq!(
        t.counterparty_name.as_deref(),
        Some(e["applicant_name"].as_str())
    );
    assert_eq!(e.get("applicant_iban"), None);
    assert_eq!(t.counterparty_account, None, "no ?31 and no IBAN+");
    // `…034 S?25VWZ+ . SPOTIFY, Ihr Einkauf?26bei SPOTIFY`: the keyword itself is split.
    assert_eq!(t.text.as_deref(), Some(e["purpose"].trim()));
    assert_eq!(t.text.as_deref(), Some(". SPOTIFY, Ihr Einkaufbei SPOTIFY"));
}

// ------------------------------------------------------------------------------------------
// `:86:` layouts, hand-written after the banks' format descriptions
// ------------------------------------------------------------------------------------------

#[test]
fn ing_counterparty_and_unstructured_remittance() {
    let t = one(
        ":61:2510301030C250,00NTRFEREF//25303055056819\n/TRCD/00100/\n\
         :86:/EREF/DISB-2025-10-0042//MARF/M-77//CSID/NL71ZZZ123456780000//CNTP/NL91ABNA04171\n\
         64300/ABNANL2A/J. de Vries-Bakker/AMSTERDAM//ULTD//NAME/Gemeente Test//REMI/USTD//B\n\
         ijstand oktober 2025/nr 42/",
    );
    assert_eq!(t.reference.as_deref(), Some("DISB-2025-10-0042"));
    assert_eq!(t.bank_txn_id.as_deref(), Some("25303055056819"));
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("NL91ABNA0417164300")
    );
    assert_eq!(
        t.counterparty_name.as_deref(),
        Some("J. de Vries-Bakker"),
        "not the ultimate debtor"
    );
    assert_eq!(t.text.as_deref(), Some("Bijstand oktober 2025/nr 42"));
    assert_eq!(t.amount, dec("250.00"));
    // An ultimate party alone names no counterparty.
    let t = one(":61:251030C1,00NTRFEREF\n:86:/EREF/E1//ULTD//NAME/Gemeente Test//REMI/USTD//x/");
    assert_eq!(
        (t.counterparty_name, t.reference.as_deref()),
        (None, Some("E1"))
    );
}

#[test]
fn ing_structured_remittance() {
    let t = one(":61:2510301030D80,00NTRFNONREF//25303055056820\n/TRCD/00100/\n\
         :86:/EREF/NOTPROVIDED//CNTP/NL91ABNA0417164300/ABNANL2A/Woonstichting Oost///REMI/STRD/CUR/1234567890123456/");
    assert_eq!(t.reference, None, "NOTPROVIDED is no reference");
    assert_eq!(t.counterparty_name.as_deref(), Some("Woonstichting Oost"));
    assert_eq!(t.text.as_deref(), Some("1234567890123456"));
}

#[test]
fn abn_amro_sepa_layout_keeps_the_type_in_text() {
    let t = one(":61:2405020502D125,00N654NONREF\n\
         :86:/TRTP/SEPA OVERBOEKING/IBAN/NL44RABO0123456789/BIC/RABONL2U/NAME/J. JAN\n\
         SEN/REMI/Bijstand mei/EREF/NOTPROVIDED");
    assert_eq!(t.counterparty_name.as_deref(), Some("J. JANSEN"));
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("NL44RABO0123456789")
    );
    assert_eq!(t.reference, None);
    assert_eq!(t.text.as_deref(), Some("SEPA OVERBOEKING | Bijstand mei"));
}

#[test]
fn beneficiary_for_debits_ordering_party_for_credits() {
    let info = "/EREF/RET-77/BENM//NAME/Ben Eficiary/IBAN/NL02ABNA0123456789/ORDP//NAME/Or Dering/IBAN/NL91ABNA0417164300/REMI/x";
    let debit = one(&format!(":61:240503D5,00NTRFNONREF\n:86:{info}"));
    assert_eq!(debit.counterparty_name.as_deref(), Some("Ben Eficiary"));
    assert_eq!(
        debit.counterparty_account.as_deref(),
        Some("NL02ABNA0123456789")
    );
    assert_eq!(debit.reference.as_deref(), Some("RET-77"));
    let credit = one(&format!(":61:240503C5,00NTRFNONREF\n:86:{info}"));
    assert_eq!(credit.counterparty_name.as_deref(), Some("Or Dering"));
    assert_eq!(
        credit.counterparty_account.as_deref(),
        Some("NL91ABNA0417164300")
    );
    // An account in `:86:` wins over line 2 of `:61:`.
    let t = one(":61:240503C5,00NTRFNONREF\nNL39RABO0300065264\n\
         :86:/ORDP//NAME/Gemeente Test/IBAN/NL02ABNA0123456789/BIC/ABNANL2A/REMI/retour");
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("NL02ABNA0123456789")
    );
    assert_eq!(t.counterparty_name.as_deref(), Some("Gemeente Test"));
    assert_eq!(t.text.as_deref(), Some("retour"));
}

#[test]
fn counterparty_account_and_name_tags() {
    let t = one(":61:240504C700,00NTRFNONREF\n\
         :86:/CACT/DE89370400440532013000/CRNM/Erika Mustermann/EREF/E2E-1/REMI/Miete INV/2024/5");
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("DE89370400440532013000")
    );
    assert_eq!(t.counterparty_name.as_deref(), Some("Erika Mustermann"));
    assert_eq!(t.reference.as_deref(), Some("E2E-1"));
    assert_eq!(
        t.text.as_deref(),
        Some("Miete INV/2024/5"),
        "slashes in a value"
    );
}

#[test]
fn several_86_fields_of_one_transaction_are_joined() {
    let t = one(":61:240505D10,00NTRFNONREF\n:86:/EREF/E2E-2\n:86:/BENM//NAME/Piet Puk");
    assert_eq!(t.reference.as_deref(), Some("E2E-2"));
    assert_eq!(t.counterparty_name.as_deref(), Some("Piet Puk"));
}

#[test]
fn german_account_name_and_reference() {
    let t = one(":61:2405060506C512,00NMSCNONREF\n\
         :86:166?00SEPA-GUTSCHRIFT?109310?20EREF+NOTPROVIDED?21SVWZ+Sozialhilfe Ma\n\
         ?22i 2024?30COBADEFFXXX?31DE89370400440532013000?32Erika Muster?33mann?34000");
    assert_eq!(t.reference, None, "EREF+NOTPROVIDED");
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("DE89370400440532013000")
    );
    assert_eq!(t.counterparty_name.as_deref(), Some("Erika Mustermann"));
    assert_eq!(
        t.text.as_deref(),
        Some("SEPA-GUTSCHRIFT | Sozialhilfe Mai 2024")
    );
}

#[test]
fn german_iban_keyword_and_reference_preference() {
    let info = ":86:177?00SEPA-UEBERWEISUNG?20EREF+DISB-7?21IBAN+DE02120300000000202051 BIC+BYLA\n\
                ?22DEM1001?23SVWZ+Grundsicherung?32Sozialamt";
    let t = one(&format!(":61:240507D300,00NTRFNONREF\n{info}"));
    assert_eq!(t.reference.as_deref(), Some("DISB-7"), "EREF+ over NONREF");
    assert_eq!(
        t.counterparty_account.as_deref(),
        Some("DE02120300000000202051")
    );
    assert_eq!(t.counterparty_name.as_deref(), Some("Sozialamt"));
    assert_eq!(
        t.text.as_deref(),
        Some("SEPA-UEBERWEISUNG | Grundsicherung")
    );
    // A real customer reference is the owner's own and is kept.
    let t = one(&format!(":61:240507D300,00NTRFKREF-55\n{info}"));
    assert_eq!(t.reference.as_deref(), Some("KREF-55"));
}

#[test]
fn free_text_86_is_kept_whole() {
    let t = one(":61:240508D9,99NTRFNONREF\n:86:Betaling aan /NAME/ niet gestructureerd\nregel 2");
    assert_eq!(
        t.text.as_deref(),
        Some("Betaling aan /NAME/ niet gestructureerd\nregel 2")
    );
    assert_eq!((t.counterparty_name, t.counterparty_account), (None, None));
}

// ------------------------------------------------------------------------------------------
// `:61:` grammar
// ------------------------------------------------------------------------------------------

#[test]
fn entry_date_present_or_absent() {
    let t = one(":61:2312290102D1,00NTRFX");
    assert_eq!(t.value_date, Some(date("2023-12-29")));
    assert_eq!(t.booking_date, date("2024-01-02"), "rolls into January");
    let t = one(":61:231229D1,00NTRFX");
    assert_eq!(t.booking_date, date("2023-12-29"), "value date when absent");
}

#[test]
fn reversal_marks() {
    let t = one(":61:2401050105RD100,50NTRFDISB-1//B2");
    assert!(t.reversal);
    assert_eq!(t.amount, dec("100.50"), "reversal of a debit: money back");
    let t = one(":61:2401050105RC100,50NTRFX");
    assert!(t.reversal);
    assert_eq!(t.amount, dec("-100.50"), "reversal of a credit: money out");
    let t = one(":61:2401050105RDR7,NTRFX");
    assert!(t.reversal);
    assert_eq!(t.amount, dec("7"), "RD with funds code R");
}

#[test]
fn funds_code_is_not_a_reversal() {
    let t = one(":61:2401050105DR7,00NTRFX");
    assert!(!t.reversal);
    assert_eq!(t.amount, dec("-7.00"));
    let t = one(":61:2401050105CR7,00NTRFX");
    assert!(!t.reversal);
    assert_eq!(t.amount, dec("7.00"));
}

#[test]
fn bank_reference_and_supplementary_details() {
    let t = one(":61:240106C42,00NTRFCUST-1//BANK-9\nextra details here");
    assert_eq!(t.reference.as_deref(), Some("CUST-1"));
    assert_eq!(t.bank_txn_id.as_deref(), Some("BANK-9"));
    assert_eq!(t.text.as_deref(), Some("extra details here"), "no :86:");
    let t = one(":61:240106C42,00NTRFCUST-1\n:86:free text");
    assert_eq!(t.bank_txn_id, None);
    assert_eq!(t.text.as_deref(), Some("free text"));
}

#[test]
fn placeholders_give_way_to_eref() {
    for placeholder in ["NONREF", "EREF", "NOTPROVIDED", "nonref", ""] {
        let t = one(&format!(
            ":61:240107D5,00NTRF{placeholder}//B1\n:86:/EREF/DISB-9/REMI/x"
        ));
        assert_eq!(t.reference.as_deref(), Some("DISB-9"), "{placeholder:?}");
        let t = one(&format!(":61:240107D5,00NTRF{placeholder}"));
        assert_eq!(t.reference, None, "{placeholder:?}");
    }
}

#[test]
fn lenient_case_spaces_and_line_breaks() {
    let t = one(":61:240108    d65,00ntrfnonref");
    assert_eq!(
        (t.booking_date, t.amount),
        (date("2024-01-08"), dec("-65.00"))
    );
    assert_eq!(t.reference, None);
    let t = one(":61:2401080108rc1,5ntrfx");
    assert!(t.reversal);
    assert_eq!(t.amount, dec("-1.5"));
    let t = one(":61:2401080108DR\n19,35NDDTNONREF");
    assert_eq!(t.amount, dec("-19.35"), "line break before the amount");
    let t = one(":61:240108C000000000025,00N102REF");
    assert_eq!(t.amount, dec("25.00"), "15 characters");
}

#[test]
fn malformed_lines_are_errors_naming_the_line() {
    let p = mt940(
        ":20:T1\n:25:NL01TEST0123456789\n:60F:C240101EUR0,00\n\
         :61:240109D1,00NTRFGOOD-1\n\
         :61:241309D1,00NTRFBAD-DATE\n\
         :61:240109X1,00NTRFBAD-MARK\n\
         :86:belongs to the bad line\n\
         :61:240109D0000000000001,00NTRFTOO-LONG\n\
         :61:240109D1,00XTRFBAD-TYPE\n\
         :61:240109D1,00NTRFGOOD-2\n\
         :61:240109D,NTRFNO-DIGITS\n\
         :62F:C240109EUR0,00\n-\n",
    );
    let refs: Vec<_> = p.txs.iter().map(|t| t.reference.as_deref()).collect();
    assert_eq!(
        refs,
        vec![Some("GOOD-1"), Some("GOOD-2")],
        "parsing went on"
    );
    let errors: Vec<_> = p
        .errors
        .iter()
        .map(|e| (e.code, e.location.clone(), e.field.as_deref()))
        .collect();
    let at = |n| {
        (
            ErrorKind::MalformedMt940,
            Some(Location::Line(n)),
            Some("61"),
        )
    };
    assert_eq!(errors, vec![at(5), at(6), at(8), at(9), at(11)]);
    for (e, what) in p.errors.iter().zip([
        "value date",
        "debit/credit mark",
        "amount (at most 15",
        "transaction type",
        "amount",
    ]) {
        assert!(e.message.contains(what), "{e}");
        assert!(e.to_string().starts_with("line "), "{e}");
    }
    assert!(
        p.errors[0].message.contains("241309D1,00NTRFBAD-DATE"),
        "{}",
        p.errors[0]
    );
}

#[test]
fn no_prefix_of_a_line_panics() {
    let line = ":61:2312290102RDR1234,56NTRFRÉF-ü//银行-1\nsupplément 34x\n:86:166?00ÄB?20EREF+x?31DE1?32N\n:86:/EREF/é/CNTP/a/b/c/d//REMI/STRD/CUR/1/";
    for (i, _) in line.char_indices() {
        let p = statement(&line[..i]);
        assert!(p.records.len() <= 4, "{i}: {:?}", p.records);
    }
    let p = statement(line);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.txs[0].reference.as_deref(), Some("RÉF-ü"));
    assert_eq!(p.txs[0].bank_txn_id.as_deref(), Some("银行-1"));
}
