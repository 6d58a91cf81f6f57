//! Chinese resident ID numbers (GB 11643-1999): 17 digits and an ISO 7064 MOD 11-2 check
//! character.
//!
//! ```
//! use fundtrail::idcard::{check_char, validate};
//! assert_eq!(check_char("11010519491231002").unwrap(), 'X');
//! assert_eq!(validate("11010519491231002x").unwrap(), "11010519491231002X");
//! assert!(validate("110105194912310021").is_err());
//! ```

use chrono::NaiveDate;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Why an ID number is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("ID number must have 18 characters, found {0}")]
    Length(usize),
    #[error("ID number character {position} must be a digit")]
    NotADigit { position: usize },
    #[error("ID number region code must start with 1-9")]
    Region,
    #[error("ID number birth date {0} is not a real date")]
    BirthDate(String),
    #[error("ID number check character is wrong (expected {expected})")]
    Checksum { expected: char },
}

/// The check character for the first 17 digits.
pub fn check_char(first17: &str) -> Result<char, IdNumberError> {
    if first17.chars().count() != 17 {
        return Err(IdNumberError::Length(first17.chars().count()));
    }
    let mut sum = 0u32;
    for (i, c) in first17.chars().enumerate() {
        let d = c
            .to_digit(10)
            .ok_or(IdNumberError::NotADigit { position: i + 1 })?;
        sum += d * WEIGHTS[i];
    }
    Ok(CHECK_CHARS[(sum % 11) as usize])
}

/// Validates an ID number and returns its normal form (trimmed, upper-case `X`).
pub fn validate(text: &str) -> Result<String, IdNumberError> {
    let id = text.trim().to_ascii_uppercase();
    let len = id.chars().count();
    if len != 18 {
        return Err(IdNumberError::Length(len));
    }
    // Full-width digits (１２３, typed on Chinese input methods) count as 18 characters but are
    // not digits; refuse before any byte slicing below.
    if let Some(position) = id.chars().position(|c| !c.is_ascii()) {
        return Err(IdNumberError::NotADigit {
            position: position + 1,
        });
    }
    let first17 = &id[..17];
    let expected = check_char(first17)?;
    if id.starts_with('0') {
        return Err(IdNumberError::Region);
    }
    let birth = &id[6..14];
    if NaiveDate::parse_from_str(birth, "%Y%m%d").is_err() || &birth[..2] < "18" {
        return Err(IdNumberError::BirthDate(birth.to_string()));
    }
    let last = id.chars().last().expect("length checked above");
    if last != expected {
        if !(last.is_ascii_digit() || last == 'X') {
            return Err(IdNumberError::NotADigit { position: 18 });
        }
        return Err(IdNumberError::Checksum { expected });
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_numbers_pass() {
        // The standard's own example and a commonly published test number.
        assert_eq!(
            validate("11010519491231002X").unwrap(),
            "11010519491231002X"
        );
        assert_eq!(
            validate(" 440524188001010014 ").unwrap(),
            "440524188001010014"
        );
    }

    #[test]
    fn each_kind_of_error_is_named() {
        assert_eq!(validate("1234"), Err(IdNumberError::Length(4)));
        assert_eq!(
            validate("11010519491231002A"),
            Err(IdNumberError::NotADigit { position: 18 })
        );
        assert_eq!(
            validate("1101051949123100AX"),
            Err(IdNumberError::NotADigit { position: 17 })
        );
        assert_eq!(
            validate("110105194913310021"),
            Err(IdNumberError::BirthDate("19491331".into()))
        );
        assert_eq!(
            validate("110105194912310021"),
            Err(IdNumberError::Checksum { expected: 'X' })
        );
        assert_eq!(
            validate("010105194912310023").unwrap_err(),
            IdNumberError::Region
        );
    }

    #[test]
    fn full_width_and_other_non_ascii_input_is_refused_not_a_panic() {
        assert_eq!(
            validate("１１０１０５１９４９１２３１００２Ｘ"),
            Err(IdNumberError::NotADigit { position: 1 })
        );
        assert_eq!(
            validate("11010519491231002é"),
            Err(IdNumberError::NotADigit { position: 18 })
        );
        assert!(check_char("1101051949123100é").is_err());
    }

    #[test]
    fn every_single_digit_change_is_caught() {
        let good = "11010519491231002X";
        for pos in 0..17 {
            for d in b'0'..=b'9' {
                let mut bytes = good.as_bytes().to_vec();
                if bytes[pos] == d {
                    continue;
                }
                bytes[pos] = d;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(validate(&changed).is_err(), "{changed} passed");
            }
        }
    }
}
