//! Who is asking: the gateway's identity headers, read as every service reads them
//! ([`identity::edge`]: no header is an anonymous viewer, a malformed one is refused).

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer(pub Option<Uuid>);

impl Viewer {
    /// `Err` when the header is present but malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, identity::edge::MalformedIdentity> {
        identity::edge::caller(headers).map(Self)
    }

    /// The signed-in user, or UNAUTHENTICATED.
    pub fn require(self) -> Result<Uuid, Error> {
        self.0.ok_or(Error::Unauthenticated)
    }

    pub fn id(self) -> Option<Uuid> {
        self.0
    }

    pub fn is(self, user: Uuid) -> bool {
        self.0 == Some(user)
    }
}

/// The viewer's staff roles, as the gateway says (`X-User-Roles`, from the access token's
/// claims, which only auth writes) or as the WebSocket's token says. Kept apart from
/// [`Viewer`] because almost nothing needs them: the moderation queue asks
/// [`Staff::require_moderator`], its audit log [`Staff::require_admin`].
///
/// Roles live as long as the token: a moderator whose role an admin revokes has their
/// tokens denied at once (auth), so a stale claim is never honoured past a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Staff {
    pub moderator: bool,
    pub admin: bool,
}

impl Staff {
    pub fn from_roles(roles: &[identity::Role]) -> Self {
        Self {
            moderator: roles.contains(&identity::Role::Moderator),
            admin: roles.contains(&identity::Role::Admin),
        }
    }

    /// `Err` when the header is present but malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, identity::edge::MalformedIdentity> {
        identity::edge::roles(headers).map(|roles| Self::from_roles(&roles))
    }

    /// Moderators and admins (who may do whatever moderators may).
    pub fn may_moderate(self) -> bool {
        self.moderator || self.admin
    }

    /// FORBIDDEN unless the viewer moderates.
    pub fn require_moderator(self) -> Result<(), Error> {
        if self.may_moderate() {
            Ok(())
        } else {
            Err(Error::Forbidden("moderators only"))
        }
    }

    /// FORBIDDEN unless the viewer is an admin.
    pub fn require_admin(self) -> Result<(), Error> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::Forbidden("admins only"))
        }
    }

    /// The roles of an account as auth stores them (`moderator`, `admin`; anything else
    /// is no role).
    pub fn of_account(roles: &[String]) -> Self {
        let roles: Vec<identity::Role> = roles
            .iter()
            .filter_map(|r| identity::Role::parse(r))
            .collect();
        Self::from_roles(&roles)
    }

    /// FORBIDDEN unless this viewer may ban an account holding `target`'s roles:
    /// moderators ban accounts without a staff role, admins moderators too, and nobody
    /// bans an admin (another admin revokes the role first). A ban must not let one
    /// moderator lock out the people who oversee them.
    pub fn may_ban(self, target: Staff) -> Result<(), Error> {
        self.require_moderator()?;
        if target.admin {
            Err(Error::Forbidden(
                "an admin cannot be banned; an admin may revoke the role first",
            ))
        } else if target.moderator && !self.admin {
            Err(Error::Forbidden("only an admin can ban a moderator"))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moderators_ban_users_admins_ban_moderators_nobody_bans_admins() {
        let user = Staff::default();
        let moderator = Staff::of_account(&["moderator".into()]);
        let admin = Staff::of_account(&["admin".into()]);
        let both = Staff::of_account(&["moderator".into(), "admin".into()]);
        let allowed = |who: Staff, whom: Staff| who.may_ban(whom).is_ok();
        assert!(!allowed(user, user), "users ban nobody");
        assert!(allowed(moderator, user));
        assert!(!allowed(moderator, moderator));
        assert!(!allowed(moderator, admin));
        assert!(allowed(admin, user));
        assert!(allowed(admin, moderator));
        assert!(!allowed(admin, admin));
        assert!(!allowed(admin, both));
        assert_eq!(Staff::of_account(&["janitor".into()]), user);
    }
}
