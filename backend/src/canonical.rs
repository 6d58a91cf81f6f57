//! RFC 8785 (JCS) canonical JSON for the values Fundtrail signs and hashes.
//!
//! Fundtrail only ever signs objects whose leaves are strings, integers, booleans and nulls
//! (money is a decimal *string*), so this implements exactly that subset of RFC 8785: object
//! keys sorted by UTF-16 code units, no whitespace, strings escaped as ECMAScript's
//! `JSON.stringify` does, integers in plain decimal. A float anywhere is refused rather than
//! guessed at, because two languages rarely print a float the same way.
//!
//! ```
//! use fundtrail::canonical::to_canonical_string;
//! let v = serde_json::json!({"b": "雪\n", "a": [1, null, true]});
//! assert_eq!(to_canonical_string(&v).unwrap(), "{\"a\":[1,null,true],\"b\":\"雪\\n\"}");
//! ```

use serde_json::Value;
use std::fmt::Write as _;

/// The largest integer JCS can carry exactly (2^53 - 1, as in ECMAScript).
pub const INTEGER_ABS_MAX: u64 = (1 << 53) - 1;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("{path}: numbers must be integers (write decimals such as amounts as strings)")]
    NotAnInteger { path: String },
    #[error("{path}: integer is outside ±(2^53-1)")]
    IntegerOutOfRange { path: String },
}

/// Serializes `value` to its canonical text.
pub fn to_canonical_string(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, &mut String::from("$"))?;
    Ok(out)
}

/// Serializes `value` to canonical UTF-8 bytes.
pub fn to_canonical_bytes(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    to_canonical_string(value).map(String::into_bytes)
}

fn write_value(out: &mut String, value: &Value, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > INTEGER_ABS_MAX {
                    return Err(CanonicalError::IntegerOutOfRange { path: path.clone() });
                }
                write!(out, "{i}").expect("writing to a String cannot fail");
            } else if let Some(u) = n.as_u64() {
                if u > INTEGER_ABS_MAX {
                    return Err(CanonicalError::IntegerOutOfRange { path: path.clone() });
                }
                write!(out, "{u}").expect("writing to a String cannot fail");
            } else {
                return Err(CanonicalError::NotAnInteger { path: path.clone() });
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let len = path.len();
                write!(path, "[{i}]").expect("writing to a String cannot fail");
                write_value(out, item, path)?;
                path.truncate(len);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // RFC 8785 §3.2.3: sort by UTF-16 code units, not by UTF-8 bytes.
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                let len = path.len();
                path.push('.');
                path.push_str(key);
                write_value(out, &map[key], path)?;
                path.truncate(len);
            }
            out.push('}');
        }
    }
    Ok(())
}

/// Appends `s` as a canonical JSON string (quoted and escaped).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Copy runs that need no escaping whole (almost every string is one run); only `"`, `\`
    // and control characters are escaped, all ASCII, so byte positions are char boundaries.
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'"' && b != b'\\' && b >= 0x20 {
            continue;
        }
        out.push_str(&s[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => write!(out, "\\u{:04x}", b).expect("writing to a String cannot fail"),
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_utf16_code_units() {
        // U+E000 sorts before U+1F600 in UTF-16 (0xE000 < 0xD83D is false... check RFC example):
        // RFC 8785 §3.2.3 orders "\u20ac" (0x20AC) before "\ud83d\ude00" (0xD83D) before "\ufb33".
        let v = json!({"\u{fb33}": 3, "\u{1F600}": 2, "\u{20ac}": 1, "a": 0});
        assert_eq!(
            to_canonical_string(&v).unwrap(),
            "{\"a\":0,\"\u{20ac}\":1,\"\u{1F600}\":2,\"\u{fb33}\":3}"
        );
    }

    #[test]
    fn escapes_like_json_stringify() {
        let v = json!("a\"b\\c\u{1}\u{1f}\t/é");
        assert_eq!(
            to_canonical_string(&v).unwrap(),
            "\"a\\\"b\\\\c\\u0001\\u001f\\t/é\""
        );
    }

    #[test]
    fn every_character_is_written_as_serde_json_writes_it() {
        // All of ASCII and a sample of the rest, alone and inside runs of plain text.
        let mut chars: Vec<char> = (0u8..=0x7f).map(char::from).collect();
        chars.extend([
            'é',
            '低',
            '保',
            '\u{2028}',
            '\u{fffd}',
            '\u{1f600}',
            '\u{7f}',
        ]);
        for c in &chars {
            for s in [c.to_string(), format!("ab{c}cd"), format!("{c}{c}x{c}")] {
                let mut ours = String::new();
                write_string(&mut ours, &s);
                assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{:?}", s);
            }
        }
        let all: String = chars.iter().collect();
        let mut ours = String::new();
        write_string(&mut ours, &all);
        assert_eq!(ours, serde_json::to_string(&all).unwrap());
    }

    #[test]
    fn refuses_floats_and_huge_integers_with_their_path() {
        let err = to_canonical_string(&json!({"x": [1, 2.5]})).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::NotAnInteger {
                path: "$.x[1]".into()
            }
        );
        let err = to_canonical_string(&json!({"n": 9007199254740992u64})).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::IntegerOutOfRange { path: "$.n".into() }
        );
        assert_eq!(
            to_canonical_string(&json!(-9007199254740991i64)).unwrap(),
            "-9007199254740991"
        );
    }
}
