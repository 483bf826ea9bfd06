//! The claims of a Portcullis access token (API.md, Tokens).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience, written as a JSON string.
    One(String),
    /// Several audiences, written as a JSON array.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is this one, or one of these.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(one) => one == audience,
            Self::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

impl From<&str> for Audience {
    fn from(value: &str) -> Self {
        Self::One(value.to_owned())
    }
}

/// The claims of an access token. Times are NumericDate: seconds since the
/// Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Issuer (`JWT_ISSUER`).
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience (`JWT_AUDIENCE`).
    pub aud: Audience,
    /// Expiry.
    pub exp: i64,
    /// Issued at; revocations by user compare against it.
    pub iat: i64,
    /// Not before; Portcullis sets it equal to `iat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Random token id, for revoking one token.
    pub jti: String,
    /// Random session id, for revoking one device's session.
    pub sid: String,
    /// The user's e-mail address.
    pub email: String,
    /// The user's display name.
    pub name: String,
    /// Role names, e.g. `["user", "admin"]`.
    pub roles: Vec<String>,
}

impl Claims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Claims as they arrive, every member optional so that a missing one is
/// reported by name rather than as a generic parse error. A JSON `null`
/// counts as absent; a value of the wrong type (e.g. a string `exp`, the
/// CVE-2026-25537 shape) fails the whole parse.
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub nbf: Option<i64>,
    pub jti: Option<String>,
    pub sid: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
}

/// NumericDate may be fractional (RFC 7519 §2); whole seconds are kept,
/// rounded down. Strings, booleans and non-finite values are refused. A
/// hand-written visitor rather than an untagged enum: it runs on every
/// verification and must not buffer.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    struct NumericDate;

    impl<'de> Visitor<'de> for NumericDate {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a NumericDate (seconds since the epoch, as a JSON number)")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i64::try_from(v).unwrap_or(i64::MAX)))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // `as` saturates, so 1e300 becomes i64::MAX rather than wrapping.
            Ok(Some(v.floor() as i64))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }

    deserializer.deserialize_option(NumericDate)
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AudienceVisitor;

        impl<'de> Visitor<'de> for AudienceVisitor {
            type Value = Audience;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Audience::One(v.to_owned()))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(one) = seq.next_element::<String>()? {
                    all.push(one);
                }
                Ok(Audience::Many(all))
            }
        }

        deserializer.deserialize_any(AudienceVisitor)
    }
}
