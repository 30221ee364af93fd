//! experiments/demo-docker.kdl stays a valid spec whose every stage runs in
//! the test image, sandboxed.

use ptb_core::spec::{AgentKind, ExecutorKind, StageKind};
use std::path::Path;

#[test]
fn demo_docker_spec_runs_every_stage_in_a_container() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("experiments/demo-docker.kdl");
    let exp = ptb_core::spec::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(exp.cells.len(), 16);
    for kind in StageKind::ALL {
        let stage = exp.stages.get(kind).unwrap();
        assert_eq!(stage.executor, ExecutorKind::Docker, "{kind:?}");
        assert_eq!(stage.runner.network.unwrap_or_default(), ptb_core::spec::Network::None);
    }
    for agent in &exp.agents {
        let AgentKind::Run(r) = &agent.kind else { panic!("{} is a checkpoint", agent.name) };
        assert_eq!(r.image.as_deref(), Some("ptb-test/busybox:1"));
    }
    for m in &exp.models {
        assert!(m.base.path.join("config.json").exists(), "{}", m.base.path.display());
    }
}
