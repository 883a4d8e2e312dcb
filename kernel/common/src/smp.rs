//! What CPUs running one job at once share, whatever the architecture.

use core::sync::atomic::{AtomicUsize, Ordering};

/// A barrier for the CPUs running one job.
pub struct Barrier {
    count: AtomicUsize,
    gen: AtomicUsize,
}

impl Barrier {
    pub const fn new() -> Self {
        Barrier { count: AtomicUsize::new(0), gen: AtomicUsize::new(0) }
    }

    /// Wait until `n` CPUs have arrived.
    pub fn wait(&self, n: usize) {
        let gen = self.gen.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == n {
            self.count.store(0, Ordering::Relaxed);
            self.gen.fetch_add(1, Ordering::AcqRel);
        } else {
            while self.gen.load(Ordering::Acquire) == gen {
                core::hint::spin_loop();
            }
        }
    }
}

impl Default for Barrier {
    fn default() -> Self {
        Self::new()
    }
}
