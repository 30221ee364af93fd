//! Failures inside a GPU backend's device thread, made errors.
//!
//! cubecl (under burn-cuda and burn-wgpu) runs each device's work on a thread of its own and
//! wraps every task in `catch_unwind`, logging a panic at `warn` level and carrying on. A
//! failed allocation (out of memory, or a buffer over the device's size limit) therefore
//! left the engine computing on with zeros: on lavapipe a 622 MB embedding "generated"
//! tokens and exited 0. The panic hook is the one place such a panic is still visible, so
//! [`watch`] adds one (chained to the previous hook, which still prints it) that records
//! panics raised in cubecl's sources, and the engine calls [`check`] after loading and after
//! every forward pass it reads back.
//!
//! Written by hand: cubecl 0.10 has no error channel for a task that panicked, and a
//! `log` logger would have to be the process's only one.

use std::sync::{Mutex, Once};

use super::error::{EvalError, Result};

static FAILURE: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Installs the hook (once per process).
pub fn watch() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.location().is_some_and(|l| l.file().contains("cubecl")) {
                let message = info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".into());
                let mut first = FAILURE.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(message);
            }
            previous(info);
        }));
    });
}

/// The first device failure since the last check, as an error saying what it means. A
/// failure belongs to the process (cubecl's device threads are not an engine's), so with two
/// engines in one process the first to check reports it.
pub fn check(during: &str) -> Result<()> {
    match FAILURE.lock().unwrap_or_else(|e| e.into_inner()).take() {
        None => Ok(()),
        Some(message) => Err(EvalError::Backend(format!(
            "the device failed while {during}: {message}; its results are not usable (out of \
             device memory, or a buffer over the device's size limit? a smaller batch, a \
             16-bit --dtype or a larger device may do)"
        ))),
    }
}
