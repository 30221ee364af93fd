//! The hardened container: what a stage's [`Sandbox`] becomes in the
//! Engine API. By default a stage runs as an unprivileged user with no
//! capabilities, cannot gain privileges (set-uid binaries and file
//! capabilities grant nothing), holds at most `DEFAULT_PIDS` tasks, and
//! can write only `/work`, `/output` and a `/tmp` tmpfs.

use bollard::models::HostConfig;
use ptb_core::spec::{PidsLimit, RootFs, Sandbox, SandboxUser};
use std::collections::HashMap;

/// `/tmp` in a container with a read-only root filesystem: writable by
/// anyone like a host's /tmp, executable (build tools run what they compile
/// there), never set-uid, no device nodes. Its pages count against the
/// container's memory limit.
const TMP_OPTIONS: &str = "rw,exec,nosuid,nodev,mode=1777";

/// The `User` of the container: `uid:gid`, or `None` for the image's own.
pub(super) fn user(sandbox: &Sandbox, ptb_user: (u32, u32)) -> Option<String> {
    match sandbox.user {
        SandboxUser::Ptb => Some(format!("{}:{}", ptb_user.0, ptb_user.1)),
        SandboxUser::Root => Some("0:0".into()),
        SandboxUser::Id { uid, gid } => Some(format!("{uid}:{gid}")),
        SandboxUser::Image => None,
    }
}

/// `HOME` for a stage: `/work`, the one writable place that is the
/// stage's own, unless the image's user (and its home) were asked for.
pub(super) fn home(sandbox: &Sandbox) -> Option<&'static str> {
    (sandbox.user != SandboxUser::Image).then_some(super::run::WORK)
}

/// Fills the sandbox's part of the host config.
pub(super) fn apply(sandbox: &Sandbox, hc: &mut HostConfig) {
    hc.cap_drop = Some(vec!["ALL".into()]);
    hc.cap_add = (!sandbox.cap_add.is_empty()).then(|| sandbox.cap_add.iter().map(|c| c.name().to_string()).collect());
    if sandbox.no_new_privileges {
        hc.security_opt = Some(vec!["no-new-privileges".into()]);
    }
    // -1: unlimited (0 would mean "the engine's default").
    hc.pids_limit = Some(match sandbox.pids {
        PidsLimit::Limit(n) => i64::from(n),
        PidsLimit::Unlimited => -1,
    });
    hc.readonly_rootfs = Some(sandbox.root_fs == RootFs::ReadOnly);
    if sandbox.root_fs == RootFs::ReadOnly {
        hc.tmpfs = Some(HashMap::from([("/tmp".to_string(), TMP_OPTIONS.to_string())]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptb_core::spec::Capability;

    #[test]
    fn the_default_drops_everything_and_each_relaxation_reaches_the_engine() {
        let mut hc = HostConfig::default();
        let sb = Sandbox::default();
        apply(&sb, &mut hc);
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(hc.cap_add, None);
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges".to_string()]));
        assert_eq!(hc.pids_limit, Some(i64::from(ptb_core::spec::DEFAULT_PIDS)));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(user(&sb, (1000, 100)).as_deref(), Some("1000:100"));
        assert_eq!(home(&sb), Some("/work"));

        let relaxed = Sandbox {
            user: SandboxUser::Image,
            root_fs: RootFs::Writable,
            pids: PidsLimit::Unlimited,
            no_new_privileges: false,
            cap_add: [Capability::parse("SYS_PTRACE").unwrap()].into(),
        };
        let mut hc = HostConfig::default();
        apply(&relaxed, &mut hc);
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]), "relaxing adds capabilities, it never stops the drop");
        assert_eq!(hc.cap_add, Some(vec!["SYS_PTRACE".to_string()]));
        assert_eq!(hc.security_opt, None);
        assert_eq!(hc.pids_limit, Some(-1));
        assert_eq!((hc.readonly_rootfs, hc.tmpfs), (Some(false), None));
        assert_eq!(user(&relaxed, (1000, 100)), None);
        assert_eq!(home(&relaxed), None);
    }
}
