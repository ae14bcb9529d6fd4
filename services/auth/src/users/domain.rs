//! Parse, don't validate: account fields are turned into these types at the edge, so the
//! rest of the service only ever handles values that are already known to be acceptable.

use unicode_normalization::UnicodeNormalization;

use crate::error::ApiError;

/// 3–32 of `[a-z0-9_]`, compared case-insensitively: stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim().to_ascii_lowercase();
        let ok = (3..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(name))
        } else {
            Err(ApiError::Invalid(
                "username must be 3-32 characters of a-z, 0-9 and _".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A syntactically valid address (RFC 5321/5322 as checked by `email_address`), at most
/// 254 characters, domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        let invalid = || ApiError::Invalid("email is not a valid address".into());
        if raw.len() > 254 || !email_address::EmailAddress::is_valid(raw) {
            return Err(invalid());
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(invalid)?;
        // A bare host ("a@localhost") is valid syntax but not a deliverable address.
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(invalid());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8–128 characters after NFKC normalisation (so the same password typed on different
/// keyboards or input methods hashes the same).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let normalised: String = raw.nfkc().collect();
        let chars = normalised.chars().count();
        if !(8..=128).contains(&chars) {
            return Err(ApiError::Invalid(
                "password must be 8-128 characters".into(),
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised form, for a login attempt (no length rule: a wrong password is just
    /// wrong, and must cost the same time as any other).
    pub fn for_login(raw: &str) -> Self {
        Self(raw.nfkc().collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// Free text shown to others: trimmed, no control characters, bounded length.
pub fn text(field: &str, raw: &str, max_chars: usize) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.chars().count() > max_chars {
        return Err(ApiError::Invalid(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// An absolute http(s) URL of at most 2,048 characters.
pub fn avatar_url(raw: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    let ok = value.len() <= 2048
        && (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() > "https://".len()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(ApiError::Invalid(
            "avatar_url must be an http(s) URL".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("Ada_99").unwrap().as_str(), "ada_99");
        for bad in [
            "ab",
            "has space",
            "émile",
            &"x".repeat(33),
            "semi;colon",
            "",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Ada@Example.COM").unwrap().as_str(),
            "Ada@example.com"
        );
        for bad in [
            "nope",
            "a@",
            "@b.c",
            "a@localhost",
            "a b@c.d",
            &format!("{}@e.com", "x".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_nfkc_normalised_and_bounded() {
        // U+FB01 (ﬁ ligature) normalises to "fi": both spellings are the same password.
        assert_eq!(
            Password::parse("ﬁsh-and-chips").unwrap().expose(),
            "fish-and-chips"
        );
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        assert!(
            Password::parse(&"é".repeat(128)).is_ok(),
            "length counts characters, not bytes"
        );
    }

    #[test]
    fn free_text_and_urls() {
        assert_eq!(text("bio", "  hi  ", 10).unwrap(), "hi");
        assert!(text("bio", "bell\u{7}", 10).is_err());
        assert!(text("bio", &"x".repeat(11), 10).is_err());
        assert!(avatar_url("https://cdn.example/a.png").is_ok());
        assert!(avatar_url("javascript:alert(1)").is_err());
    }
}
