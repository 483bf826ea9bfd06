//! `portcullis user import`: accounts exported from another system (the
//! classic Go design keeps e-mail, name and a bcrypt hash), as JSON lines or
//! CSV. The hashes are kept as they are: each user's first login verifies
//! the old hash and re-hashes the password to argon2id. Plaintext passwords
//! are refused, never hashed on the way in.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{Auth, AuthError, password, validate};
use crate::store::{Store, UserRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line: `email`, `name`, and the hash as
    /// `password_hash`, `password` or `hash` (any letter case, so Go's
    /// untagged `Email`/`Name`/`Password` work too).
    JsonLines,
    /// A header line naming the columns (the same names), then one user a
    /// line; RFC 4180 quoting.
    Csv,
}

/// One account as read, before it is checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RawUser {
    pub email: String,
    pub name: Option<String>,
    pub hash: String,
}

const HASH_NAMES: [&str; 3] = ["password_hash", "password", "hash"];

/// A JSON-lines record.
pub fn parse_json_line(line: &str) -> Result<RawUser, String> {
    let object: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let field = |names: &[&str]| {
        object
            .iter()
            .find(|(key, _)| names.iter().any(|n| key.eq_ignore_ascii_case(n)))
            .map(|(_, value)| value)
    };
    let text = |names: &[&str], what: &str| match field(names) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{what} must be a string")),
    };
    Ok(RawUser {
        email: text(&["email"], "email")?.ok_or("email is missing")?,
        name: text(&["name"], "name")?,
        hash: text(&HASH_NAMES, "the password hash")?.ok_or("the password hash is missing")?,
    })
}

/// Where the columns of a CSV file are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvColumns {
    email: usize,
    name: Option<usize>,
    hash: usize,
}

pub fn parse_csv_header(line: &str) -> Result<CsvColumns, String> {
    let names = split_csv(line)?;
    let find = |wanted: &[&str]| {
        names
            .iter()
            .position(|n| wanted.iter().any(|w| n.trim().eq_ignore_ascii_case(w)))
    };
    Ok(CsvColumns {
        email: find(&["email"]).ok_or("the header names no email column")?,
        name: find(&["name"]),
        hash: find(&HASH_NAMES).ok_or("the header names no password_hash column")?,
    })
}

pub fn parse_csv_line(line: &str, columns: CsvColumns) -> Result<RawUser, String> {
    let fields = split_csv(line)?;
    let get = |i: usize| fields.get(i).cloned();
    Ok(RawUser {
        email: get(columns.email).ok_or("the email column is missing")?,
        name: columns.name.and_then(get).filter(|n| !n.is_empty()),
        hash: get(columns.hash).ok_or("the password_hash column is missing")?,
    })
}

/// Splits one CSV record: commas, fields optionally in double quotes with
/// `""` for a quote. A record spanning lines is refused (no hash or e-mail
/// holds a line break, and a name should not).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => {
                quoted = false;
                if chars.peek().is_some_and(|&n| n != ',') {
                    return Err("text after a closing quote".into());
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            (_, c) => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Checks a record and makes the account it describes: a normalised
/// e-mail, a name (the e-mail's local part when none is given), the hash
/// as it came, role `user`.
pub fn to_record(raw: RawUser, verified: bool, at: OffsetDateTime) -> Result<UserRecord, String> {
    let email = validate::normalize_email(&raw.email).map_err(|e| e.to_string())?;
    let name = match raw.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => {
            validate::normalize_name(name).map_err(|e| e.to_string())?
        }
        _ => email.split('@').next().unwrap_or_default().to_owned(),
    };
    let hash = raw.hash.trim();
    if !password::is_importable(hash) {
        return Err(
            "the password hash is not a bcrypt ($2a$/$2b$/$2y$) or argon2 PHC hash \
             (plaintext passwords are never imported)"
                .into(),
        );
    }
    let mut user = UserRecord::new(email, name, Some(hash.to_owned()), vec!["user".into()], at);
    user.email_verified = verified;
    Ok(user)
}

impl<S: Store> Auth<S> {
    /// Stores a batch; for each record, whether it was new (`false`: an
    /// account with that e-mail exists and is left as it is).
    pub async fn import_users(&self, users: &[UserRecord]) -> Result<Vec<bool>, AuthError> {
        Ok(self.store.import_users(users).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";

    #[test]
    fn json_lines_take_go_field_names_in_any_case() {
        let raw = parse_json_line(&format!(
            r#"{{"ID": 7, "Email": "Ada@Example.com", "Name": "Ada", "Password": "{HASH}"}}"#
        ))
        .expect("parse");
        assert_eq!(raw.email, "Ada@Example.com");
        assert_eq!(raw.name.as_deref(), Some("Ada"));
        let record = to_record(raw, false, OffsetDateTime::UNIX_EPOCH).expect("record");
        assert_eq!(record.email, "ada@example.com");
        assert_eq!(record.password_hash.as_deref(), Some(HASH));
        assert!(parse_json_line("[1]").is_err());
        assert!(parse_json_line(r#"{"email": "a@b.co"}"#).is_err());
        assert!(parse_json_line(r#"{"email": 5, "hash": "x"}"#).is_err());
    }

    #[test]
    fn csv_follows_its_header_and_quotes() {
        let columns = parse_csv_header("name,email,password_hash").expect("header");
        let raw = parse_csv_line(
            &format!("\"Lovelace, \"\"Ada\"\"\",ada@example.com,{HASH}"),
            columns,
        )
        .expect("line");
        assert_eq!(raw.name.as_deref(), Some("Lovelace, \"Ada\""));
        assert_eq!(raw.hash, HASH);
        assert!(parse_csv_header("name,mail").is_err());
        assert!(parse_csv_line("\"open,ada@example.com,x", columns).is_err());
        assert!(parse_csv_line("\"a\"b,ada@example.com,x", columns).is_err());
    }

    #[test]
    fn plaintext_and_bad_addresses_are_refused_with_a_reason() {
        let raw = |email: &str, hash: &str| RawUser {
            email: email.into(),
            name: None,
            hash: hash.into(),
        };
        let at = OffsetDateTime::UNIX_EPOCH;
        assert!(to_record(raw("ada@example.com", "hunter22"), false, at).is_err());
        assert!(to_record(raw("ada@example.com", "$2a$10$short"), false, at).is_err());
        assert!(to_record(raw("not-an-address", HASH), false, at).is_err());
        let record = to_record(raw("ada@example.com", HASH), true, at).expect("record");
        assert_eq!(record.name, "ada");
        assert!(record.email_verified);
    }
}
