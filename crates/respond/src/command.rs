//! Runs the firewall tools (nft, netsh): no shell, optional stdin, the failure with its output.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::RespondError;

/// Runs `command[0]` with the other elements as arguments, writing `stdin` to it if given.
/// A non-zero exit is [`RespondError::Command`] with the tool's stderr (or its stdout, where
/// tools like netsh print their errors).
pub(crate) async fn run(command: &[String], stdin: Option<&[u8]>) -> Result<(), RespondError> {
    let program = command.join(" ");
    let spawn_error = |source| RespondError::Spawn {
        program: program.clone(),
        source,
    };
    let Some((executable, args)) = command.split_first() else {
        return Err(RespondError::InvalidPolicy("empty command line".into()));
    };
    let mut child = tokio::process::Command::new(executable)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes).await.map_err(spawn_error)?;
        // Dropping the pipe closes it: the tool sees the end of its input.
    }
    let out = child.wait_with_output().await.map_err(spawn_error)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let output = if stderr.is_empty() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        stderr
    };
    Err(RespondError::Command {
        program,
        status: out.status.to_string(),
        stderr: output,
    })
}
