//! Image references resolve to content digests; pulls only by digest.

mod support;

use ptb_core::spec::PullPolicy;
use ptb_exec::{ExecError, ImageResolver};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_the_local_image_id() {
    let ex = docker().await;
    let r = ex.resolve_image(IMAGE).await.unwrap();
    assert_eq!(r.id, docker_cli(&["image", "inspect", "--format", "{{.Id}}", IMAGE]));
    assert!(r.id.starts_with("sha256:") && r.id.len() == 71, "{}", r.id);
    // The blocking form, used by the planner, agrees, even on a runtime.
    assert_eq!(ImageResolver::resolve(&ex, IMAGE).unwrap(), r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retagging_changes_the_digest() {
    let ex = docker().await;
    let tag = format!("ptb-test/retag:{}", std::process::id());
    docker_cli(&["tag", IMAGE, &tag]);
    let before = ex.resolve_image(&tag).await.unwrap();
    // A different image under the same tag: what a `latest` does over time.
    let c = docker_cli(&["create", IMAGE, "true"]);
    docker_cli(&["commit", "--change", "LABEL variant=2", &c, &tag]);
    docker_cli(&["rm", &c]);
    let after = ex.resolve_image(&tag).await.unwrap();
    docker_cli(&["rmi", &tag]);
    assert_ne!(before.id, after.id, "the tag moved, so the digest must change");
    assert_eq!(before.id, ex.resolve_image(IMAGE).await.unwrap().id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_names_it_and_says_how_to_get_it() {
    let ex = docker().await;
    let e = ex.resolve_image("ptb-test/does-not-exist:1").await.unwrap_err();
    assert!(matches!(&e, ExecError::ImageMissing { image } if image == "ptb-test/does-not-exist:1"), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("docker build") && msg.contains("docker load"), "{msg}");

    // Running a stage on it fails the same way, before anything starts.
    let s = Scratch::new();
    let mut j = job(&s, ptb_core::spec::ExecutorKind::Docker, "true");
    j.image = Some("ptb-test/does-not-exist:1".into());
    let e = ptb_exec::Executor::run(&ex, &j, &Lines::default()).await.unwrap_err();
    assert!(matches!(e, ExecError::ImageMissing { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_not_running_says_how_to_start_it() {
    let e = ptb_exec::docker::DockerExecutor::connect_socket("/tmp/ptb-no-such-docker.sock").await.unwrap_err().to_string();
    assert!(e.contains("not running") && e.contains("start"), "{e}");
    // A socket file nobody listens on (a crashed engine): refused, same advice.
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let e = ptb_exec::docker::DockerExecutor::connect_socket(dead.to_str().unwrap()).await.unwrap_err().to_string();
    assert!(e.contains("not running") && e.contains("start"), "{e}");
}

const REGISTRY: &str = "127.0.0.1:5000";

fn registry_up() {
    let ok = std::process::Command::new("curl").args(["-fsS", &format!("http://{REGISTRY}/v2/")]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "no registry on {REGISTRY}: run scripts/docker/ci-setup.sh (starts Debian's docker-registry there)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_digest_from_a_registry_pins_the_repo_digest() {
    registry_up();
    let ex = docker().await;
    let remote = format!("{REGISTRY}/ptb-test/pin{}:1", std::process::id());
    // An image of its own: a push gives the pushed image a repo digest, which tests
    // running beside this one must not see on IMAGE.
    let c = docker_cli(&["create", IMAGE, "true"]);
    docker_cli(&["commit", "--change", &format!("LABEL pin={}", std::process::id()), &c, &remote]);
    docker_cli(&["rm", &c]);
    docker_cli(&["push", &remote]);
    let pushed = ex.resolve_image(&remote).await.unwrap();
    let digest = pushed.repo_digest.clone().expect("a pushed image has a repo digest");
    assert!(digest.starts_with(&format!("{REGISTRY}/ptb-test/pin")) && digest.contains("@sha256:"), "{digest}");

    // Tags are refused: only a digest names fixed content.
    let e = ex.pull(&remote).await.unwrap_err().to_string();
    assert!(e.contains("by digest"), "{e}");

    docker_cli(&["rmi", &remote]);
    // Gone locally: resolving is an error, and so is running without a pull.
    let e = ex.ensure_image(&digest, PullPolicy::Never).await.unwrap_err();
    assert!(matches!(e, ExecError::ImageMissing { .. }), "{e:?}");
    let ensured = ex.ensure_image(&digest, PullPolicy::IfMissing).await.unwrap();
    assert_eq!(ensured.repo_digest.as_deref(), Some(digest.as_str()));
    docker_cli(&["rmi", &digest]);
    let pulled = ex.pull(&digest).await.unwrap();
    assert_eq!(pulled.repo_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(pulled.id, pushed.id, "same content, same image id");
    let _ = std::process::Command::new("docker").args(["rmi", &digest]).output();
}

const AS_NOBODY: &str = "PTB_TEST_SOCKET_AS_NOBODY";

/// Not a test on its own: runs as an unprivileged user, started by the
/// test below with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of permission_denied_on_the_socket_says_how_to_get_access"]
async fn socket_child() {
    assert!(std::env::var(AS_NOBODY).is_ok(), "run by permission_denied_on_the_socket_says_how_to_get_access");
    let e = ptb_exec::docker::DockerExecutor::connect_socket(ptb_exec::docker::DEFAULT_SOCKET).await.unwrap_err().to_string();
    assert!(e.contains("permission denied") && e.contains("docker` group"), "{e}");
}

#[test]
fn permission_denied_on_the_socket_says_how_to_get_access() {
    // SAFETY: plain getter.
    if unsafe { libc::geteuid() } != 0 {
        // Not root: no other user to become, so nothing to provoke here.
        eprintln!("skipped: needs root to run a child as nobody (CI runs as root)");
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "socket_child", "--ignored", "--nocapture"])
        .env(AS_NOBODY, "1")
        .output()
        .expect("setpriv (util-linux) is needed to run a child as nobody");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}
