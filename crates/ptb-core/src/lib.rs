//! ptb's spine. Data flows one way:
//! `spec` (KDL → typed [`spec::Experiment`]) → `hash` (canonical, versioned
//! keys) → `plan` (pure: experiment + pins + lockfile + store index → plan)
//! → executors (in ptb-exec) → `store` (content-addressed, atomic) → `lock`
//! (deterministic lockfile) → `report` (tables from the lockfile alone).
//!
//! Beside the flow: `resolve` (the I/O step before planning: content hashes
//! and image digests as [`resolve::Pins`]), `session` (loading all of it for
//! a command), `progress` (the one reporting trait), `task` (the agent's
//! prompt), `contract` (the stage contract's variable names), `benchmark`
//! (benchmark names), `judge` (the judge's policy, verdicts and reviews) and the small shared utilities `rng` and `pool`.
//! Nothing here runs a stage or loads a model.

pub mod arch;
pub mod benchmark;
pub mod contract;
pub mod hash;
pub mod judge;
pub mod lock;
pub mod plan;
pub mod pool;
pub mod progress;
pub mod report;
pub mod resolve;
pub mod rng;
pub mod session;
pub mod spec;
pub mod status;
pub mod store;
pub mod task;
