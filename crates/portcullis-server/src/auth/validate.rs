//! Input rules of API.md's Conventions: e-mail, password, name, role names.

/// Which field broke which rule; the message goes to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("{0}")]
    WeakPassword(&'static str),
}

/// Common and breached passwords (see `common_passwords.NOTICE`), shipped in
/// the binary and compared case-insensitively.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().collect())
}

/// Trims, lower-cases (Unicode) and checks an address.
pub fn normalize_email(raw: &str) -> Result<String, ValidationError> {
    let invalid = |why| Err(ValidationError::Invalid(why));
    // Lengths count what was sent, surrounding whitespace included, as the
    // OpenAPI document's maxLength does.
    if raw.chars().count() > 254 {
        return invalid("email must be at most 254 characters");
    }
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return invalid("email is required");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("email must not contain whitespace or control characters");
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return invalid("email must contain exactly one @");
    };
    if local.is_empty() || local.chars().count() > 64 {
        return invalid("the part of the email before @ must be 1 to 64 characters");
    }
    let labels_ok = domain.split('.').all(|label| !label.is_empty());
    if !domain.contains('.') || !labels_ok {
        return invalid("the email's domain must contain a dot");
    }
    Ok(email)
}

/// 8–128 Unicode scalar values and not a well-known password.
pub fn check_password(password: &str) -> Result<(), ValidationError> {
    let length = password.chars().count();
    if length < 8 {
        return Err(ValidationError::WeakPassword(
            "password must be at least 8 characters",
        ));
    }
    if length > 128 {
        return Err(ValidationError::WeakPassword(
            "password must be at most 128 characters",
        ));
    }
    if common_passwords().contains(password.to_lowercase().as_str()) {
        return Err(ValidationError::WeakPassword("this password is too common"));
    }
    Ok(())
}

/// At most 100 characters as sent, not blank once trimmed, no control
/// characters.
pub fn normalize_name(raw: &str) -> Result<String, ValidationError> {
    if raw.chars().count() > 100 {
        return Err(ValidationError::Invalid(
            "name must be at most 100 characters",
        ));
    }
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::Invalid("name is required"));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::Invalid(
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// `[a-z][a-z0-9_-]{0,31}`, at most 16 per user, no duplicates.
pub fn check_roles(roles: &[String]) -> Result<(), ValidationError> {
    if roles.len() > 16 {
        return Err(ValidationError::Invalid("at most 16 roles per user"));
    }
    for (i, role) in roles.iter().enumerate() {
        let mut chars = role.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !first_ok || !rest_ok || role.len() > 32 {
            return Err(ValidationError::Invalid(
                "role names must match [a-z][a-z0-9_-]{0,31}",
            ));
        }
        if roles[..i].contains(role) {
            return Err(ValidationError::Invalid("duplicate role"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").as_deref(),
            Ok("ada@example.com")
        );
        assert_eq!(
            normalize_email("ÉLODIE@exemple.fr").as_deref(),
            Ok("élodie@exemple.fr")
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a@b@example.com",
            "ada@example",
            "ada @example.com",
            "ada@exa\u{0}mple.com",
            "ada@example..com",
            "ada@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(64))).is_ok());
        assert!(normalize_email(&format!("a@{}.com", "b".repeat(250))).is_err());
    }

    #[test]
    fn passwords() {
        assert!(check_password("correct horse battery").is_ok());
        assert!(
            check_password("ünïcödé!").is_ok(),
            "8 scalar values, more bytes"
        );
        assert!(matches!(
            check_password("short"),
            Err(ValidationError::WeakPassword(_))
        ));
        assert!(matches!(
            check_password(&"x".repeat(129)),
            Err(ValidationError::WeakPassword(_))
        ));
        assert!(check_password(&"x".repeat(128)).is_ok());
        assert!(matches!(
            check_password("Password123"),
            Err(ValidationError::WeakPassword(_))
        ));
        assert!(matches!(
            check_password("12345678"),
            Err(ValidationError::WeakPassword(_))
        ));
        assert!(
            matches!(
                check_password("SUNSHINE1"),
                Err(ValidationError::WeakPassword(_))
            ),
            "compared case-insensitively"
        );
        assert!(
            common_passwords().len() >= 10_000,
            "{}",
            common_passwords().len()
        );
    }

    #[test]
    fn names_and_roles() {
        assert_eq!(
            normalize_name("  Ada Lovelace ").as_deref(),
            Ok("Ada Lovelace")
        );
        assert!(normalize_name("   ").is_err());
        assert!(normalize_name("a\u{7}b").is_err());
        assert!(normalize_name(&"n".repeat(101)).is_err());
        assert!(check_roles(&["user".into(), "admin".into(), "ops_team-2".into()]).is_ok());
        for bad in ["Admin", "1user", "", "a b", &"r".repeat(33)] {
            assert!(check_roles(&[bad.to_string()]).is_err(), "{bad:?}");
        }
        assert!(check_roles(&vec!["r".to_string(); 1]).is_ok());
        let many: Vec<String> = (0..17).map(|i| format!("r{i}")).collect();
        assert!(check_roles(&many).is_err());
    }
}
