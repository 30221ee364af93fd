//! `executor=slurm` end to end on a real Slurm: a one-node cluster on this
//! host (`scripts/slurm/setup.sh`, which CI's `scripts/test-setup.sh`
//! runs). These tests fail, loudly, when slurmctld does not answer.
//!
//! They share one node and some take it down or stop slurmctld, so they
//! run one at a time (`SERIAL`). Jobs are told apart by their working
//! directory, which is in each test's own temporary store, and counted
//! with `squeue -t all` (the test cluster keeps finished jobs for an hour,
//! MinJobAge) and, where it matters that nothing was submitted twice, with
//! `sacct` too (the cluster's accounting: slurmdbd, which forgets nothing).

mod common;
use common::Project;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_slurm();
    guard
}

fn require_slurm() {
    let ok = Command::new("scontrol").arg("ping").output().map(|o| String::from_utf8_lossy(&o.stdout).contains("UP")).unwrap_or(false);
    assert!(ok, "slurmctld does not answer `scontrol ping`: start the test cluster with scripts/slurm/setup.sh (CI runs it from scripts/test-setup.sh)");
    // A node a failed test left down would stall every later test.
    let node = hostname();
    let _ = Command::new("scontrol").args(["update", &format!("nodename={node}"), "state=resume"]).output();
}

/// The logs under the store's failed/, for assertion messages.
fn failed_logs(p: &Project) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(p.path().join("store/v1/failed")).into_iter().flatten().flatten() {
        out += &format!("== {}\n{}", e.path().display(), std::fs::read_to_string(e.path().join("log")).unwrap_or_default());
    }
    out
}

fn sinfo() -> String {
    let o = Command::new("sinfo").arg("-N").output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn hostname() -> String {
    let o = Command::new("hostname").arg("-s").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Jobs whose working directory is under `root`: (id, name, state).
fn jobs_under(root: &Path) -> Vec<(u64, String, String)> {
    let o = Command::new("squeue").args(["-h", "--me", "-t", "all", "-o", "%i|%j|%T|%Z"]).output().unwrap();
    assert!(o.status.success(), "squeue: {}", String::from_utf8_lossy(&o.stderr));
    jobs_in(&o.stdout, root)
}

/// `id|name|state|workdir` lines whose working directory is under `root`.
fn jobs_in(listing: &[u8], root: &Path) -> Vec<(u64, String, String)> {
    let root = std::fs::canonicalize(root).unwrap();
    String::from_utf8_lossy(listing)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(4, '|').collect();
            (f.len() == 4 && Path::new(f[3]).starts_with(&root)).then(|| (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Jobs under `root` as accounting (slurmdbd) recorded them: (id, name, state).
fn accounted_under(root: &Path) -> Vec<(u64, String, String)> {
    let o = Command::new("sacct").args(["-n", "-P", "-X", "-S", "now-1days", "-o", "JobID,JobName,State,WorkDir"]).output().unwrap();
    assert!(o.status.success(), "sacct (accounting: scripts/slurm/setup.sh starts slurmdbd): {}", String::from_utf8_lossy(&o.stderr));
    jobs_in(&o.stdout, root)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The demo, every stage through Slurm; no GPUs here, and the agent's
/// memory fits this machine.
fn slurm_demo() -> Project {
    let p = Project::demo();
    p.edit_spec(
        "stage agent budget=\"2m\" grace=\"5s\" {\n    resources gpus=1 cpus=2 memory=\"4G\"",
        "stage agent executor=\"slurm\" budget=\"2m\" grace=\"5s\" {\n    resources cpus=1 memory=\"100M\"",
    );
    p.edit_spec("stage judge budget=\"1m\" {", "stage judge executor=\"slurm\" budget=\"1m\" {");
    p.edit_spec("stage eval budget=\"1m\" {", "stage eval executor=\"slurm\" budget=\"1m\" {");
    p
}

fn fast(p: &Project, args: &[&str]) -> Command {
    let mut c = p.cmd(args);
    c.env("PTB_SLURM_POLL", "200ms");
    c
}

fn run_fast(p: &Project, args: &[&str]) -> (bool, String) {
    let o = fast(p, args).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

const ONE_CELL: &str = r#"experiment demo
model m path="../fixtures/demo/models/tiny-a" arch=llama
benchmark b data="../fixtures/demo/data/arith.jsonl"
agent a { command "../scripts/demo/agent.sh" "0.5" "AGENT_SLEEP"; }
stage agent executor="slurm" budget="AGENT_BUDGET" grace="1s" { slurm SLURM_ARGS; }
stage eval executor="slurm" budget="1m" { command "../scripts/demo/eval.sh"; }
matrix { agents a; seeds SEEDS; }
"#;

fn one_cell(sleep: &str, budget: &str, slurm: &str, seeds: &str) -> Project {
    Project::with_spec(&ONE_CELL.replace("AGENT_SLEEP", sleep).replace("AGENT_BUDGET", budget).replace("SLURM_ARGS", slurm).replace("SEEDS", seeds))
}

#[test]
fn the_demo_matrix_runs_through_slurm_once_and_a_reapply_submits_nothing() {
    let _g = serial();
    let p = slurm_demo();
    let (ok, first) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(ok, "{first}");
    assert_eq!(Project::ran(&first).len(), 52, "{first}");
    let jobs = jobs_under(p.path());
    assert_eq!(jobs.len(), 52, "one Slurm job per stage: {jobs:?}");
    assert!(jobs.iter().all(|(_, name, state)| name.starts_with("ptb-") && state == "COMPLETED"), "{jobs:?}");
    // Same results as the local executor: 16 judged agents, 20 evals.
    let lock = p.lock_text();
    assert_eq!(lock.matches("status=\"success\"").count(), 52, "{lock}");
    let lock1 = p.lock_text();
    let (ok, second) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(ok, "{second}");
    assert!(Project::ran(&second).is_empty(), "{second}");
    assert!(second.contains("52 cached"), "{second}");
    assert_eq!(jobs_under(p.path()).len(), 52, "a no-op apply submitted jobs");
    assert_eq!(lock1, p.lock_text());
    // Nothing is left in the build area.
    assert_eq!(std::fs::read_dir(p.path().join("store/v1/.tmp")).unwrap().count(), 0);
}

#[test]
fn a_stage_over_budget_is_stopped_by_ptb_inside_the_job_and_keeps_its_output() {
    let _g = serial();
    let p = one_cell("30", "2s", "", "1");
    let (ok, out) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(ok, "{out}");
    let lock = p.lock_text();
    assert!(lock.contains("status=\"budget_exhausted\""), "{lock}");
    // The agent's output (written before it slept) is in the store and the
    // eval ran on it.
    let entries = p.store_entries();
    let agent = entries.iter().find(|e| e.ends_with("-agent")).expect("agent entry");
    assert!(p.path().join("store/v1").join(agent).join("out/final_model/skill.txt").exists());
    assert!(entries.iter().any(|e| e.ends_with("-eval")), "{entries:?}");
    // ptb ended it, not Slurm's time limit.
    let jobs = jobs_under(p.path());
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(|(_, _, s)| s == "COMPLETED"), "{jobs:?}");
}

#[test]
fn a_killed_controller_is_followed_by_one_that_adopts_its_jobs() {
    let _g = serial();
    let p = one_cell("3", "1m", "", "1 2 3");
    let mut child = fast(&p, &["apply", "experiments/demo.kdl"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill it once all three agents are in the queue, before any finished.
    wait_for("three submitted agent jobs", Duration::from_secs(30), || jobs_under(p.path()).len() >= 3);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    let (ok, out) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(ok, "{out}");
    assert!(out.contains("6 ran (6 succeeded"), "{out}");
    let once = |jobs: &[(u64, String, String)]| {
        let mut names: Vec<&str> = jobs.iter().map(|(_, n, _)| n.as_str()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        (n, names.len())
    };
    let jobs = jobs_under(p.path());
    assert_eq!(once(&jobs), (6, 6), "every stage submitted exactly once: {jobs:?}");
    // Accounting agrees (it records a job a moment after it ends).
    let start = Instant::now();
    let mut accounted = accounted_under(p.path());
    while accounted.iter().filter(|(_, _, s)| s == "COMPLETED").count() < 6 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
        accounted = accounted_under(p.path());
    }
    assert_eq!(once(&accounted), (6, 6), "sacct: every stage submitted exactly once: {accounted:?}");
    assert_eq!(p.lock_text().matches("status=\"success\"").count(), 6);
    let log = std::fs::read_to_string(p.path().join("store/v1").join(p.store_entries().iter().find(|e| e.ends_with("-agent")).unwrap()).join("log")).unwrap();
    assert!(log.contains("wrote"), "{log}");
}

#[test]
fn a_job_whose_node_goes_down_is_submitted_again_and_completes() {
    let _g = serial();
    let p = one_cell("4", "1m", "", "1");
    let child = fast(&p, &["apply", "experiments/demo.kdl"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_for("a running agent job", Duration::from_secs(30), || jobs_under(p.path()).iter().any(|(_, _, s)| s == "RUNNING"));
    let node = format!("nodename={}", hostname());
    let down = Command::new("scontrol").args(["update", &node, "state=down", "reason=ptb-test"]).output().unwrap();
    assert!(down.status.success(), "{}\n{}", String::from_utf8_lossy(&down.stderr), sinfo());
    wait_for("the job to end NODE_FAIL", Duration::from_secs(30), || jobs_under(p.path()).iter().any(|(_, _, s)| s == "NODE_FAIL"));
    // ReturnToService=2 may bring the node back by itself when slurmd
    // registers again; then there is nothing to resume.
    let up = Command::new("scontrol").args(["update", &node, "state=resume"]).output().unwrap();
    assert!(up.status.success() || !sinfo().contains("down"), "{}\n{}", String::from_utf8_lossy(&up.stderr), sinfo());
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}\n{}\n{:?}", failed_logs(&p), jobs_under(p.path()));
    let jobs = jobs_under(p.path());
    let mut states: Vec<&str> = jobs.iter().map(|(_, _, s)| s.as_str()).collect();
    states.sort();
    assert_eq!(states, ["COMPLETED", "COMPLETED", "NODE_FAIL"], "agent twice (NODE_FAIL, then COMPLETED) and eval once: {jobs:?}");
    let entries = p.store_entries();
    let agent = entries.iter().find(|e| e.ends_with("-agent")).expect("agent committed");
    let log = std::fs::read_to_string(p.path().join("store/v1").join(agent).join("log")).unwrap();
    assert!(log.contains("ended NODE_FAIL; submitting the stage again (1 of 3)"), "{log}");
}

#[test]
fn ctrl_c_with_on_interrupt_cancel_cancels_the_jobs_and_records_nothing() {
    let _g = serial();
    let p = one_cell("60", "5m", "", "1 2");
    let child = fast(&p, &["apply", "experiments/demo.kdl", "--on-interrupt", "cancel"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("two running agent jobs", Duration::from_secs(30), || jobs_under(p.path()).iter().filter(|(_, _, s)| s == "RUNNING").count() == 2);
    // `ptb status` shows them: job ids, RUNNING, on this node; the evals wait.
    let status = p.stdout(&["status", "experiments/demo.kdl"]);
    for (id, _, _) in jobs_under(p.path()) {
        assert!(status.lines().any(|l| l.contains(&format!(" {id} ")) && l.contains("RUNNING") && l.ends_with(&hostname())), "{status}");
    }
    assert!(status.contains("0 queued, 2 running, 2 waiting, 0 done."), "{status}");
    // `ptb logs` reads a running job's log from the shared build area.
    let log = p.stdout(&["logs", "experiments/demo.kdl", "m/b/a/seed=1", "--stage", "agent"]);
    assert!(log.contains("agent a: post-training m for b (seed 1"), "{log}");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("cancelled 2 Slurm job(s)"), "{text}");
    wait_for("both jobs cancelled", Duration::from_secs(20), || jobs_under(p.path()).iter().all(|(_, _, s)| s == "CANCELLED"));
    assert!(!p.lockfile().exists() || !p.lock_text().contains("status="), "a cancelled stage was recorded");
    // The next apply starts them afresh rather than recording the cancellation.
    let plan = p.stdout(&["plan", "experiments/demo.kdl"]);
    assert!(plan.contains("4 to run"), "{plan}");
}

#[test]
fn a_partition_that_does_not_exist_is_an_error_before_anything_is_submitted() {
    let _g = serial();
    let p = one_cell("0", "1m", "partition=\"nope\"", "1");
    let (ok, out) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(!ok);
    assert!(out.contains("partition `nope` does not exist on this cluster (sinfo lists: debug)"), "{out}");
    assert!(out.contains("experiments/demo.kdl"), "{out}");
    assert!(jobs_under(p.path()).is_empty());
}

#[test]
fn a_job_sbatch_refuses_is_a_failure_never_a_result() {
    let _g = serial();
    let p = one_cell("0", "1m", "\"--gres=bogus:1\"", "1");
    let (ok, out) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(!ok, "{out}");
    assert!(out.contains("1 failed"), "{out}");
    let lock = p.lock_text();
    assert!(lock.contains("status=\"failed\""), "{lock}");
    assert!(p.store_entries().is_empty());
    let failed: Vec<_> = std::fs::read_dir(p.path().join("store/v1/failed")).unwrap().flatten().collect();
    let log = std::fs::read_to_string(failed[0].path().join("log")).unwrap();
    assert!(log.contains("sbatch refused the job"), "{log}");
}

#[test]
fn with_slurmctld_down_apply_says_so_and_records_nothing_then_adopts_the_job() {
    let _g = serial();
    let p = one_cell("4", "1m", "", "1");
    let child = fast(&p, &["apply", "experiments/demo.kdl"])
        .env("PTB_SLURM_UNREACHABLE", "1s")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("a running agent job", Duration::from_secs(30), || jobs_under(p.path()).iter().any(|(_, _, s)| s == "RUNNING"));
    // The daemon scripts/slurm/setup.sh started, by the pid it wrote.
    let pid: i32 = std::fs::read_to_string("/run/slurmctld.pid").expect("slurmctld's pid file").trim().parse().unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    wait_for("slurmctld to stop", Duration::from_secs(20), || unsafe { libc::kill(pid, 0) } != 0);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    // Bring it back whatever happened, for the tests after this one.
    let restart = Command::new("bash").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm/setup.sh")).output().unwrap();
    assert!(restart.status.success(), "{}", String::from_utf8_lossy(&restart.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("not recorded: stopped following Slurm job"), "{text}");
    assert!(text.contains("cannot reach slurmctld"), "{text}");
    assert!(!p.lockfile().exists() || !p.lock_text().contains("status="), "{}", p.lock_text());
    // slurmctld is back: the job ran on meanwhile, and the next apply adopts it.
    let (ok, again) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(ok, "{again}");
    assert_eq!(jobs_under(p.path()).len(), 2, "the agent was not submitted again");
    assert_eq!(p.lock_text().matches("status=\"success\"").count(), 2);
}

#[test]
fn slurmctld_down_before_apply_is_a_clear_error() {
    let _g = serial();
    let p = one_cell("0", "1m", "", "1");
    // A cluster that does not answer: a config naming an empty port.
    let dir = tempfile::tempdir().unwrap();
    let conf = std::fs::read_to_string("/etc/slurm/slurm.conf").unwrap();
    let conf: String = conf.lines().filter(|l| !l.starts_with("SlurmctldPort")).map(|l| format!("{l}\n")).collect::<String>() + "SlurmctldPort=9\n";
    std::fs::write(dir.path().join("slurm.conf"), conf).unwrap();
    let o = fast(&p, &["apply", "experiments/demo.kdl"]).env("SLURM_CONF", dir.path().join("slurm.conf")).output().unwrap();
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(text.contains("the spec has Slurm stages, but cannot reach slurmctld"), "{text}");
    assert!(text.contains("scontrol ping"), "{text}");
    assert!(!p.lockfile().exists() || !p.lock_text().contains("status="));
}

/// One cell whose agent runs in the test image through Slurm: it writes a
/// checkpoint, then runs `then` (shell) to record what it saw.
fn container_project(then: &str) -> Project {
    Project::with_spec(&format!(
        r#"experiment demo
model m path="../fixtures/demo/models/tiny-a" arch=llama
benchmark b data="../fixtures/demo/data/arith.jsonl"
agent a image="ptb-test/busybox:1" {{ command "/bin/sh" "-c" "mkdir -p $PTB_OUT/final_model && cat /inputs/model/config.json > $PTB_OUT/final_model/config.json && echo 0.5 > $PTB_OUT/final_model/skill.txt && {then}"; }}
stage agent executor="slurm" budget="1m" {{}}
stage eval executor="slurm" budget="1m" {{ command "../scripts/demo/eval.sh"; }}
matrix {{ agents a; seeds 1; }}
"#
    ))
}

#[test]
fn a_container_stage_runs_through_slurm_on_the_nodes_engine() {
    let _g = serial();
    let o = Command::new("docker").args(["image", "inspect", "ptb-test/busybox:1"]).output().expect("docker CLI");
    assert!(o.status.success(), "test image missing: run scripts/docker/ci-setup.sh");
    let p = container_project("hostname > $PTB_OUT/where");
    let (ok, out) = run_fast(&p, &["apply", "experiments/demo.kdl"]);
    assert!(ok, "{out}");
    let entries = p.store_entries();
    let agent = entries.iter().find(|e| e.ends_with("-agent")).expect("agent entry");
    let out_dir = p.path().join("store/v1").join(agent).join("out");
    assert!(out_dir.join("final_model/config.json").exists());
    // It ran in a container (whose hostname is its id), not on the host.
    let where_ = std::fs::read_to_string(out_dir.join("where")).unwrap();
    assert_ne!(where_.trim(), hostname());
    assert_eq!(jobs_under(p.path()).len(), 2);
}

/// A job slurmctld has already forgotten (MinJobAge, 5 minutes by default
/// on real clusters) is asked of accounting. Here squeue is wrapped so it
/// lists no finished job, as if slurmctld had purged them at once; sacct is
/// the real one, wrapped only to log that it was asked.
#[test]
fn a_job_squeue_has_forgotten_gets_its_final_state_from_sacct() {
    let _g = serial();
    let bin = tempfile::tempdir().unwrap();
    let which = |p: &str| {
        let o = Command::new("sh").args(["-c", &format!("command -v {p}")]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let (squeue, sacct) = (which("squeue"), which("sacct"));
    let asked = bin.path().join("sacct.log");
    let script = |name: &str, body: String| {
        let path = bin.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script("squeue", format!("{squeue} \"$@\" | awk -F'|' '$3 !~ /^(COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL)$/'"));
    script("sacct", format!("echo \"$*\" >> {}\nexec {sacct} \"$@\"", asked.display()));
    let p = Project::with_spec(
        r#"experiment demo
model m path="../fixtures/demo/models/tiny-a" arch=llama
benchmark b data="../fixtures/demo/data/arith.jsonl"
agent a { command "/bin/sh" "-c" "echo failing; exit 3"; }
stage agent executor="slurm" budget="1m" {}
stage eval executor="slurm" budget="1m" { command "../scripts/demo/eval.sh"; }
matrix { agents a; seeds 1 2; }
"#,
    );
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap());
    let o = fast(&p, &["apply", "experiments/demo.kdl"]).env("PATH", path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "{text}");
    assert!(text.contains("2 failed"), "{text}");
    // Accounting says the jobs COMPLETED (ptb stage-run recorded the
    // stage's failure and exited 0): the logs carry no word of Slurm's.
    // Without it they would end "ended unknown (Slurm no longer lists it)".
    let logs = failed_logs(&p);
    assert_eq!(logs.matches("failing").count(), 2, "{logs}");
    assert!(!logs.contains("no longer lists it"), "{logs}");
    let asked = std::fs::read_to_string(&asked).expect("sacct was asked");
    assert!(asked.lines().all(|l| l.contains("-o JobID,State")), "{asked}");
    assert!(p.store_entries().is_empty());
}

/// Podman's Docker-compatible API, as scripts/podman/setup.sh starts it.
const PODMAN_SOCKET: &str = "/run/ptb-podman/podman.sock";

#[test]
fn a_container_stage_runs_through_slurm_on_podman_with_the_same_sandbox() {
    let _g = serial();
    let host = format!("unix://{PODMAN_SOCKET}");
    let o = Command::new("podman").args(["image", "inspect", "ptb-test/busybox:1"]).output();
    assert!(
        o.is_ok_and(|o| o.status.success()) && Path::new(PODMAN_SOCKET).exists(),
        "podman or its test image or API socket is missing: run scripts/podman/setup.sh (CI runs it from scripts/test-setup.sh)"
    );
    // What the stage sees: who it runs as, its capabilities, whether it can
    // write the image's root, and which engine ran it (podman bind-mounts
    // /etc/hostname from its `overlay-containers` directory; Docker from
    // /var/lib/docker/containers).
    let p = container_project(
        "id -u > $PTB_OUT/uid && grep CapEff /proc/self/status > $PTB_OUT/caps && (touch /root-write 2>/dev/null && echo writable || echo read-only) > $PTB_OUT/rootfs && (grep -q /overlay-containers/ /proc/self/mountinfo && echo podman || echo docker) > $PTB_OUT/engine",
    );
    // DOCKER_HOST reaches the node in the job's environment (sbatch's
    // --export=ALL): the controller pins the image and the node runs the
    // stage on the same engine.
    let o = fast(&p, &["apply", "experiments/demo.kdl"]).env("DOCKER_HOST", &host).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}\n{}", failed_logs(&p));
    let entries = p.store_entries();
    let agent = entries.iter().find(|e| e.ends_with("-agent")).expect("agent entry");
    let out = p.path().join("store/v1").join(agent).join("out");
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap().trim().to_string();
    assert_eq!(read("engine"), "podman", "the stage ran on podman, not Docker");
    // `sandbox user="ptb"`, the default: ptb's own uid, `nobody` for root.
    let uid = match unsafe { libc::geteuid() } {
        0 => 65534,
        u => u,
    };
    assert_eq!(read("uid"), uid.to_string());
    assert_eq!(read("caps"), "CapEff:\t0000000000000000", "every capability dropped");
    assert_eq!(read("rootfs"), "read-only");
    assert!(out.join("final_model/config.json").exists());
    assert_eq!(jobs_under(p.path()).len(), 2);
}

#[test]
fn plan_estimates_the_makespan_for_a_number_of_gpus() {
    // No Slurm needed: planning never talks to the cluster.
    let p = slurm_demo();
    p.edit_spec("resources cpus=1 memory=\"100M\"", "resources gpus=1");
    let plan = p.stdout(&["plan", "experiments/demo.kdl"]);
    assert!(plan.contains("`--gpus N` estimates how long"), "{plan}");
    // 16 two-minute one-GPU agents (then a 1 m judge and eval each) on 4 GPUs:
    // four rounds of 2 m, the last cell's judge and eval after: 8 + 2 = 10 min.
    let plan = p.stdout(&["plan", "experiments/demo.kdl", "--gpus", "4"]);
    assert!(plan.contains("Makespan on 4 GPU(s), every stage at its full budget, longest cell first: 0.2 h"), "{plan}");
}
