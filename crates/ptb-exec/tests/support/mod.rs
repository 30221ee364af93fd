//! Shared by the executor tests: jobs built directly (no spec), a Docker
//! connection that fails loudly when the engine is missing, the test image.
#![allow(dead_code)]

use ptb_core::spec::{ExecutorKind, Resources, StageKind};
use ptb_exec::docker::DockerExecutor;
use ptb_exec::{JobInput, StageJob};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once};
use std::time::Duration;

pub const IMAGE: &str = "ptb-test/busybox:1";

/// Connects to the engine, or fails the test with what to do: a test that
/// needs Docker must never pass without one.
pub async fn docker() -> DockerExecutor {
    ensure_image();
    match DockerExecutor::connect().await {
        Ok(d) => d,
        Err(e) => panic!("these tests need a running Docker engine (CI has one): {e}"),
    }
}

/// Builds the test image from the local busybox-static when it is missing.
pub fn ensure_image() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let have = Command::new("docker").args(["image", "inspect", IMAGE]).output().is_ok_and(|o| o.status.success());
        if !have {
            let script = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("scripts/build-demo-images.sh");
            let out = Command::new(&script).output().expect("running scripts/build-demo-images.sh");
            assert!(out.status.success(), "building {IMAGE} failed (run scripts/docker/ci-setup.sh first):\n{}", String::from_utf8_lossy(&out.stderr));
        }
    });
}

/// A scratch area for one job: input dir, out dir, work dir, log.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch { dir: tempfile::Builder::new().prefix("ptb-exec-test").tempdir().unwrap() }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("log")).unwrap_or_default()
    }
    /// An input directory `data` holding `hello.txt`.
    pub fn input(&self) -> JobInput {
        let d = self.path("in-data");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("hello.txt"), "hello from the input\n").unwrap();
        JobInput { name: "data".into(), path: d }
    }
}

pub fn job(s: &Scratch, executor: ExecutorKind, script: &str) -> StageJob {
    StageJob {
        key: format!("testkey{}", std::process::id()),
        cell: "m/b/a/seed=1".into(),
        stage: StageKind::Agent,
        executor,
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        image: (executor == ExecutorKind::Docker).then(|| IMAGE.to_string()),
        network: ptb_core::spec::Network::None,
        sandbox: ptb_core::spec::Sandbox::default(),
        interrupt: Default::default(),
        env: BTreeMap::from([("PTB_SEED".to_string(), "1".to_string())]),
        secrets: BTreeMap::new(),
        inputs: vec![s.input()],
        out_dir: s.path("out"),
        work_dir: s.path("work"),
        log_path: s.path("log"),
        budget: Duration::from_secs(60),
        grace: Duration::from_secs(2),
        resources: Resources::default(),
        gpu_ids: vec![],
        pull: ptb_core::spec::PullPolicy::Never,
        caches: Vec::new(),
    }
}

/// Collects what a stage sends to the progress display.
#[derive(Default)]
pub struct Lines(pub Mutex<Vec<String>>);

impl ptb_exec::LineSink for Lines {
    fn line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

impl Lines {
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub fn docker_cli(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("running the docker CLI");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
