//! Engine errors, turned into messages a user can act on.

use crate::ExecError;
use bollard::errors::Error as BollardError;
use std::io::ErrorKind;

/// Maps a bollard error to an [`ExecError`] that says what to do.
pub(super) fn engine(e: BollardError, socket: &str, context: &str) -> ExecError {
    if let BollardError::SocketNotFoundError(path) = &e {
        return not_running(path);
    }
    // An answer from the engine needs no probe: the engine is there.
    let kind = match &e {
        BollardError::DockerResponseServerError { .. } => None,
        _ => io_kind(&e).or_else(|| probe(socket)),
    };
    match kind {
        Some(ErrorKind::PermissionDenied) => {
            return ExecError::Engine(format!(
                "{context}: permission denied on {socket}: add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again), or run ptb as root"
            ));
        }
        Some(ErrorKind::ConnectionRefused | ErrorKind::NotFound) => return not_running(socket),
        _ => {}
    }
    if let BollardError::DockerResponseServerError { message, .. } = &e
        && message.contains("could not select device driver")
    {
        return ExecError::Engine(format!(
            "{context}: the stage asks for GPUs but the Docker engine has no NVIDIA runtime ({message}); install the NVIDIA Container Toolkit (`nvidia-ctk runtime configure --runtime=docker`, then restart dockerd)"
        ));
    }
    ExecError::Engine(format!("{context}: {e}"))
}

/// Whether a response says the named object does not exist.
pub(super) fn is_not_found(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 404, .. })
}

fn not_running(socket: &str) -> ExecError {
    ExecError::Engine(format!(
        "the Docker engine is not running (no answer on {socket}): start it with `sudo systemctl start docker` (or `sudo dockerd &`), or point DOCKER_HOST at its socket"
    ))
}

/// Why a fresh connection to the socket fails, if it does: under load, hyper's client
/// can report a refused connection as a bare "Canceled" with no I/O error in its chain.
fn probe(socket: &str) -> Option<ErrorKind> {
    let path = socket.strip_prefix("unix://").unwrap_or(socket);
    std::os::unix::net::UnixStream::connect(path).err().map(|e| e.kind())
}

/// The I/O error kind somewhere in the error's source chain: bollard wraps
/// socket errors in hyper's, several layers deep.
fn io_kind(e: &BollardError) -> Option<ErrorKind> {
    // `IOError` is transparent: its source() skips the io::Error itself.
    if let BollardError::IOError { err } = e {
        return Some(err.kind());
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_says_how_to_start_the_engine() {
        let msg = engine(BollardError::SocketNotFoundError("/nope.sock".into()), "/nope.sock", "x").to_string();
        assert!(msg.contains("not running") && msg.contains("systemctl start docker"), "{msg}");
    }

    #[test]
    fn socket_permission_says_how_to_get_access() {
        let e = BollardError::IOError { err: std::io::Error::from(ErrorKind::PermissionDenied) };
        let msg = engine(e, "/var/run/docker.sock", "connecting").to_string();
        assert!(msg.contains("permission denied on /var/run/docker.sock") && msg.contains("docker` group"), "{msg}");
        let e = BollardError::IOError { err: std::io::Error::from(ErrorKind::ConnectionRefused) };
        assert!(engine(e, "/s", "connecting").to_string().contains("not running"));
    }

    #[test]
    fn an_error_without_its_cause_still_says_the_engine_is_not_running() {
        // What hyper gives under load for a refused connection: no I/O error in the chain.
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join("docker.sock");
        drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
        let msg = engine(BollardError::RequestTimeoutError, dead.to_str().unwrap(), "connecting").to_string();
        assert!(msg.contains("not running"), "{msg}");
        // With an engine listening, the same error is reported as it is.
        let live = dir.path().join("live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let msg = engine(BollardError::RequestTimeoutError, live.to_str().unwrap(), "connecting").to_string();
        assert!(msg.starts_with("connecting: ") && !msg.contains("not running"), "{msg}");
    }

    #[test]
    fn missing_nvidia_runtime_says_what_to_install() {
        let e = BollardError::DockerResponseServerError {
            status_code: 500,
            message: "could not select device driver \"nvidia\" with capabilities: [[gpu]]".into(),
        };
        let msg = engine(e, "/s", "starting the container").to_string();
        assert!(msg.contains("NVIDIA Container Toolkit"), "{msg}");
    }
}
