//! An ordered parallel map on scoped threads: `workers` threads take the
//! next index from a shared counter until the items run out, and results
//! come back in the items' order. Used where the work is blocking I/O or a
//! subprocess (hashing files, running sandboxed tests, asking the judge), so
//! plain threads rather than an async runtime or rayon's CPU pool.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `f` applied to every item on up to `workers` threads (at least one, at
/// most one per item); the results in `items`' order.
pub fn map_ordered<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if workers.min(items.len()) <= 1 {
        // One worker is this thread: no spawn for a single item or a
        // caller that asked for no parallelism.
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    slots.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every item visited")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_with_any_worker_count() {
        let items: Vec<u32> = (0..100).collect();
        for workers in [0, 1, 3, 200] {
            assert_eq!(map_ordered(&items, workers, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
        assert!(map_ordered(&[] as &[u32], 4, |x| *x).is_empty());
    }
}
