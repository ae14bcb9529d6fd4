//! Where the pinned tools are (deploy/local/deps installs them) and how they are run.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

fn cache_dir() -> PathBuf {
    std::env::var_os("KINO_CACHE_DIR").map_or_else(|| "/var/tmp/kino".into(), PathBuf::from)
}

/// kubectl, for `kubectl kustomize` (kustomize 5.6).
pub fn kubectl() -> PathBuf {
    std::env::var_os("KINO_KUBECTL")
        .map_or_else(|| manifest_tools().join("bin/kubectl"), PathBuf::from)
}

/// The directory holding the CRD validators' node_modules.
pub fn manifest_tools() -> PathBuf {
    std::env::var_os("KINO_MANIFEST_TOOLS")
        .map_or_else(|| cache_dir().join("manifest-tools"), PathBuf::from)
}

/// kubernetes-validate, in the project's venv.
pub fn kubernetes_validate() -> PathBuf {
    cache_dir().join("venv/bin/kubernetes-validate")
}

/// Caddy, in the project's venv (or KINO_CADDY).
pub fn caddy() -> PathBuf {
    std::env::var_os("KINO_CADDY").map_or_else(|| cache_dir().join("venv/bin/caddy"), PathBuf::from)
}

/// Debian's docker-compose (1.29), from PATH.
pub fn docker_compose() -> PathBuf {
    "docker-compose".into()
}

pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion, feeding `stdin` if given. Fails only when the tool cannot
/// be started (with a hint to install it); a non-zero exit is the caller's to judge.
pub fn run(command: &mut Command, stdin: Option<&[u8]>) -> anyhow::Result<Output> {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {program}: run deploy/local/deps to install it"))?;
    if let Some(input) = stdin {
        // Written from a thread so a tool that answers before reading everything cannot
        // deadlock us on a full pipe.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let output = child.wait_with_output()?;
    Ok(Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Like [`run`], but a non-zero exit is an error carrying the tool's output.
pub fn run_ok(command: &mut Command, stdin: Option<&[u8]>) -> anyhow::Result<Output> {
    let description = format!("{command:?}");
    let output = run(command, stdin)?;
    if !output.success {
        bail!(
            "{description} failed:\n{}{}",
            output.stderr.trim_end(),
            if output.stdout.trim().is_empty() {
                String::new()
            } else {
                format!("\n{}", output.stdout.trim_end())
            }
        );
    }
    Ok(output)
}
