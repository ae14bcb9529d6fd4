//! Accounts: registration, the signed-in user's profile, roles ([`roles`]), bans
//! ([`bans`], decided in media, enforced here), and public
//! profiles for other services ([`directory`], over gRPC).

pub mod bans;
pub mod directory;
pub mod domain;
pub mod passwords;
pub mod roles;
pub(crate) mod routes;
pub(crate) mod store;

pub use routes::routes;
pub use store::{PublicProfile, User};
