//! The ffmpeg and ffprobe executables the transcoder drives.

use std::{path::PathBuf, process::Stdio};

use tokio::process::Command;

#[derive(Debug, Clone)]
pub struct Tools {
    /// `FFMPEG_PATH`.
    pub ffmpeg: PathBuf,
    /// `FFPROBE_PATH`.
    pub ffprobe: PathBuf,
}

/// Runs `<tool> -version`: the executable exists and starts.
async fn runs(tool: &PathBuf) -> Result<(), String> {
    let status = Command::new(tool)
        .args(["-hide_banner", "-version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} -version: {status}", tool.display()))
    }
}

/// Readiness: both executables run.
impl platform::health::Check for Tools {
    async fn check(&self) -> Result<(), String> {
        runs(&self.ffmpeg).await?;
        runs(&self.ffprobe).await
    }
}
