//! Per-SR disk I/O counters: the bytes and requests the server itself reads
//! from and writes to the VDIs of each SR (raw and XVA imports and exports,
//! VDI copies). The sampler turns their growth into the SR's throughput and
//! IOPS data sources, adding the block statistics the backend reports for
//! the running guests' disks of that SR.

use crate::Server;
use model::schema::CLASS_VDI;
use model::types::fields;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Running totals for one SR since the server started.
#[derive(Default, Debug)]
pub struct Counters {
    pub read_bytes: AtomicU64,
    pub read_ops: AtomicU64,
    pub write_bytes: AtomicU64,
    pub write_ops: AtomicU64,
}

impl Counters {
    /// One read request of `n` bytes.
    pub fn read(&self, n: u64) {
        self.read_bytes.fetch_add(n, Relaxed);
        self.read_ops.fetch_add(1, Relaxed);
    }

    /// One write request of `n` bytes.
    pub fn wrote(&self, n: u64) {
        self.write_bytes.fetch_add(n, Relaxed);
        self.write_ops.fetch_add(1, Relaxed);
    }

    /// (read bytes, read ops, written bytes, write ops).
    pub fn totals(&self) -> [u64; 4] {
        [
            self.read_bytes.load(Relaxed),
            self.read_ops.load(Relaxed),
            self.write_bytes.load(Relaxed),
            self.write_ops.load(Relaxed),
        ]
    }
}

/// The counters of every SR that has seen I/O, by SR ref.
#[derive(Default)]
pub struct SrIo(Mutex<HashMap<String, Arc<Counters>>>);

impl SrIo {
    pub fn of_sr(&self, sr: &str) -> Arc<Counters> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(sr.to_string()).or_default().clone()
    }

    /// The counters of the SR a VDI lives in (detached ones for a VDI that
    /// has gone: its I/O is then counted nowhere).
    pub fn of_vdi(&self, s: &Server, vdi: &str) -> Arc<Counters> {
        let vc = &CLASS_VDI;
        let sr = s.db.read().get(vc, vdi).map(|r| r.read(fields::vdi::SR).into_string());
        match sr {
            Some(sr) => self.of_sr(&sr),
            None => Arc::default(),
        }
    }

    /// Every SR's totals, by SR ref.
    pub fn totals(&self) -> Vec<(String, [u64; 4])> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, c)| (k.clone(), c.totals())).collect()
    }

    /// Drop the counters of SRs that no longer exist.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|k, _| keep(k));
    }
}

/// Rates between two samples of one SR's totals: (read B/s, read ops/s,
/// write B/s, write ops/s). A counter that went backwards counts as zero.
pub fn rates(prev: [u64; 4], now: [u64; 4], secs: f64) -> [f64; 4] {
    let secs = secs.max(0.001);
    let mut out = [0.0; 4];
    for i in 0..4 {
        out[i] = now[i].saturating_sub(prev[i]) as f64 / secs;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates() {
        let io = SrIo::default();
        let c = io.of_sr("OpaqueRef:a");
        c.wrote(1 << 20);
        c.wrote(1 << 20);
        c.read(4096);
        assert!(Arc::ptr_eq(&c, &io.of_sr("OpaqueRef:a")));
        let t = io.totals();
        assert_eq!(t, vec![("OpaqueRef:a".to_string(), [4096, 1, 2 << 20, 2])]);
        assert_eq!(rates([0, 0, 0, 0], t[0].1, 2.0), [2048.0, 0.5, 1048576.0, 1.0]);
        assert_eq!(rates([10, 10, 10, 10], [0, 0, 0, 0], 1.0), [0.0; 4]);
        io.retain(|_| false);
        assert!(io.totals().is_empty());
    }
}
