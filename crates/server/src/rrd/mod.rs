//! Round-robin databases of performance figures, as xapi's rrdd keeps them:
//! one RRD per object (the host, each VM that has run here), a base step of
//! 5 s and AVERAGE archives at 5 s, 1 min, 1 h and 1 day resolution.
//!
//! Data sources are gauges: a sample at time `t` holds from the previous
//! update until `t`. Seconds are folded into primary data points (PDPs) at
//! every 5 s boundary; each archive averages `pdp_cnt` PDPs into one
//! consolidated point (CDP), aligned to multiples of its own step in Unix
//! time, so every RRD updated together shares one timeline.
//!
//! MIN and MAX archives (xff 1.0) are added at the three coarser
//! resolutions to RRDs made while the pool's
//! `other_config:create_min_max_in_new_VM_RRDs` is `true`, as xapi does.
//! `persist` keeps them across restarts.

pub mod export;
pub mod io;
pub mod persist;
pub mod prometheus;
pub mod sampler;
pub mod sources;

pub use export::Cf;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// The base step in seconds.
pub const STEP: i64 = 5;
/// A data source with no update for this long becomes unknown.
pub const HEARTBEAT: f64 = 300.0;
/// (rows, PDPs per row) of xapi's archives.
pub const ARCHIVES: [(usize, i64); 4] = [(120, 1), (120, 12), (168, 720), (366, 17280)];
/// The share of unknown PDPs a CDP tolerates before it is unknown itself.
pub const XFF: f64 = 0.5;
/// MIN and MAX archives keep a row while any of its PDPs is known.
pub const XFF_MIN_MAX: f64 = 1.0;

/// One data source.
#[derive(Clone, Debug)]
pub struct Ds {
    pub name: String,
    pub min: f64,
    pub max: f64,
    /// The last value given.
    pub last: f64,
    /// Value × seconds accumulated in the current PDP.
    pub value: f64,
    /// Seconds of the current PDP with an unknown value.
    pub unknown_sec: f64,
}

/// A consolidation in progress.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cdp {
    /// The sum of the known PDPs (AVERAGE), or their minimum or maximum.
    pub sum: f64,
    pub known: i64,
    /// PDPs seen so far in this CDP.
    pub seen: i64,
}

/// One archive.
#[derive(Clone, Debug)]
pub struct Rra {
    pub cf: Cf,
    pub pdp_cnt: i64,
    pub row_cnt: usize,
    pub xff: f64,
    /// Per data source.
    pub cdps: Vec<Cdp>,
    /// Per data source, newest first, always `row_cnt` long (NaN-filled).
    pub data: Vec<VecDeque<f64>>,
}

impl Rra {
    fn new(cf: Cf, row_cnt: usize, pdp_cnt: i64, n: usize) -> Rra {
        let xff = if cf == Cf::Average { XFF } else { XFF_MIN_MAX };
        Rra { cf, pdp_cnt, row_cnt, xff, cdps: vec![Cdp::default(); n], data: vec![nan_ring(row_cnt); n] }
    }

    /// PDPs of the row being consolidated that are closed by `last_updated`
    /// (rows are aligned in Unix time). What is not known of them counts as
    /// unknown, whether before the RRD existed or not.
    pub fn open_row_pdps(&self, last_updated: f64) -> i64 {
        ((last_updated / STEP as f64).floor() as i64).rem_euclid(self.pdp_cnt)
    }

    /// The unknown PDPs of the row being consolidated, for dumps.
    pub fn cdp_unknown(&self, cdp: &Cdp, last_updated: f64) -> i64 {
        (self.open_row_pdps(last_updated) - cdp.known).max(0)
    }

    /// The step of one row, in seconds.
    pub fn step(&self) -> i64 {
        STEP * self.pdp_cnt
    }

    /// The `i`th newest consolidated value of data source `ds`.
    pub fn peek(&self, ds: usize, i: usize) -> f64 {
        self.data.get(ds).and_then(|r| r.get(i)).copied().unwrap_or(f64::NAN)
    }

    fn push(&mut self) {
        for (cdp, ring) in self.cdps.iter_mut().zip(self.data.iter_mut()) {
            let unknown = self.pdp_cnt - cdp.known;
            let v = if cdp.known == 0 || unknown as f64 / self.pdp_cnt as f64 > self.xff {
                f64::NAN
            } else if self.cf == Cf::Average {
                cdp.sum / cdp.known as f64
            } else {
                cdp.sum
            };
            ring.push_front(v);
            ring.truncate(self.row_cnt);
            *cdp = Cdp::default();
        }
    }

    /// Feed `n` PDPs with the same values, the first ending at `end`.
    fn feed(&mut self, mut end: i64, pdps: &[f64], mut n: i64) {
        let rstep = self.step();
        while n > 0 {
            let to_boundary = (rstep - end.rem_euclid(rstep)).rem_euclid(rstep) / STEP + 1;
            let k = to_boundary.min(n);
            for (cdp, &v) in self.cdps.iter_mut().zip(pdps) {
                if !v.is_nan() {
                    cdp.sum = match self.cf {
                        Cf::Min if cdp.known > 0 => cdp.sum.min(v),
                        Cf::Max if cdp.known > 0 => cdp.sum.max(v),
                        Cf::Min | Cf::Max | Cf::Last => v,
                        Cf::Average => cdp.sum + v * k as f64,
                    };
                    cdp.known += k;
                }
                cdp.seen += k;
            }
            end += k * STEP;
            n -= k;
            if k == to_boundary {
                self.push();
                // Whole rows beyond what the archive keeps all look alike:
                // skip them instead of pushing each.
                let whole = n / self.pdp_cnt;
                let skip = whole - self.row_cnt as i64;
                if skip > 0 {
                    end += skip * rstep;
                    n -= skip * self.pdp_cnt;
                }
            }
        }
    }
}

fn nan_ring(n: usize) -> VecDeque<f64> {
    std::iter::repeat_n(f64::NAN, n).collect()
}

/// One object's round-robin database.
#[derive(Clone, Debug)]
pub struct Rrd {
    /// Unix time of the last update, in seconds.
    pub last_updated: f64,
    pub dss: Vec<Ds>,
    pub rras: Vec<Rra>,
}

impl Rrd {
    /// AVERAGE archives at every resolution, and with `min_max` MIN and MAX
    /// ones at the coarser three (xapi's set when min/max is enabled).
    pub fn new(now: f64, min_max: bool) -> Rrd {
        let mut rras: Vec<Rra> = ARCHIVES.iter().map(|&(rows, pdps)| Rra::new(Cf::Average, rows, pdps, 0)).collect();
        if min_max {
            for cf in [Cf::Min, Cf::Max] {
                rras.extend(ARCHIVES[1..].iter().map(|&(rows, pdps)| Rra::new(cf, rows, pdps, 0)));
            }
        }
        Rrd { last_updated: now, dss: vec![], rras }
    }

    /// A copy holding what [`sources::query`] reads: the data sources and
    /// the newest row of the finest AVERAGE archive.
    pub fn newest_only(&self) -> Rrd {
        let rras = self
            .rras
            .iter()
            .find(|a| a.cf == Cf::Average)
            .map(|a| Rra {
                cf: a.cf,
                pdp_cnt: a.pdp_cnt,
                row_cnt: 1,
                xff: a.xff,
                cdps: a.cdps.clone(),
                data: a.data.iter().map(|r| r.iter().take(1).copied().collect()).collect(),
            })
            .into_iter()
            .collect();
        Rrd { last_updated: self.last_updated, dss: self.dss.clone(), rras }
    }

    fn pdp_start(t: f64) -> f64 {
        (t / STEP as f64).floor() * STEP as f64
    }

    /// Add a data source; its history so far is unknown.
    fn add_ds(&mut self, name: &str) {
        let unknown = self.last_updated - Self::pdp_start(self.last_updated);
        self.dss.push(Ds {
            name: name.to_string(),
            min: 0.0,
            max: f64::INFINITY,
            last: f64::NAN,
            value: 0.0,
            unknown_sec: unknown,
        });
        for rra in &mut self.rras {
            rra.cdps.push(Cdp::default());
            rra.data.push(nan_ring(rra.row_cnt));
        }
    }

    fn accumulate(&mut self, vals: &[f64], secs: f64) {
        for (ds, v) in self.dss.iter_mut().zip(vals) {
            if v.is_nan() {
                ds.unknown_sec += secs;
            } else {
                ds.value += v * secs;
            }
        }
    }

    /// Close the current PDP: its average over the known seconds, unknown
    /// when more than half of it is.
    fn close_pdp(&mut self) -> Vec<f64> {
        let step = STEP as f64;
        self.dss
            .iter_mut()
            .map(|ds| {
                let known = step - ds.unknown_sec;
                let v = if ds.unknown_sec * 2.0 > step || known <= 0.0 { f64::NAN } else { ds.value / known };
                ds.value = 0.0;
                ds.unknown_sec = 0.0;
                v
            })
            .collect()
    }

    /// Record values (by data source name) at time `t`. Sources the RRD has
    /// but `values` lacks are unknown for the interval; new names become new
    /// sources. Updates at or before the last one are ignored.
    pub fn update(&mut self, t: f64, values: &[(String, f64)]) {
        if !t.is_finite() || t <= self.last_updated {
            return;
        }
        for (name, _) in values {
            if !self.dss.iter().any(|d| &d.name == name) {
                self.add_ds(name);
            }
        }
        let elapsed = t - self.last_updated;
        let vals: Vec<f64> = self
            .dss
            .iter_mut()
            .map(|ds| {
                let v = values.iter().find(|(n, _)| *n == ds.name).map(|(_, v)| *v).unwrap_or(f64::NAN);
                ds.last = v;
                if elapsed > HEARTBEAT || v < ds.min || v > ds.max {
                    f64::NAN
                } else {
                    v
                }
            })
            .collect();
        let step = STEP as f64;
        let boundary = Self::pdp_start(self.last_updated) + step;
        if t < boundary {
            self.accumulate(&vals, elapsed);
            self.last_updated = t;
            return;
        }
        self.accumulate(&vals, boundary - self.last_updated);
        let first = self.close_pdp();
        let first_end = boundary as i64;
        let full = ((t - boundary) / step).floor() as i64;
        for rra in &mut self.rras {
            rra.feed(first_end, &first, 1);
            if full > 0 {
                rra.feed(first_end + STEP, &vals, full);
            }
        }
        let rest = t - (boundary + full as f64 * step);
        self.accumulate(&vals, rest);
        self.last_updated = t;
    }
}

/// Every RRD this host keeps.
#[derive(Default)]
pub struct Rrds {
    pub host: Option<Rrd>,
    /// By VM uuid.
    pub vms: BTreeMap<String, Rrd>,
    /// By SR uuid.
    pub srs: BTreeMap<String, Rrd>,
}

/// The RRDs behind a lock (the sampler writes, HTTP handlers read copies).
#[derive(Default)]
pub struct Store(Mutex<Rrds>);

impl Store {
    pub fn lock(&self) -> MutexGuard<'_, Rrds> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Seconds since the epoch, as a float.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A number as xapi prints it (`Utils.f_to_s`): `%0.15g`, zero as `0.0`,
/// and `NaN`, `Infinity`, `-Infinity`.
pub fn f_to_s(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return "0.0".into();
    }
    const P: i32 = 15;
    let sci = format!("{:.*e}", (P - 1) as usize, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let e: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..P).contains(&e) {
        let sign = if e < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), e.abs())
    } else {
        trim(&format!("{:.*}", (P - 1 - e) as usize, x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(v: f64) -> Vec<(String, f64)> {
        vec![("x".to_string(), v)]
    }

    #[test]
    fn numbers_print_like_ocaml() {
        assert_eq!(f_to_s(0.0), "0.0");
        assert_eq!(f_to_s(-0.0), "0.0");
        assert_eq!(f_to_s(f64::NAN), "NaN");
        assert_eq!(f_to_s(f64::INFINITY), "Infinity");
        assert_eq!(f_to_s(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(f_to_s(1.0), "1");
        assert_eq!(f_to_s(0.0123), "0.0123");
        assert_eq!(f_to_s(2048000.0), "2048000");
        assert_eq!(f_to_s(0.1 + 0.2), "0.3");
        assert_eq!(f_to_s(1e20), "1e+20");
        assert_eq!(f_to_s(1.5e-7), "1.5e-07");
        assert_eq!(f_to_s(123456789012345678.0), "1.23456789012346e+17");
        assert_eq!(f_to_s(1700000000.25), "1700000000.25");
    }

    #[test]
    fn gauges_average_into_pdps_and_cdps() {
        let mut r = Rrd::new(1000.0, false);
        // Every 5 s for 2 minutes, value 2 then 4 alternating per PDP.
        let mut t = 1000.0;
        for i in 0..24 {
            t += 5.0;
            r.update(t, &vals(if i % 2 == 0 { 2.0 } else { 4.0 }));
        }
        assert_eq!(r.last_updated, 1120.0);
        let fine = &r.rras[0];
        assert_eq!(fine.peek(0, 0), 4.0);
        assert_eq!(fine.peek(0, 1), 2.0);
        assert!(fine.peek(0, 24).is_nan(), "before creation is unknown");
        // The minute ending at 1080 holds 12 known PDPs: the average is 3.
        let minute = &r.rras[1];
        assert_eq!(minute.peek(0, 0), 3.0);
        // The minute ending at 1020: only 4 of 12 PDPs known, more than xff.
        assert!(minute.peek(0, 1).is_nan());
    }

    #[test]
    fn heartbeat_and_missing_sources_give_nan() {
        let mut r = Rrd::new(1000.0, false);
        r.update(1005.0, &vals(1.0));
        r.update(1010.0, &[]);
        assert!(r.rras[0].peek(0, 0).is_nan());
        r.update(2000.0, &vals(1.0));
        assert!(r.rras[0].peek(0, 0).is_nan(), "a gap beyond the heartbeat is unknown");
        r.update(2005.0, &vals(7.0));
        assert_eq!(r.rras[0].peek(0, 0), 7.0);
        // A long gap is cheap and keeps rings at full length.
        r.update(2005.0 + 86400.0 * 400.0, &vals(1.0));
        assert!(r.rras.iter().all(|a| a.data[0].len() == a.row_cnt));
    }

    #[test]
    fn min_and_max_archives_bound_the_average() {
        let mut r = Rrd::new(1000.0, true);
        assert_eq!(r.rras.len(), 4 + 3 + 3);
        let mut t = 1000.0;
        for i in 0..60 {
            t += 5.0;
            r.update(t, &vals((i % 7) as f64));
        }
        let at = |cf: Cf| r.rras.iter().find(|a| a.cf == cf && a.pdp_cnt == 12).map(|a| a.peek(0, 0)).unwrap();
        let (lo, avg, hi) = (at(Cf::Min), at(Cf::Average), at(Cf::Max));
        assert!(lo <= avg && avg <= hi, "{lo} {avg} {hi}");
        assert_eq!((lo, hi), (0.0, 6.0));
    }

    #[test]
    fn min_le_average_le_max_in_every_row() {
        // Two days of irregular updates (gaps, unknown stretches, jitter)
        // of two sources; every row of every resolution must hold
        // MIN <= AVERAGE <= MAX wherever all three are known.
        let mut r = Rrd::new(1_000_000.0, true);
        let mut t = 1_000_000.0;
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 10_000) as f64 / 100.0
        };
        for i in 0..35_000 {
            t += 4.0 + rnd() / 25.0;
            if i % 997 == 0 {
                t += 400.0; // beyond the heartbeat: unknown
            }
            let a = rnd();
            let vals = if i % 13 == 0 { vec![] } else { vec![("a".to_string(), a), ("b".to_string(), a * a)] };
            r.update(t, &vals);
        }
        let mut checked = 0;
        for avg in r.rras.iter().filter(|a| a.cf == Cf::Average && a.pdp_cnt > 1) {
            let of = |cf: Cf| r.rras.iter().find(|a| a.cf == cf && a.pdp_cnt == avg.pdp_cnt).unwrap();
            let (lo, hi) = (of(Cf::Min), of(Cf::Max));
            for ds in 0..r.dss.len() {
                for row in 0..avg.row_cnt {
                    let (l, m, h) = (lo.peek(ds, row), avg.peek(ds, row), hi.peek(ds, row));
                    if !(l.is_nan() || m.is_nan() || h.is_nan()) {
                        assert!(l <= m + 1e-9 && m <= h + 1e-9, "{} row {row}: {l} {m} {h}", avg.pdp_cnt);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 200, "only {checked} rows were known");
    }

    #[test]
    fn newest_only_answers_queries_alike() {
        let mut r = Rrd::new(1000.0, true);
        for i in 1..=30 {
            r.update(1000.0 + 5.0 * i as f64, &[("a".into(), i as f64), ("b".into(), 2.0)]);
        }
        r.update(1153.0, &[("a".into(), 99.0)]);
        let slim = r.newest_only();
        assert_eq!(slim.rras.len(), 1);
        for n in ["a", "b", "c"] {
            let (x, y) = (sources::query(&r, n), sources::query(&slim, n));
            assert!(x == y || x.zip(y).is_some_and(|(x, y)| x.is_nan() && y.is_nan()), "{n}: {x:?} {y:?}");
        }
    }

    #[test]
    fn partial_updates_interpolate_within_a_pdp() {
        let mut r = Rrd::new(1000.0, false);
        r.update(1002.5, &vals(2.0));
        r.update(1005.0, &vals(4.0));
        assert_eq!(r.rras[0].peek(0, 0), 3.0);
        r.update(1007.0, &[("y".to_string(), 1.0)]);
        r.update(1010.0, &[("y".to_string(), 1.0)]);
        assert_eq!(r.dss.len(), 2);
        assert!(r.rras[0].peek(0, 0).is_nan(), "x was not given");
        assert_eq!(r.rras[0].peek(1, 0), 1.0, "y is known from its first update on");
    }
}
