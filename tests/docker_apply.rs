//! Container stages through the CLI: the image digest is a pinned input, a
//! retagged image shows in the plan as the reason to rerun, and --locked
//! refuses it. Needs the Docker engine and the test image
//! (scripts/docker/ci-setup.sh).

use std::process::Command;

fn ptb(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ptb")).current_dir(dir).args(args).output().unwrap()
}

fn docker(args: &[&str]) {
    let o = Command::new("docker").args(args).output().expect("the docker CLI is installed");
    assert!(o.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_retagged_image_reruns_its_stages_and_locked_refuses() {
    let o = Command::new("docker").args(["image", "inspect", "ptb-test/busybox:1"]).output().expect("docker CLI");
    assert!(o.status.success(), "test image missing: run scripts/docker/ci-setup.sh");
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("ptb-test/apply-retag:{}", std::process::id());
    docker(&["tag", "ptb-test/busybox:1", &tag]);
    std::fs::create_dir_all(dir.path().join("experiments/m")).unwrap();
    std::fs::write(dir.path().join("experiments/m/config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("experiments/data.jsonl"), "{}\n").unwrap();
    let spec = format!(
        r#"experiment retag
model m path="m" arch=llama
benchmark b data="data.jsonl"
agent a image="{tag}" {{ command "/bin/sh" "-c" "mkdir -p /output/final_model && echo hi > /output/final_model/x"; }}
stage agent executor=docker budget="1m"
stage eval executor=docker image="{tag}" budget="1m" {{ command "/bin/sh" "-c" "echo '{{\"score\": 0.5}}' > /output/metrics.json"; }}
matrix {{ seeds 1; }}
"#
    );
    std::fs::write(dir.path().join("experiments/retag.kdl"), spec).unwrap();
    let o = ptb(dir.path(), &["apply", "experiments/retag.kdl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = ptb(dir.path(), &["apply", "experiments/retag.kdl", "--locked"]);
    assert!(o.status.success(), "an unchanged image must pass --locked: {}", String::from_utf8_lossy(&o.stderr));

    // Point the tag at another image (same files, another id).
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {tag}\nLABEL retagged=\"{}\"\n", std::process::id())).unwrap();
    docker(&["build", "-q", "-t", &tag, ctx.path().to_str().unwrap()]);

    let why = ptb(dir.path(), &["why", "experiments/retag.kdl", "m/b/a/seed=1"]);
    let why = String::from_utf8_lossy(&why.stdout).into_owned();
    assert!(why.contains("input `image` changed: sha256:"), "{why}");
    let o = ptb(dir.path(), &["apply", "experiments/retag.kdl", "--locked"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success());
    // miette wraps long lines; compare without the wrapping.
    let flat: String = err.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    assert!(flat.contains("m/b/a/seed=1 agent: input `image` changed: sha256:"), "{flat}");
    assert!(flat.contains(&format!("pin image/{tag}: sha256:")), "{flat}");
    let o = ptb(dir.path(), &["apply", "experiments/retag.kdl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

#[test]
fn pull_if_missing_fetches_a_digest_pinned_image_and_nothing_else_pulls() {
    let up = Command::new("curl").args(["-fsS", "http://127.0.0.1:5000/v2/"]).output().is_ok_and(|o| o.status.success());
    assert!(up, "no registry on 127.0.0.1:5000: run scripts/docker/ci-setup.sh");
    let repo = format!("127.0.0.1:5000/ptb-test/pull-apply-{}", std::process::id());
    docker(&["tag", "ptb-test/busybox:1", &format!("{repo}:1")]);
    docker(&["push", "-q", &format!("{repo}:1")]);
    let o = Command::new("docker").args(["image", "inspect", "--format", "{{index .RepoDigests 0}}", &format!("{repo}:1")]).output().unwrap();
    let by_digest = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(by_digest.contains("@sha256:"), "{by_digest}");
    docker(&["rmi", &format!("{repo}:1")]);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("experiments/m")).unwrap();
    std::fs::write(dir.path().join("experiments/m/config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("experiments/data.jsonl"), "{}\n").unwrap();
    let spec = |pull: &str| {
        format!(
            r#"experiment pull
model m path="m" arch=llama
benchmark b data="data.jsonl"
agent base checkpoint=base
stage eval executor=docker image="{by_digest}" {pull} budget="1m" {{ command "/bin/sh" "-c" "echo '{{\"score\": 0.5}}' > /output/metrics.json"; }}
matrix {{ seeds 1; }}
"#
        )
    };
    // Without `pull`, an absent image blocks the stage: nothing is pulled implicitly.
    std::fs::write(dir.path().join("experiments/pull.kdl"), spec("")).unwrap();
    let o = ptb(dir.path(), &["apply", "experiments/pull.kdl"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("blocked by missing inputs"));
    // With it, the image is pulled by digest and the stage runs.
    std::fs::write(dir.path().join("experiments/pull.kdl"), spec("pull=\"if-missing\"")).unwrap();
    let o = ptb(dir.path(), &["apply", "experiments/pull.kdl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = Command::new("docker").args(["rmi", "-f", &by_digest]).output();
}

/// The agent's /work in a container is kept in its store entry like a local
/// one's: files copied, a link out of it kept as a link, a FIFO skipped.
#[test]
fn a_container_agents_work_dir_is_kept_for_the_judge() {
    let o = Command::new("docker").args(["image", "inspect", "ptb-test/busybox:1"]).output().expect("docker CLI");
    assert!(o.status.success(), "test image missing: run scripts/docker/ci-setup.sh");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("experiments/m")).unwrap();
    std::fs::write(dir.path().join("experiments/m/config.json"), "{}").unwrap();
    std::fs::write(dir.path().join("experiments/data.jsonl"), "{}\n").unwrap();
    let work = "mkdir -p /output/final_model && echo hi > /output/final_model/x && mkdir -p sub && echo data > sub/notes.txt && ln -s /etc/passwd passwd && mkfifo pipe";
    let spec = format!(
        r#"experiment kept
model m path="m" arch=llama
benchmark b data="data.jsonl"
agent a image="ptb-test/busybox:1" {{ command "/bin/sh" "-c" "{work}"; }}
stage agent executor=docker budget="1m"
stage eval executor=docker image="ptb-test/busybox:1" budget="1m" {{ command "/bin/sh" "-c" "echo '{{\"score\": 0.5}}' > /output/metrics.json"; }}
matrix {{ seeds 1; }}
"#
    );
    std::fs::write(dir.path().join("experiments/kept.kdl"), spec).unwrap();
    let o = ptb(dir.path(), &["apply", "experiments/kept.kdl"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lock = ptb_core::lock::Lockfile::load(&dir.path().join("lockfiles/kept.lock")).unwrap();
    let entry = dir.path().join("store").join(&lock.stage("m/b/a/seed=1", "agent").unwrap().path);
    assert_eq!(std::fs::read_to_string(entry.join("workspace/sub/notes.txt")).unwrap(), "data\n");
    assert_eq!(std::fs::read_link(entry.join("workspace/passwd")).unwrap().to_str(), Some("/etc/passwd"));
    assert!(std::fs::symlink_metadata(entry.join("workspace/pipe")).is_err(), "a FIFO was copied");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(entry.join("workspace.json")).unwrap()).unwrap();
    assert_eq!(m["skipped"][0]["path"], "pipe", "{m:#}");
}
