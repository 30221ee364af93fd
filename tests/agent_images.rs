//! The agent images' shared entrypoint (images/entrypoint.sh), run in a real
//! container: a locally built image (FROM the busybox test image, no
//! network) holding the entrypoint and a stand-in for the `claude` CLI.
//! The real images need the internet to build (images/build.sh); what these
//! tests cannot cover is listed in images/README.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BASE: &str = "ptb-test/busybox:1";
const IMAGE: &str = "ptb-test/agent-entrypoint:1";

/// A stand-in for `claude`: records its arguments, keeps a session file
/// where Claude Code keeps them, writes to stdout and stderr, then exits
/// with $FAKE_EXIT, or with $FAKE_WAIT runs until SIGTERM and exits 7.
const STAND_IN: &str = r#"#!/bin/sh
printf '%s\n' "$@" > /output/argv
mkdir -p /root/.claude/projects/-work
echo '{"turn": 1}' > /root/.claude/projects/-work/session.jsonl
echo '{"type": "assistant", "text": "working"}'
echo 'a warning' >&2
if [ -n "${FAKE_WAIT:-}" ]; then
    trap 'echo term > /output/got-term; echo "{\"turn\": 2}" >> /root/.claude/projects/-work/session.jsonl; exit 7' TERM
    touch /output/started
    while :; do sleep 1; done
fi
exit "${FAKE_EXIT:-0}"
"#;

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("running docker (these tests need a Docker engine; CI has one)")
}

/// Builds the test image once: the busybox base (from local files, as the
/// executor tests do), then the entrypoint and the stand-in on top.
fn image() -> &'static str {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !docker(&["image", "inspect", BASE]).status.success() {
            let out = Command::new(Path::new(ROOT).join("scripts/build-demo-images.sh")).output().expect("running scripts/build-demo-images.sh");
            assert!(out.status.success(), "building {BASE} failed (run scripts/docker/ci-setup.sh first):\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(Path::new(ROOT).join("images/entrypoint.sh"), ctx.path().join("entrypoint.sh")).unwrap();
        std::fs::write(ctx.path().join("claude"), STAND_IN).unwrap();
        for f in ["entrypoint.sh", "claude"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(ctx.path().join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            format!(
                "FROM {BASE}\nCOPY entrypoint.sh /usr/local/bin/ptb-agent\nCOPY claude /usr/local/bin/claude\n\
                 ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PTB_AGENT_CLI=claude PTB_AGENT_MODEL=claude-test-1 PTB_AGENT_SESSION_DIR=/root/.claude/projects\n\
                 WORKDIR /work\nCMD [\"/usr/local/bin/ptb-agent\"]\n"
            ),
        )
        .unwrap();
        let out = Command::new("docker").args(["build", "-q", "-t", IMAGE]).arg(ctx.path()).env("DOCKER_BUILDKIT", "0").output().unwrap();
        assert!(out.status.success(), "docker build failed:\n{}", String::from_utf8_lossy(&out.stderr));
    });
    IMAGE
}

/// A stage's mounts: /inputs/task.md (read-only) and /output.
struct Stage {
    dir: tempfile::TempDir,
}

impl Stage {
    fn new(task: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("output")).unwrap();
        std::fs::create_dir_all(dir.path().join("inputs")).unwrap();
        if let Some(t) = task {
            std::fs::write(dir.path().join("inputs/task.md"), t).unwrap();
        }
        Stage { dir }
    }
    fn out(&self, p: &str) -> PathBuf {
        self.dir.path().join("output").join(p)
    }
    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.out(p)).unwrap_or_else(|e| panic!("/output/{p}: {e}"))
    }
    fn run_args(&self, env: &[&str]) -> Vec<String> {
        let mut a = vec![
            "-v".to_string(),
            format!("{}:/inputs:ro", self.dir.path().join("inputs").display()),
            "-v".to_string(),
            format!("{}:/output", self.dir.path().join("output").display()),
            "--network".to_string(),
            "none".to_string(),
        ];
        for e in env {
            a.extend(["-e".to_string(), e.to_string()]);
        }
        a.push(image().to_string());
        a
    }
}

/// Removes a detached container even when the test fails.
struct Container(String);
impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

#[test]
fn runs_the_cli_on_the_task_keeps_its_transcript_and_exits_with_its_status() {
    let task = "# Post-train Qwen3-1.7B-Base\n\nMake it good at GSM8K; \"quotes\" and $dollars stay as written.\n";
    let s = Stage::new(Some(task));
    let mut args = vec!["run", "--rm"];
    let run = s.run_args(&["FAKE_EXIT=3"]);
    args.extend(run.iter().map(String::as_str));
    let o = docker(&args);
    assert_eq!(o.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    // Non-interactive, the agent's model, the whole task as one argument.
    let argv = s.read("argv");
    let expected = ["--print", "--verbose", "--output-format", "stream-json", "--dangerously-skip-permissions", "--model", "claude-test-1"].join("\n");
    // `$(cat task.md)` drops the trailing newline, as the reference's `$PROMPT` does.
    assert_eq!(argv, format!("{expected}\n{}\n", task.trim_end()), "argv");
    // The CLI's stream, its stderr and its own session files, for the judge.
    assert_eq!(s.read("trace/stdout.jsonl"), "{\"type\": \"assistant\", \"text\": \"working\"}\n");
    assert_eq!(s.read("trace/stderr.log"), "a warning\n");
    assert_eq!(s.read("trace/session/-work/session.jsonl"), "{\"turn\": 1}\n");
}

#[test]
fn sigterm_reaches_the_cli_and_its_status_is_the_stages() {
    let s = Stage::new(Some("the task"));
    let name = format!("ptb-test-entrypoint-{}", std::process::id());
    let guard = Container(name.clone());
    let mut args = vec!["run", "-d", "--name", &name];
    let run = s.run_args(&["FAKE_WAIT=1"]);
    args.extend(run.iter().map(String::as_str));
    let o = docker(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The stand-in says when its handler is installed; no fixed sleep.
    let start = Instant::now();
    while !s.out("started").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the stand-in never started: {}", String::from_utf8_lossy(&docker(&["logs", &name]).stderr));
        std::thread::sleep(Duration::from_millis(50));
    }
    // What ptb does at the deadline: SIGTERM to the container's PID 1.
    assert!(docker(&["kill", "--signal", "TERM", &name]).status.success());
    // Bounded: a PID 1 without a handler ignores SIGTERM and would run on.
    let start = Instant::now();
    while String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.State.Running}}", &name]).stdout).trim() == "true" {
        assert!(start.elapsed() < Duration::from_secs(60), "the container ignored SIGTERM for 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(String::from_utf8_lossy(&code.stdout).trim(), "7", "the stage's exit status is not the CLI's");
    assert_eq!(s.read("got-term"), "term\n");
    // The transcript is copied after the CLI has finished: it holds what the
    // CLI wrote while handling the signal.
    assert_eq!(s.read("trace/session/-work/session.jsonl"), "{\"turn\": 1}\n{\"turn\": 2}\n");
    drop(guard);
}

#[test]
fn a_missing_task_is_a_clear_error() {
    let s = Stage::new(None);
    let mut args = vec!["run", "--rm"];
    let run = s.run_args(&[]);
    args.extend(run.iter().map(String::as_str));
    let o = docker(&args);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no task prompt at /inputs/task.md"), "{err}");
    assert!(!s.out("argv").exists(), "the CLI ran without a task");
}
