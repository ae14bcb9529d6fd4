//! The SDL clients build against is checked in (`services/media/schema.graphql`). This
//! test fails when the code's schema drifts from it; regenerate with
//! `UPDATE_SCHEMA=1 cargo nextest run -p media --test schema`.

#[test]
fn checked_in_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = media::schema::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == sdl,
        "services/media/schema.graphql is out of date: run \
         `UPDATE_SCHEMA=1 cargo nextest run -p media --test schema` and commit it"
    );
}
