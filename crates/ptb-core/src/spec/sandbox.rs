//! A container stage's sandbox: who the command runs as, which kernel
//! capabilities it keeps, whether it may gain privileges, how many
//! processes it may start, and whether the image's filesystem is writable.
//!
//! The default is the hardened one; a `sandbox` node (on an `agent` or a
//! `stage`) relaxes each setting explicitly, and every setting is hashed
//! into the stage key (it can change what a stage manages to do):
//!
//! ```kdl
//! sandbox user="root" root-fs="writable" pids=16384 no-new-privileges=#false {
//!     cap-add "SYS_PTRACE" "NET_RAW"
//! }
//! ```

use super::diag::{ListFmt, did_you_mean};
use super::parse::{Ctx, N};
use kdl::KdlValue;
use std::collections::BTreeSet;
use std::fmt;

/// The pids limit a container gets unless its `sandbox` says otherwise:
/// enough for a training run's threads and data-loader workers, few enough
/// that a fork bomb stops long before the host's own limit.
pub const DEFAULT_PIDS: u32 = 4096;

/// Who a container's command runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxUser {
    /// ptb's own uid:gid, so what the stage writes is never foreign-owned;
    /// when ptb itself runs as root, the unprivileged 65534:65534 (`nobody`)
    /// instead, and ptb takes the outputs back afterwards.
    #[default]
    Ptb,
    /// The image's own `USER` (root if it sets none).
    Image,
    /// uid 0 inside the container (still without capabilities unless
    /// `cap-add` grants some).
    Root,
    /// A numeric `uid:gid`.
    Id { uid: u32, gid: u32 },
}

impl SandboxUser {
    /// `ptb`, `image`, `root` or `UID:GID`: in specs and in the key.
    pub fn parse(s: &str) -> Option<SandboxUser> {
        match s {
            "ptb" => Some(SandboxUser::Ptb),
            "image" => Some(SandboxUser::Image),
            "root" => Some(SandboxUser::Root),
            _ => {
                let (u, g) = s.split_once(':')?;
                Some(SandboxUser::Id { uid: u.parse().ok()?, gid: g.parse().ok()? })
            }
        }
    }
}

impl fmt::Display for SandboxUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SandboxUser::Ptb => f.write_str("ptb"),
            SandboxUser::Image => f.write_str("image"),
            SandboxUser::Root => f.write_str("root"),
            SandboxUser::Id { uid, gid } => write!(f, "{uid}:{gid}"),
        }
    }
}

/// Whether the image's root filesystem is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootFs {
    /// Read-only; `/work`, `/output` and `/tmp` (a tmpfs) are the writable places.
    #[default]
    ReadOnly,
    Writable,
}

impl RootFs {
    pub const NAMES: [&'static str; 2] = ["read-only", "writable"];

    pub fn name(self) -> &'static str {
        match self {
            RootFs::ReadOnly => "read-only",
            RootFs::Writable => "writable",
        }
    }

    pub fn parse(s: &str) -> Option<RootFs> {
        [RootFs::ReadOnly, RootFs::Writable].into_iter().find(|r| r.name() == s)
    }
}

/// How many processes (threads included: the kernel counts tasks) a
/// container may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidsLimit {
    Limit(u32),
    Unlimited,
}

impl Default for PidsLimit {
    fn default() -> Self {
        PidsLimit::Limit(DEFAULT_PIDS)
    }
}

impl fmt::Display for PidsLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidsLimit::Limit(n) => write!(f, "{n}"),
            PidsLimit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A Linux capability by its name without `CAP_` (`SYS_PTRACE`).
///
/// Hand-written list (capabilities(7), Linux 6.x) rather than a crate: the
/// capability crates also bring the syscalls that read and set them, which
/// ptb-core, a pure library, must not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capability(&'static str);

impl Capability {
    pub const ALL: [&'static str; 41] = [
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
    ];

    /// `SYS_PTRACE`, `CAP_SYS_PTRACE` or `sys_ptrace`.
    pub fn parse(s: &str) -> Option<Capability> {
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        Capability::ALL.iter().find(|c| **c == bare).copied().map(Capability)
    }

    /// The name Docker's `CapAdd` takes and the key records.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// A container stage's sandbox (the defaults are the hardened settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    pub user: SandboxUser,
    pub root_fs: RootFs,
    pub pids: PidsLimit,
    /// Docker's `no-new-privileges`: set-uid binaries and file capabilities
    /// grant nothing.
    pub no_new_privileges: bool,
    /// Capabilities kept; every other one is dropped.
    pub cap_add: BTreeSet<Capability>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox { user: SandboxUser::Ptb, root_fs: RootFs::ReadOnly, pids: PidsLimit::default(), no_new_privileges: true, cap_add: BTreeSet::new() }
    }
}

impl Sandbox {
    /// The hashed fields (docs/hashing.md), by name.
    pub fn key_fields(&self) -> [(&'static str, String); 5] {
        [
            ("sandbox.user", self.user.to_string()),
            ("sandbox.root_fs", self.root_fs.name().to_string()),
            ("sandbox.pids", self.pids.to_string()),
            ("sandbox.no_new_privileges", self.no_new_privileges.to_string()),
            ("sandbox.cap_add", self.cap_add.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")),
        ]
    }
}

/// `sandbox user="…" root-fs="…" pids=N|"unlimited" no-new-privileges=#bool { cap-add "NAME"… }`.
pub(super) fn read_sandbox(ctx: &mut Ctx, n: &N) -> Option<Sandbox> {
    n.check_shape(ctx, &["user", "root-fs", "pids", "no-new-privileges"], 0);
    let mut sb = Sandbox::default();
    let mut ok = true;
    if let Some(u) = n.str_prop(ctx, "user") {
        match SandboxUser::parse(&u) {
            Some(user) => sb.user = user,
            None => {
                ctx.error(
                    &n.entry_loc("user"),
                    format!("unknown sandbox user `{u}`"),
                    "unknown user",
                    Some("one of `ptb` (the default: ptb's own uid), `image` (the image's USER), `root`, or a numeric `UID:GID` like \"1000:1000\"".into()),
                );
                ok = false;
            }
        }
    }
    if let Some(r) = n.choice_prop(ctx, "root-fs", &RootFs::NAMES) {
        sb.root_fs = RootFs::parse(&r).expect("one of RootFs::NAMES");
    }
    match n.get("pids") {
        None => {}
        Some(KdlValue::Integer(i)) if (1..=i128::from(u32::MAX)).contains(i) => sb.pids = PidsLimit::Limit(*i as u32),
        Some(KdlValue::String(s)) if s == "unlimited" => sb.pids = PidsLimit::Unlimited,
        Some(other) => {
            ctx.error(
                &n.entry_loc("pids"),
                format!("`pids` must be a positive integer or \"unlimited\", found {other}"),
                "bad pids limit",
                Some(format!("the default is {DEFAULT_PIDS}; e.g. pids=16384")),
            );
            ok = false;
        }
    }
    match n.get("no-new-privileges") {
        None => {}
        Some(KdlValue::Bool(b)) => sb.no_new_privileges = *b,
        Some(other) => {
            ctx.error(&n.entry_loc("no-new-privileges"), format!("`no-new-privileges` must be #true or #false, found {other}"), "not a boolean", None);
            ok = false;
        }
    }
    for c in n.children() {
        if c.name() != "cap-add" {
            let help = did_you_mean(c.name(), ["cap-add"])
                .unwrap_or_else(|| "`sandbox` takes `cap-add \"NAME\"…` children; every capability not added is dropped".into());
            ctx.error(&c.name_loc(), format!("unknown child `{}` of `sandbox`", c.name()), "unknown", Some(help));
            ok = false;
            continue;
        }
        c.check_shape(ctx, &[], usize::MAX);
        for (v, loc) in c.args() {
            let cap = match v {
                KdlValue::String(s) => Capability::parse(s).ok_or(s.as_str()),
                _ => Err(""),
            };
            match cap {
                Ok(cap) => {
                    sb.cap_add.insert(cap);
                }
                Err(s) => {
                    let upper = s.to_ascii_uppercase();
                    let help = if upper == "ALL" || upper == "CAP_ALL" {
                        "`ALL` would undo the sandbox; name each capability the stage needs, without `CAP_`".to_string()
                    } else {
                        did_you_mean(&upper, Capability::ALL).unwrap_or_else(|| format!("a Linux capability without `CAP_`: {}", ListFmt(&Capability::ALL)))
                    };
                    let message = match v {
                        KdlValue::String(s) => format!("unknown capability `{s}`"),
                        other => format!("capabilities are quoted names like \"SYS_PTRACE\", found {other}"),
                    };
                    ctx.error(&loc, message, "unknown capability", Some(help));
                    ok = false;
                }
            }
        }
    }
    ok.then_some(sb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip() {
        for u in [SandboxUser::Ptb, SandboxUser::Image, SandboxUser::Root, SandboxUser::Id { uid: 1000, gid: 100 }] {
            assert_eq!(SandboxUser::parse(&u.to_string()), Some(u));
        }
        for bad in ["", "nobody", "1000", "a:b", "1:2:3", "-1:0"] {
            assert_eq!(SandboxUser::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn capabilities_take_docker_spellings() {
        assert_eq!(Capability::parse("CAP_SYS_PTRACE").map(Capability::name), Some("SYS_PTRACE"));
        assert_eq!(Capability::parse("net_raw").map(Capability::name), Some("NET_RAW"));
        assert_eq!(Capability::parse("ALL"), None, "`ALL` would undo the drop");
        assert_eq!(Capability::parse("SYS_PTRAC"), None);
    }
}
