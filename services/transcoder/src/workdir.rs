//! Per-job scratch directories that never outlive their job: removed when dropped (job
//! done, failed or cancelled by shutdown) and, for a process that was killed, at the next
//! start (see [`clear`]).

use std::path::{Path, PathBuf};

pub struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    pub async fn create(base: &Path, name: &str) -> std::io::Result<Self> {
        let path = base.join(name);
        // A previous attempt of the same job in this process may have left it (cancelled).
        let _ = tokio::fs::remove_dir_all(&path).await;
        tokio::fs::create_dir_all(&path).await?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a work directory");
        }
    }
}

/// Removes what a killed process left in `base` (call before taking jobs). A killed
/// worker's ffmpeg outlives it for a moment and may still be writing there (a file made
/// while a directory is being removed fails the removal with "directory not empty"), so
/// a failed pass is tried again, for up to ~5 s, before giving up.
pub fn clear(base: &Path) -> std::io::Result<()> {
    let mut attempt = 1;
    loop {
        match clear_once(base) {
            Err(e) if attempt < 25 => {
                tracing::warn!(error = %e, attempt, "clearing the work directory; trying again");
                std::thread::sleep(std::time::Duration::from_millis(200));
                attempt += 1;
            }
            done => return done,
        }
    }
}

fn clear_once(base: &Path) -> std::io::Result<()> {
    match std::fs::read_dir(base) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                tracing::info!(path = %path.display(), "removing a leftover work directory");
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(base),
        Err(e) => Err(e),
    }
}
