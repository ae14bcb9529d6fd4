//! MongoDB (or any server speaking its wire protocol). The driver connects lazily and
//! keeps monitoring the server, so start-up never waits for it and recovery is automatic.

use std::time::Duration;

use mongodb::{Client, bson::doc, options::ClientOptions};

/// Builds a client from `MONGODB_URI`. Server selection is bounded so that a request made
/// while MongoDB is down fails in seconds instead of hanging for the driver's default 30 s.
pub async fn connect(uri: &str, app_name: &str) -> mongodb::error::Result<Client> {
    let mut options = ClientOptions::parse(uri).await?;
    options.app_name = Some(app_name.to_owned());
    options
        .server_selection_timeout
        .get_or_insert(Duration::from_secs(5));
    options
        .connect_timeout
        .get_or_insert(Duration::from_secs(2));
    Client::with_options(options)
}

impl crate::health::Check for Client {
    /// `ping` on the admin database.
    async fn check(&self) -> Result<(), String> {
        self.database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
