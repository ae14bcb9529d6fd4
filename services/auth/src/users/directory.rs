//! The user directory over gRPC (`kino.auth.v1.UserDirectory`, crates/rpc): public
//! profiles in batches, for other services (media). It is served on auth's gRPC port
//! (`GRPC_BIND_ADDR`), which the gateway never routes, so clients cannot reach it.

use rpc::auth::v1::{
    GetProfilesRequest, GetProfilesResponse, Profile,
    user_directory_server::{UserDirectory, UserDirectoryServer},
};
use tonic::{Request, Response, Status};

use super::store::{self, DirectoryEntry};
use crate::Context;

/// The most ids one call may ask for.
pub const MAX_IDS: usize = 100;

pub struct Directory {
    ctx: Context,
}

impl Directory {
    pub fn server(ctx: Context) -> UserDirectoryServer<Self> {
        UserDirectoryServer::new(Self { ctx })
    }
}

#[tonic::async_trait]
impl UserDirectory for Directory {
    async fn get_profiles(
        &self,
        request: Request<GetProfilesRequest>,
    ) -> Result<Response<GetProfilesResponse>, Status> {
        let ids = &request.get_ref().ids;
        if ids.len() > MAX_IDS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_IDS} ids per call, got {}",
                ids.len()
            )));
        }
        let ids = rpc::parse_ids("ids", ids)?;
        let profiles = store::directory_entries(self.ctx.db.pool(), &ids)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "profiles lookup failed");
                // Nothing was changed: the caller may retry, here or on another replica.
                Status::unavailable("the user directory cannot read its database")
            })?;
        Ok(Response::new(GetProfilesResponse {
            profiles: profiles.into_iter().map(profile).collect(),
        }))
    }
}

fn profile(DirectoryEntry { profile: p, roles }: DirectoryEntry) -> Profile {
    Profile {
        id: p.id.to_string(),
        username: p.username,
        display_name: p.display_name,
        bio: p.bio,
        avatar_url: p.avatar_url,
        created_at: Some(rpc::timestamp(p.created_at)),
        roles,
    }
}
