//! What the container sandbox guarantees beyond the shared contract:
//! no network unless asked, read-only inputs, limits, output ownership,
//! and the hardened defaults (no root, no capabilities, no new privileges,
//! a pids limit, a read-only root filesystem), each relaxation included.

mod support;

use ptb_core::spec::{Capability, ExecutorKind, Network, PidsLimit, RootFs, SandboxUser};
use ptb_exec::{Executor, StageStatus};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::*;

/// The host as containers on the default bridge see it.
fn bridge_gateway() -> String {
    let gw = docker_cli(&["network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}"]);
    if !gw.is_empty() {
        return gw;
    }
    // Some engines record only the subnet; the bridge takes its first address.
    let subnet = docker_cli(&["network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}"]);
    let net: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap_or_else(|_| panic!("bridge subnet {subnet:?}"));
    std::net::Ipv4Addr::from(u32::from(net) + 1).to_string()
}

/// Listens on all host addresses; records whether anyone connected.
fn listener() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hit = Arc::new(AtomicBool::new(false));
    let h = hit.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            if c.is_ok() {
                h.store(true, Ordering::SeqCst);
            }
        }
    });
    (port, hit)
}

async fn try_connect(network: Network, host: &str, port: u16) -> (String, bool) {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, &format!("if nc -w 3 {host} {port} </dev/null; then echo CONNECTED; else echo BLOCKED; fi"));
    j.network = network;
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    (s.log(), s.log().contains("CONNECTED"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_blocks_a_connect_to_the_host() {
    let gw = bridge_gateway();
    let (port, hit) = listener();
    // Control: on the bridge the same connect succeeds, so a BLOCKED below
    // is the sandbox's doing and not a broken test.
    let (log, ok) = try_connect(Network::Bridge, &gw, port).await;
    assert!(ok && hit.load(Ordering::SeqCst), "control failed: the bridge network cannot reach {gw}:{port}:\n{log}");
    hit.store(false, Ordering::SeqCst);
    for host in [gw.as_str(), "127.0.0.1"] {
        let (log, ok) = try_connect(Network::None, host, port).await;
        assert!(!ok && log.contains("BLOCKED"), "network none reached {host}:{port}:\n{log}");
    }
    assert!(!hit.load(Ordering::SeqCst), "the host listener saw a connection from a network-none stage");
    // The default (empty) means none as well.
    let (_, ok) = try_connect(Network::default(), &gw, port).await;
    assert!(!ok, "an unset network must default to none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_read_only() {
    let s = Scratch::new();
    let j = job(
        &s,
        ExecutorKind::Docker,
        r#"echo x > /inputs/data/new.txt && echo WROTE; echo y >> /inputs/data/hello.txt && echo APPENDED; rm /inputs/data/hello.txt && echo REMOVED; exit 0"#,
    );
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success);
    let log = s.log();
    assert!(log.contains("Read-only file system"), "{log}");
    assert!(!log.contains("WROTE") && !log.contains("APPENDED") && !log.contains("REMOVED"), "{log}");
    assert!(!s.path("in-data/new.txt").exists());
    assert_eq!(std::fs::read_to_string(s.path("in-data/hello.txt")).unwrap(), "hello from the input\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_handed_to_the_host_user() {
    let s = Scratch::new();
    let j = job(&s, ExecutorKind::Docker, r#"mkdir -p /output/final_model && echo w > /output/final_model/weights && echo t > /work/tmp.txt"#);
    let ex = docker().await.with_output_owner(Some((4321, 4322)));
    let o = ex.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    for p in ["out/final_model", "out/final_model/weights", "work/tmp.txt"] {
        let m = std::fs::metadata(s.path(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4322), "{p} not handed over");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_is_an_oom_kill_and_peak_memory_is_recorded() {
    let s = Scratch::new();
    // A command substitution holds all its output in the shell's memory.
    let mut j = job(&s, ExecutorKind::Docker, r#"sleep 2; x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived"#);
    j.resources.memory_bytes = Some(32 << 20);
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert!(!s.log().contains("survived"), "{}", s.log());
    assert_eq!(o.status, StageStatus::Failed);
    assert!(o.oom_killed, "{o:?}");
    let peak = o.peak_memory_bytes.expect("peak memory sampled for a stage that ran > 1 s");
    assert!(peak <= 32 << 20, "peak {peak} above the limit");

    // Within its limit, the same kind of stage succeeds and reports a peak.
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, r#"x=$(head -c 20000000 /dev/zero | tr '\0' a); sleep 2; echo survived"#);
    j.resources.memory_bytes = Some(256 << 20);
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    assert!(!o.oom_killed);
    assert!(o.peak_memory_bytes.unwrap_or(0) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_is_removed_afterwards_and_labelled_while_running() {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "sleep 3");
    j.key = format!("labeltest{}", std::process::id());
    let ex = docker().await;
    let key = j.key.clone();
    let run = tokio::spawn(async move { ex.run(&j, &Lines::default()).await.map(|o| o.status) });
    let filter = format!("label=ptb.key={key}");
    let mut seen = String::new();
    for _ in 0..40 {
        seen = docker_cli(&["ps", "-q", "--filter", &filter, "--filter", "label=ptb.stage=agent", "--filter", "label=ptb.cell=m/b/a/seed=1"]);
        if !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!seen.is_empty(), "no running container labelled {filter}");
    assert_eq!(run.await.unwrap().unwrap(), StageStatus::Success);
    assert_eq!(docker_cli(&["ps", "-aq", "--filter", &filter]), "", "container left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_default_command_runs_when_none_is_given() {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, "");
    j.command.clear();
    // The test image's CMD is /bin/sh, which exits at once on empty stdin.
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_image_user_can_write_its_output() {
    // An image whose USER is not root, like many agent images.
    let tag = format!("ptb-test/nonroot:{}", std::process::id());
    let c = docker_cli(&["create", IMAGE, "true"]);
    docker_cli(&["commit", "--change", "USER 1000:1000", &c, &tag]);
    docker_cli(&["rm", &c]);
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, r#"id -u; mkdir -p /output/final_model && echo w > /output/final_model/w && echo t > /work/t"#);
    j.image = Some(tag.clone());
    // The image's user only when the spec says `sandbox user="image"`.
    j.sandbox.user = SandboxUser::Image;
    let o = docker().await.run(&j, &Lines::default()).await;
    docker_cli(&["rmi", &tag]);
    let o = o.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    assert!(s.log().starts_with("1000"), "{}", s.log());
    assert!(s.path("out/final_model/w").exists());
    let mode = std::fs::metadata(s.path("out")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o755, "the output dir is not left world-writable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_input_is_mounted_read_only() {
    let s = Scratch::new();
    std::fs::write(s.path("task.md"), "# the task\n").unwrap();
    let mut j = job(&s, ExecutorKind::Docker, r#"cat "$PTB_INPUT_PROMPT"; echo more >> /inputs/prompt || echo refused"#);
    j.inputs.push(ptb_exec::JobInput { name: "prompt".into(), path: s.path("task.md") });
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    assert_eq!(o.status, StageStatus::Success, "{}", s.log());
    assert!(s.log().contains("# the task") && s.log().contains("refused"), "{}", s.log());
    assert_eq!(std::fs::read_to_string(s.path("task.md")).unwrap(), "# the task\n");
}

/// Runs `script` in a container with `sandbox` applied to the test job.
async fn sandboxed(script: &str, f: impl FnOnce(&mut ptb_exec::StageJob)) -> (StageStatus, String, Scratch) {
    let s = Scratch::new();
    let mut j = job(&s, ExecutorKind::Docker, script);
    f(&mut j);
    let o = docker().await.run(&j, &Lines::default()).await.unwrap();
    let log = s.log();
    (o.status, log, s)
}

/// What the default sandbox lets a stage see of its own privileges.
const PROBE: &str = r#"echo "uid=$(id -u) gid=$(id -g) home=$HOME"; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; touch /etc/owned 2>/dev/null && echo ROOT_FS_WRITABLE || echo ROOT_FS_READ_ONLY; echo t > /tmp/t && echo TMP_OK; echo w > /work/w && echo WORK_OK; cp /bin/busybox /output/sh && chown 0:0 /output/sh 2>/dev/null && chmod 4755 /output/sh && echo SETUID_ROOT_MADE || echo NO_SETUID_ROOT"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_sandbox_has_no_root_no_capabilities_and_a_read_only_root() {
    let (status, log, s) = sandboxed(PROBE, |_| {}).await;
    assert_eq!(status, StageStatus::Success, "{log}");
    let uid: u32 = log.split("uid=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|u| u.parse().ok()).unwrap_or_else(|| panic!("{log}"));
    assert_ne!(uid, 0, "the stage runs as root:\n{log}");
    // SAFETY: a plain getter.
    let ptb_uid = unsafe { libc::geteuid() };
    assert_eq!(uid, if ptb_uid == 0 { ptb_exec::docker::NOBODY } else { ptb_uid }, "{log}");
    assert!(log.contains("home=/work"), "{log}");
    assert!(log.contains("CapEff:\t0000000000000000"), "the stage kept capabilities:\n{log}");
    assert!(log.contains("NoNewPrivs:\t1"), "{log}");
    assert!(log.contains("ROOT_FS_READ_ONLY") && log.contains("TMP_OK") && log.contains("WORK_OK"), "{log}");
    assert!(log.contains("NO_SETUID_ROOT"), "{log}");
    // What it left is ptb's, with no set-uid bit for a root owner.
    let m = std::fs::metadata(s.path("out/sh")).unwrap();
    assert_eq!(m.uid(), ptb_uid, "outputs are handed to ptb's user");
    assert!(!(m.uid() == 0 && m.mode() & 0o4000 != 0), "a set-uid-root file in the output: {:o}", m.mode());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_relaxation_reaches_the_container() {
    let (status, log, _s) = sandboxed(PROBE, |j| {
        j.sandbox.user = SandboxUser::Root;
        j.sandbox.root_fs = RootFs::Writable;
        j.sandbox.no_new_privileges = false;
        j.sandbox.cap_add = [Capability::parse("SYS_PTRACE").unwrap()].into();
    })
    .await;
    assert_eq!(status, StageStatus::Success, "{log}");
    assert!(log.contains("uid=0 gid=0"), "{log}");
    // SYS_PTRACE is bit 19, and only it.
    assert!(log.contains("CapEff:\t0000000000080000"), "{log}");
    assert!(log.contains("NoNewPrivs:\t0"), "{log}");
    assert!(log.contains("ROOT_FS_WRITABLE"), "{log}");

    let (status, log, _s) = sandboxed("id -u", |j| j.sandbox.user = SandboxUser::Id { uid: 4242, gid: 4343 }).await;
    assert_eq!(status, StageStatus::Success, "{log}");
    assert_eq!(log.trim(), "4242");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pids_limit_stops_a_fork_bomb_and_can_be_lifted() {
    let spawn = "for i in $(seq 100); do sleep 30 & done; echo ALL_SPAWNED";
    let (_, log, _s) = sandboxed(spawn, |j| {
        j.sandbox.pids = PidsLimit::Limit(32);
        j.budget = std::time::Duration::from_secs(20);
    })
    .await;
    assert!(log.contains("can't fork") && !log.contains("ALL_SPAWNED"), "100 processes under a limit of 32:\n{log}");
    // A real fork bomb is contained and ends at its deadline.
    let (status, _, _s) = sandboxed("b() { b | b & }; b; sleep 60", |j| {
        j.sandbox.pids = PidsLimit::Limit(64);
        j.budget = std::time::Duration::from_secs(3);
        j.grace = std::time::Duration::from_secs(1);
    })
    .await;
    assert!(matches!(status, StageStatus::BudgetExhausted | StageStatus::Failed), "{status:?}");
    let (status, log, _s) = sandboxed(spawn, |j| j.sandbox.pids = PidsLimit::Unlimited).await;
    assert_eq!(status, StageStatus::Success, "{log}");
    assert!(log.contains("ALL_SPAWNED"), "{log}");
}
