//! Field `:86:` of a transaction, information to the account owner: the SWIFT `/TAG/value/`
//! layout, the German `?NN` subfield layout, or free text; see the module documentation of
//! [`crate::mt940`] for what is read from each.

/// What a `:86:` says beyond its text.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Info86 {
    pub(crate) text: Option<String>,
    pub(crate) reference: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) account: Option<String>,
    /// The `/TAG/` layout named a `/BENM/` or `/ORDP/` party.
    pub(crate) party_tag: bool,
}

/// Interprets a `:86:` (its lines joined by `\n`); `debit` says which party of a
/// `/BENM/` + `/ORDP/` pair is the other one.
pub(crate) fn interpret_86(info: &str, debit: bool) -> Info86 {
    // Structured layouts are written at a fixed width and wrapped wherever the width ends,
    // mid-word and mid-tag included (`CONTRA ACCOUN` / `T HOLDER`, `S?25VWZ+`): the lines
    // are rejoined exactly as they were split, nothing inserted.
    let joined: String = info.split('\n').collect();
    let joined = joined.trim();
    german(joined)
        .or_else(|| slash(joined, debit))
        .unwrap_or_else(|| Info86 {
            text: clean(info),
            ..Info86::default()
        })
}

/// Trimmed, and `None` when empty or `NOTPROVIDED` (SEPA's placeholder).
fn clean(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty() && !t.eq_ignore_ascii_case("NOTPROVIDED")).then(|| t.to_string())
}

/// Transaction type and remittance, the description a bank row keeps. The name and account
/// stay out of it: bank rows keep those only masked (ARCHITECTURE.md, "Personal data stays
/// sealed"), and the whole field is in the kept statement file.
fn description(kind: Option<String>, remittance: Option<String>) -> Option<String> {
    match (kind, remittance) {
        (Some(k), Some(r)) => Some(format!("{k} | {r}")),
        (k, r) => k.or(r),
    }
}

// ------------------------------------------------------------------------------------------
// German `?NN` layout
// ------------------------------------------------------------------------------------------

/// SEPA keywords inside the German purpose text (DK "Spezifikation der Datenformate").
const SEPA_KEYWORDS: &[&str] = &[
    "EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "IBAN+", "BIC+",
    "COAM+", "OAMT+",
];

/// `?NN` subfields: `?` and two digits; any other `?` is text.
fn subfields(s: &str) -> Vec<(u8, &str)> {
    let b = s.as_bytes();
    let starts: Vec<usize> = (0..b.len().saturating_sub(2))
        .filter(|&i| b[i] == b'?' && b[i + 1].is_ascii_digit() && b[i + 2].is_ascii_digit())
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let end = starts.get(n + 1).copied().unwrap_or(b.len());
            let code = (b[i + 1] - b'0') * 10 + (b[i + 2] - b'0');
            // `i + 3` follows three ASCII bytes and `end` is a `?` or the end: boundaries.
            (code, s.get(i + 3..end).unwrap_or(""))
        })
        .collect()
}

/// Each SEPA keyword found in `purpose` with its value, up to the next keyword.
fn sepa_values(purpose: &str) -> Vec<(&'static str, &str)> {
    let mut at: Vec<(usize, &'static str)> = SEPA_KEYWORDS
        .iter()
        .flat_map(|k| purpose.match_indices(k).map(move |(i, _)| (i, *k)))
        .collect();
    at.sort_unstable();
    at.iter()
        .enumerate()
        .map(|(n, &(i, k))| {
            let end = at.get(n + 1).map_or(purpose.len(), |next| next.0);
            (k, purpose.get(i + k.len()..end).unwrap_or(""))
        })
        .collect()
}

/// `NNN?00…?20…`: a 3-digit business transaction code (GVC), then subfields.
fn german(s: &str) -> Option<Info86> {
    let b = s.as_bytes();
    if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_digit) || b[3] != b'?' {
        return None;
    }
    let (mut posting, mut purpose, mut name) = (String::new(), String::new(), String::new());
    let mut account = None;
    for (code, value) in subfields(s.get(3..).unwrap_or("")) {
        match code {
            0 => posting.push_str(value),
            20..=29 | 60..=63 => purpose.push_str(value),
            31 => account = account.or_else(|| clean(value)),
            32 | 33 => name.push_str(value),
            // ?10 prima nota, ?30 bank code, ?34 text key extension: nothing to keep.
            _ => {}
        }
    }
    let sepa = sepa_values(&purpose);
    let get = |key: &str| {
        sepa.iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| clean(v))
    };
    // Without SEPA keywords the whole purpose is the remittance (pre-SEPA layout).
    let remittance = if sepa.is_empty() {
        clean(&purpose)
    } else {
        get("SVWZ+")
    };
    Some(Info86 {
        reference: get("EREF+"),
        account: account.or_else(|| get("IBAN+")),
        name: clean(&name),
        text: description(clean(&posting), remittance),
        party_tag: false,
    })
}

// ------------------------------------------------------------------------------------------
// SWIFT `/TAG/value/` layout
// ------------------------------------------------------------------------------------------

/// Code words of the SWIFT structured layout as ABN AMRO, ING, Rabobank and Deutsche Bank
/// write it. Only these start a field, so a value may contain `/` (`INV/2024/7`).
const TAGS: &[&str] = &[
    "ACCW",
    "ADDR",
    "BENM",
    "BIC",
    "BUSP",
    "CACT",
    "CBIC",
    "CD",
    "CDTRREF",
    "CDTRREFTP",
    "CHGS",
    "CNTP",
    "COAM",
    "CREF",
    "CRNM",
    "CSID",
    "EREF",
    "EXCH",
    "IBAN",
    "ID",
    "IREF",
    "ISDT",
    "ISSR",
    "MARF",
    "NAME",
    "NRTX",
    "OCMT",
    "ORDP",
    "PREF",
    "PURP",
    "REMI",
    "RTRN",
    "SVCL",
    "TRCD",
    "TRTP",
    "ULTB",
    "ULTC",
    "ULTD",
    "ULTE",
];

/// The code word starting at the `/` at byte `i`, if any (`/NAME/`).
fn tag_at(s: &str, i: usize) -> Option<&'static str> {
    if s.as_bytes().get(i) != Some(&b'/') {
        return None;
    }
    let rest = s.get(i + 1..)?;
    TAGS.iter()
        .copied()
        .find(|t| rest.starts_with(t) && rest.as_bytes().get(t.len()) == Some(&b'/'))
}

/// The `(tag, raw value)` pairs, or `None` when `s` does not start with a code word.
/// A value runs to the next code word's `/`, so ING's `/EREF/x//MARF/` gives `x/`.
fn slash_fields(s: &str) -> Option<Vec<(&'static str, &str)>> {
    let mut tag = tag_at(s, 0)?;
    let mut start = tag.len() + 2;
    let mut fields = Vec::new();
    let mut i = start;
    while i < s.len() {
        if let Some(next) = tag_at(s, i) {
            fields.push((tag, s.get(start..i).unwrap_or("")));
            tag = next;
            start = i + next.len() + 2;
            i = start;
        } else {
            i += 1;
        }
    }
    fields.push((tag, s.get(start..).unwrap_or("")));
    Some(fields)
}

/// A single value: trimmed, without the `/` that closes it.
fn single(raw: &str) -> Option<String> {
    clean(raw.trim().trim_end_matches('/'))
}

/// `/REMI/` text, `/REMI/USTD//text/` (unstructured) or `/REMI/STRD/CUR/reference/`
/// (structured: issuer, then the creditor reference).
fn remittance(raw: &str) -> Option<String> {
    let v = raw.trim();
    let v = if let Some(r) = v.strip_prefix("USTD/") {
        r.strip_prefix('/').unwrap_or(r)
    } else if let Some(r) = v.strip_prefix("STRD/") {
        let r = r.trim_start_matches('/');
        match r.split_once('/') {
            Some((issuer, reference))
                if (1..=4).contains(&issuer.len())
                    && issuer.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                reference
            }
            _ => r,
        }
    } else {
        v
    };
    single(v)
}

#[derive(Default)]
struct Party {
    name: Option<String>,
    account: Option<String>,
}

impl Party {
    fn set_name(&mut self, raw: &str) {
        if self.name.is_none() {
            self.name = single(raw);
        }
    }

    fn set_account(&mut self, raw: &str) {
        if self.account.is_none() {
            self.account = single(raw);
        }
    }
}

/// Which party a `/NAME/` or `/IBAN/` belongs to.
#[derive(Clone, Copy)]
enum Scope {
    /// Directly in the field (ABN AMRO: `/TRTP/…/IBAN/…/BIC/…/NAME/…`).
    Top,
    Beneficiary,
    Ordering,
    /// `/ULTD/`, `/ULTC/`, …: the ultimate debtor or creditor, not the counterparty.
    Ultimate,
}

/// `/CNTP/account/BIC/name/city/`: a name may contain `/` when the city follows.
fn counterparty(raw: &str, party: &mut Party) {
    let v = raw.trim();
    let v = v.strip_suffix('/').unwrap_or(v);
    let parts: Vec<&str> = v.split('/').collect();
    party.set_account(parts.first().copied().unwrap_or(""));
    let name = match parts.len() {
        0..=2 => String::new(),
        3 => parts[2].to_string(),
        n => parts[2..n - 1].join("/"),
    };
    party.set_name(&name);
}

fn slash(s: &str, debit: bool) -> Option<Info86> {
    let fields = slash_fields(s)?;
    let (mut explicit, mut top, mut benm, mut ordp, mut ultimate) = Default::default();
    let (mut eref, mut kind, mut remi, mut creditor_ref) = (None, None, None, None);
    let mut scope = Scope::Top;
    let mut party_tag = false;
    for (tag, raw) in fields {
        let party: &mut Party = match scope {
            Scope::Top => &mut top,
            Scope::Beneficiary => &mut benm,
            Scope::Ordering => &mut ordp,
            Scope::Ultimate => &mut ultimate,
        };
        match tag {
            "NAME" => party.set_name(raw),
            "IBAN" => party.set_account(raw),
            // Parts of the current party or code group.
            "BIC" | "ID" | "ADDR" | "CD" | "ISSR" | "CBIC" => {}
            _ => {
                scope = Scope::Top;
                match tag {
                    "EREF" => eref = eref.or_else(|| single(raw)),
                    "TRTP" => kind = kind.or_else(|| single(raw)),
                    "REMI" => remi = remi.or_else(|| remittance(raw)),
                    "CDTRREF" => creditor_ref = creditor_ref.or_else(|| single(raw)),
                    "CNTP" => counterparty(raw, &mut explicit),
                    "CRNM" => explicit.set_name(raw),
                    "CACT" => explicit.set_account(raw),
                    // `/BENM//NAME/…`; a value right after the tag is taken as the name.
                    "BENM" => {
                        benm.set_name(raw);
                        scope = Scope::Beneficiary;
                        party_tag = true;
                    }
                    "ORDP" => {
                        ordp.set_name(raw);
                        scope = Scope::Ordering;
                        party_tag = true;
                    }
                    "ULTB" | "ULTC" | "ULTD" | "ULTE" => scope = Scope::Ultimate,
                    _ => {}
                }
            }
        }
    }
    // Money leaving goes to the beneficiary; money arriving comes from the ordering party.
    let (first, second) = if debit { (benm, ordp) } else { (ordp, benm) };
    Some(Info86 {
        reference: eref,
        name: [&explicit, &first, &second, &top]
            .iter()
            .find_map(|p| p.name.clone()),
        account: [&explicit, &first, &second, &top]
            .iter()
            .find_map(|p| p.account.clone()),
        text: description(kind, remi.or(creditor_ref)),
        party_tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_subfields_and_sepa_keywords() {
        let i = interpret_86(
            "166?00GUTSCHRIFT?100599?20EREF+PAY-42?21SVWZ+Sozialhilfe Mai?30HYVEDEMMXXX\n?31DE02120300000000202051?32MAX MUSTER?33MANN",
            false,
        );
        assert_eq!(i.reference.as_deref(), Some("PAY-42"));
        assert_eq!(i.text.as_deref(), Some("GUTSCHRIFT | Sozialhilfe Mai"));
        assert_eq!(i.name.as_deref(), Some("MAX MUSTERMANN"));
        assert_eq!(i.account.as_deref(), Some("DE02120300000000202051"));
        let i = interpret_86("005?20Miete? Mai?21 Whg 3?32X", true);
        assert_eq!(
            i.text.as_deref(),
            Some("Miete? Mai Whg 3"),
            "a lone ? is text"
        );
        assert_eq!((i.reference, i.account), (None, None));
    }

    #[test]
    fn slash_values_may_hold_slashes_and_wrap() {
        let i = interpret_86(
            "/TRTP/SEPA OVERBOEKING/IBAN/NL44RABO0123456789/BIC/RABONL2U/NAME/J\nANSEN/REMI/Bijstand mei/EREF/INV/2024/7",
            true,
        );
        assert_eq!(i.name.as_deref(), Some("JANSEN"));
        assert_eq!(i.account.as_deref(), Some("NL44RABO0123456789"));
        assert_eq!(i.text.as_deref(), Some("SEPA OVERBOEKING | Bijstand mei"));
        assert_eq!(i.reference.as_deref(), Some("INV/2024/7"));
    }

    #[test]
    fn counterparty_subfields() {
        let mut p = Party::default();
        counterparty(
            "NL01BANK0123456789/BANKNL2A/Danske Bank A/S/KOBENHAVN/",
            &mut p,
        );
        assert_eq!(p.name.as_deref(), Some("Danske Bank A/S"));
        let mut p = Party::default();
        counterparty("NL01BANK0123456789/BANKNL2A/J Jansen", &mut p);
        assert_eq!(p.name.as_deref(), Some("J Jansen"));
        assert_eq!(p.account.as_deref(), Some("NL01BANK0123456789"));
    }

    #[test]
    fn free_text_is_kept_whole() {
        let i = interpret_86(" BEA   NR:XYZ /12.00\nsecond line ", true);
        assert_eq!(i.text.as_deref(), Some("BEA   NR:XYZ /12.00\nsecond line"));
        assert_eq!((i.name, i.account, i.reference), (None, None, None));
    }
}
