//! What the mails say. Plain text only: a link and why it came, nothing a mail client
//! could render differently or a tracker could hang on.
//!
//! The link points at the web app (`PUBLIC_URL`), which shows a form and calls the API
//! with the token; the token is in the query string, URL-safe base64, so no client
//! mangles it.

use std::time::Duration;

use lettre::{
    Message,
    message::{Mailbox, header::ContentType},
};

use super::Purpose;

/// The mail carrying `token` to `to` (the account `username`).
pub fn build(
    from: &Mailbox,
    to: Mailbox,
    purpose: Purpose,
    username: &str,
    link: &str,
    ttl: Duration,
) -> Result<Message, lettre::error::Error> {
    let minutes = ttl.as_secs().div_ceil(60).max(1);
    // Lines under 76 characters: the prose then goes as 7bit; a long link makes lettre
    // send the body quoted-printable, which every mail client decodes.
    let (subject, body) = match purpose {
        Purpose::Verify => (
            "Confirm your email address for Kino",
            format!(
                "Hello {username},\n\n\
                 please confirm that this is the email address of your Kino\n\
                 account by opening this link within {minutes} minutes:\n\n\
                 {link}\n\n\
                 Until you do, you can watch and comment but not upload.\n\
                 If you did not create a Kino account, ignore this mail.\n"
            ),
        ),
        Purpose::Reset => (
            "Reset your Kino password",
            format!(
                "Hello {username},\n\n\
                 someone (we hope you) asked to reset the password of your Kino\n\
                 account. To choose a new one, open this link within {minutes} minutes:\n\n\
                 {link}\n\n\
                 The link works once. Resetting signs you out everywhere.\n\
                 If you did not ask for this, ignore this mail: your password\n\
                 stays as it is.\n"
            ),
        ),
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
}

/// `{public_url}/verify-email?token=…` or `{public_url}/reset-password?token=…`.
pub fn link(public_url: &str, purpose: Purpose, token: &str) -> String {
    let page = match purpose {
        Purpose::Verify => "verify-email",
        Purpose::Reset => "reset-password",
    };
    format!("{public_url}/{page}?token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_carries_the_link_and_its_lifetime() {
        let link = link("https://kino.example", Purpose::Reset, "abc_-123");
        assert_eq!(link, "https://kino.example/reset-password?token=abc_-123");
        let message = build(
            &"Kino <no-reply@kino.example>".parse().unwrap(),
            "ada@example.com".parse().unwrap(),
            Purpose::Reset,
            "ada",
            &link,
            Duration::from_secs(1800),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("Subject: Reset your Kino password"), "{text}");
        assert!(text.contains("To: ada@example.com"), "{text}");
        assert!(text.contains("within 30 minutes"), "{text}");
        // Short lines: 7bit, the link in the body as is.
        assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
        assert!(text.contains(&link), "{text}");
    }
}
