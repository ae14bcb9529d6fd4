//! Identity shared by the services: JWT claims, Ed25519 signing and verification, JWKS and
//! the revocation check. The auth service issues tokens with it; media verifies WebSocket
//! tokens with it. (Filled in with the auth service.)
