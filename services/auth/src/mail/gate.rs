//! Unverified accounts may watch and comment, not upload (`UPLOAD_REQUIRES_VERIFIED_EMAIL`).
//!
//! Enforced in the gateway's ForwardAuth hop (crate::gateway), the one place every upload
//! passes with its token already verified: for the tus creation request (`POST
//! /video/upload`), the account's `email_verified_at` is read from the database, and an
//! unverified account gets 403 problem+json `email-unverified` from the gateway. The
//! video service needs no change and no new claim: only creation is gated (the later
//! PATCHes belong to an upload that was allowed), and reading the database rather than
//! a token claim means a verification counts at once, with no refresh in between, and
//! costs one primary-key read per upload created, not per request.

use uuid::Uuid;

use crate::{Context, error::ApiResult};

/// Whether the gateway's forwarded `method uri` creates an upload. The path is compared
/// after percent-decoding and with empty segments and a trailing `/` dropped, so no
/// spelling that some server would route to the creation endpoint slips past.
pub fn creates_upload(method: &str, uri: &str) -> bool {
    if !method.eq_ignore_ascii_case("POST") {
        return false;
    }
    let path = uri.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path);
    let mut segments = decoded.split(['/', '\\']).filter(|s| !s.is_empty());
    matches!(
        (segments.next(), segments.next(), segments.next()),
        (Some(a), Some(b), None) if a.eq_ignore_ascii_case("video") && b.eq_ignore_ascii_case("upload")
    )
}

/// `%XX` decoded (repeatedly, so `%2575` is no way around it); anything else kept.
fn percent_decode(path: &str) -> String {
    let mut current = path.to_owned();
    for _ in 0..3 {
        let bytes = current.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if bytes[i] == b'%'
                && let (Some(Some(h)), Some(Some(l))) = (
                    bytes.get(i + 1).map(|&b| hex(b)),
                    bytes.get(i + 2).map(|&b| hex(b)),
                )
            {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        let next = String::from_utf8_lossy(&out).into_owned();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

/// Whether the account's email address is verified now (an unknown account is not).
pub async fn is_verified(ctx: &Context, user_id: Uuid) -> ApiResult<bool> {
    let verified: Option<bool> =
        sqlx::query_scalar("SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(ctx.db.pool())
            .await?;
    Ok(verified.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_creation_in_every_spelling() {
        for uri in [
            "/video/upload",
            "/video/upload/",
            "/video/upload?x=1",
            "//video//upload",
            "/video/%75pload",
            "/video/%2575pload",
            "/video%2Fupload",
            "/VIDEO/Upload",
        ] {
            assert!(creates_upload("POST", uri), "{uri}");
            assert!(creates_upload("post", uri), "{uri}");
        }
        for (method, uri) in [
            ("PATCH", "/video/upload/0190"),
            ("POST", "/video/upload/0190"),
            ("OPTIONS", "/video/upload"),
            ("GET", "/video/upload"),
            ("POST", "/video/uploads"),
            ("POST", "/media/graphql"),
        ] {
            assert!(!creates_upload(method, uri), "{method} {uri}");
        }
    }
}
