//! What the HTTP handlers send: `rrd_updates` in rrdtool's "xport" layout
//! (`Rrd_updates.xml_of` / `json_of_t`) and whole RRDs in rrdtool's dump
//! layout (`Rrd.xml_to_output` / `Rrd.Json.rrd`). In JSON every number is a
//! string, as xapi writes it.

use super::{f_to_s, Rrd, STEP};
use std::fmt::Write;

/// The consolidation functions (LAST archives are never made, as in xapi).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cf {
    Average,
    Min,
    Max,
    Last,
}

impl Cf {
    pub fn as_str(self) -> &'static str {
        match self {
            Cf::Average => "AVERAGE",
            Cf::Min => "MIN",
            Cf::Max => "MAX",
            Cf::Last => "LAST",
        }
    }

    /// xapi's `cf_type_of_string`: exact, upper-case names.
    pub fn parse(s: &str) -> Option<Cf> {
        match s {
            "AVERAGE" => Some(Cf::Average),
            "MIN" => Some(Cf::Min),
            "MAX" => Some(Cf::Max),
            "LAST" => Some(Cf::Last),
            _ => None,
        }
    }
}

/// Statistics since a start time, for several RRDs side by side.
#[derive(Debug, Default)]
pub struct Updates {
    pub start: i64,
    pub step: i64,
    pub end: i64,
    pub legend: Vec<String>,
    /// (end time of the consolidated point, values), newest first.
    pub rows: Vec<(i64, Vec<f64>)>,
}

fn floor_to(t: f64, step: i64) -> i64 {
    (t / step as f64).floor() as i64 * step
}

/// xapi's `Rrd.find_best_rras`: the finest archive of the wanted CF with at
/// least `pdp_interval` PDPs per row that still reaches back to `start`;
/// failing that, the archive reaching furthest back. Indices into `rrd.rras`.
fn find_best_rras(rrd: &Rrd, pdp_interval: i64, cf: Option<Cf>, start: i64) -> Vec<usize> {
    let all: Vec<usize> = (0..rrd.rras.len()).filter(|&i| cf.is_none_or(|c| rrd.rras[i].cf == c)).collect();
    let Some(&coarsest) = all.last() else { return vec![] };
    let last_pdp = floor_to(rrd.last_updated, STEP);
    let covers = |t: i64, i: usize| {
        let a = &rrd.rras[i];
        a.pdp_cnt >= pdp_interval && t > last_pdp - STEP * a.row_cnt as i64 * a.pdp_cnt
    };
    match all.iter().copied().find(|&i| covers(start, i)) {
        Some(first) => {
            let (p, r) = (rrd.rras[first].pdp_cnt, rrd.rras[first].row_cnt);
            all.into_iter().filter(|&i| rrd.rras[i].pdp_cnt == p && rrd.rras[i].row_cnt == r).collect()
        }
        None => {
            let coarsest = &rrd.rras[coarsest];
            let from = 1 + last_pdp - STEP * coarsest.row_cnt as i64 * coarsest.pdp_cnt;
            all.into_iter().filter(|&i| covers(from, i)).collect()
        }
    }
}

/// xapi's `Rrd_updates.create_multi`. Each RRD comes with its legend prefix
/// (`vm:<uuid>:`, `host:<uuid>:`); they are expected to share one timeline
/// (the sampler updates them together), and the first one's last update
/// stands for all. A negative `start` counts back from the last update.
pub fn updates(rrds: &[(String, &Rrd)], start: i64, interval: i64, cf: Option<Cf>) -> Updates {
    let last_updated = rrds.first().map(|(_, r)| r.last_updated).unwrap_or_else(super::now);
    let start = if start < 0 {
        rrds.iter().map(|(_, r)| start.saturating_add(r.last_updated as i64)).min().unwrap_or(start)
    } else {
        start
    };
    let pdp_interval = interval / STEP;
    let chosen: Vec<Vec<usize>> = rrds.iter().map(|(_, r)| find_best_rras(r, pdp_interval, cf, start)).collect();
    let first = rrds.iter().zip(&chosen).find_map(|((_, r), c)| c.first().map(|&i| &r.rras[i]));
    let Some(first) = first else {
        // No archive of that CF: nothing to show.
        let end = floor_to(last_updated, STEP);
        return Updates { start: floor_to(start as f64, STEP) + STEP, step: STEP, end, legend: vec![], rows: vec![] };
    };
    let (pdp_cnt, row_cnt) = (first.pdp_cnt, first.row_cnt);
    let step = STEP * pdp_cnt;
    // Keep only archives shaped like the first, as xapi does.
    let chosen: Vec<Vec<usize>> = rrds
        .iter()
        .zip(chosen)
        .map(|((_, r), c)| {
            c.into_iter().filter(|&i| r.rras[i].pdp_cnt == pdp_cnt && r.rras[i].row_cnt == row_cnt).collect()
        })
        .collect();
    let mut legend = vec![];
    for ((prefix, r), c) in rrds.iter().zip(&chosen) {
        for &a in c {
            for ds in &r.dss {
                legend.push(format!("{}:{prefix}{}", r.rras[a].cf.as_str(), ds.name));
            }
        }
    }
    let end = floor_to(last_updated, step);
    let mut rows = vec![];
    for i in 0..row_cnt {
        let t = end - i as i64 * step;
        if t < start {
            break;
        }
        let mut vals = Vec::with_capacity(legend.len());
        for ((_, r), c) in rrds.iter().zip(&chosen) {
            for &a in c {
                let rra = &r.rras[a];
                vals.extend((0..r.dss.len()).map(|d| rra.peek(d, i)));
            }
        }
        rows.push((t, vals));
    }
    Updates { start: floor_to(start as f64, step) + step, step, end, legend, rows }
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

impl Updates {
    pub fn to_xml(&self) -> String {
        let mut o = String::from(XML_DECL);
        let _ = write!(
            o,
            "<xport><meta><start>{}</start><step>{}</step><end>{}</end><rows>{}</rows><columns>{}</columns><legend>",
            self.start,
            self.step,
            self.end,
            self.rows.len(),
            self.legend.len()
        );
        for l in &self.legend {
            let _ = write!(o, "<entry>{}</entry>", escape(l));
        }
        o.push_str("</legend></meta><data>");
        for (t, vals) in &self.rows {
            let _ = write!(o, "<row><t>{t}</t>");
            for v in vals {
                let _ = write!(o, "<v>{}</v>", f_to_s(*v));
            }
            o.push_str("</row>");
        }
        o.push_str("</data></xport>");
        o
    }

    pub fn to_json(&self) -> String {
        let legend: Vec<String> = self.legend.iter().map(|l| js(l)).collect();
        let mut o = format!(
            "{{\"meta\":{{\"start\":\"{}\",\"step\":\"{}\",\"end\":\"{}\",\"rows\":\"{}\",\"columns\":\"{}\",\"legend\":[{}]}},\"data\":[",
            self.start,
            self.step,
            self.end,
            self.rows.len(),
            self.legend.len(),
            legend.join(",")
        );
        for (i, (t, vals)) in self.rows.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let vs: Vec<String> = vals.iter().map(|v| format!("\"{}\"", f_to_s(*v))).collect();
            let _ = write!(o, "{{\"t\":\"{t}\",\"values\":[{}]}}", vs.join(","));
        }
        o.push_str("]}");
        o
    }
}

/// A whole RRD in rrdtool's dump layout (`Rrd.xml_to_output`); database
/// rows run oldest first.
pub fn dump_xml(rrd: &Rrd) -> String {
    let mut o = String::from(XML_DECL);
    let _ = write!(
        o,
        "<rrd><version>0003</version><step>{STEP}</step><lastupdate>{}</lastupdate>",
        rrd.last_updated as i64
    );
    for ds in &rrd.dss {
        let _ = write!(
            o,
            "<ds><name>{}</name><type>GAUGE</type><minimal_heartbeat>{}</minimal_heartbeat><min>{}</min><max>{}</max><last_ds>{}</last_ds><value>{}</value><unknown_sec>{}</unknown_sec></ds>",
            escape(&ds.name),
            f_to_s(super::HEARTBEAT),
            f_to_s(ds.min),
            f_to_s(ds.max),
            f_to_s(ds.last),
            f_to_s(ds.value),
            ds.unknown_sec as i64
        );
    }
    for rra in &rrd.rras {
        let _ = write!(
            o,
            "<rra><cf>{}</cf><pdp_per_row>{}</pdp_per_row><params><xff>{}</xff></params><cdp_prep>",
            rra.cf.as_str(),
            rra.pdp_cnt,
            f_to_s(rra.xff)
        );
        for cdp in &rra.cdps {
            let _ = write!(
                o,
                "<ds><primary_value>0.0</primary_value><secondary_value>0.0</secondary_value><value>{}</value><unknown_datapoints>{}</unknown_datapoints></ds>",
                f_to_s(cdp.sum),
                rra.cdp_unknown(cdp, rrd.last_updated)
            );
        }
        o.push_str("</cdp_prep><database>");
        if !rra.data.is_empty() {
            for row in (0..rra.row_cnt).rev() {
                o.push_str("<row>");
                for d in 0..rra.data.len() {
                    let _ = write!(o, "<v>{}</v>", f_to_s(rra.peek(d, row)));
                }
                o.push_str("</row>");
            }
        }
        o.push_str("</database></rra>");
    }
    o.push_str("</rrd>");
    o
}

/// A whole RRD as xapi's JSON (`Rrd.Json.rrd`).
pub fn dump_json(rrd: &Rrd) -> String {
    let q = |v: f64| format!("\"{}\"", f_to_s(v));
    let dss: Vec<String> = rrd
        .dss
        .iter()
        .map(|ds| {
            format!(
                "{{\"name\":{},\"type\":\"GAUGE\",\"minimal_heartbeat\":{},\"min\":{},\"max\":{},\"last_ds\":{},\"value\":{},\"unknown_sec\":{}}}",
                js(&ds.name),
                q(super::HEARTBEAT),
                q(ds.min),
                q(ds.max),
                q(ds.last),
                q(ds.value),
                q(ds.unknown_sec)
            )
        })
        .collect();
    let rras: Vec<String> = rrd
        .rras
        .iter()
        .map(|rra| {
            let cdps: Vec<String> = rra
                .cdps
                .iter()
                .map(|c| {
                    format!(
                        "{{\"primary_value\":\"0.0\",\"secondary_value\":\"0.0\",\"value\":{},\"unknown_datapoints\":\"{}\"}}",
                        q(c.sum),
                        rra.cdp_unknown(c, rrd.last_updated)
                    )
                })
                .collect();
            let rows: Vec<String> = if rra.data.is_empty() {
                vec![]
            } else {
                (0..rra.row_cnt)
                    .rev()
                    .map(|row| {
                        let vs: Vec<String> = (0..rra.data.len()).map(|d| q(rra.peek(d, row))).collect();
                        format!("[{}]", vs.join(","))
                    })
                    .collect()
            };
            format!(
                "{{\"cf\":\"{}\",\"pdp_per_row\":\"{}\",\"params\":{{\"xff\":{}}},\"cdp_prep\":{{\"ds\":[{}]}},\"database\":[{}]}}",
                rra.cf.as_str(),
                rra.pdp_cnt,
                q(rra.xff),
                cdps.join(","),
                rows.join(",")
            )
        })
        .collect();
    format!(
        "{{\"version\":\"0003\",\"step\":\"{STEP}\",\"lastupdate\":{},\"ds\":[{}],\"rra\":[{}]}}",
        q(rrd.last_updated),
        dss.join(","),
        rras.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Rrd {
        let mut r = Rrd::new(1_700_000_000.0, false);
        for i in 1..=30 {
            let t = 1_700_000_000.0 + 5.0 * i as f64;
            r.update(t, &[("cpu0".to_string(), 0.5), ("memory".to_string(), 1024.0)]);
        }
        r
    }

    #[test]
    fn xport_rows_newest_first_and_after_start() {
        let r = sample();
        let u = updates(&[("vm:abc:".into(), &r), ("host:h:".into(), &r)], 1_700_000_100, 0, None);
        assert_eq!(u.step, 5);
        assert_eq!(u.end, 1_700_000_150);
        assert_eq!(
            u.legend,
            ["AVERAGE:vm:abc:cpu0", "AVERAGE:vm:abc:memory", "AVERAGE:host:h:cpu0", "AVERAGE:host:h:memory"]
        );
        assert_eq!(u.rows.len(), 11);
        assert!(u.rows.windows(2).all(|w| w[0].0 > w[1].0));
        assert!(u.rows.iter().all(|(t, v)| *t >= 1_700_000_100 && v.len() == 4));
        assert_eq!(u.rows[0].1, vec![0.5, 1024.0, 0.5, 1024.0]);
        let x = u.to_xml();
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xport><meta><start>1700000105</start><step>5</step><end>1700000150</end><rows>11</rows><columns>4</columns><legend><entry>AVERAGE:vm:abc:cpu0</entry>"), "{x}");
        assert!(x.contains("<data><row><t>1700000150</t><v>0.5</v><v>1024</v>"));
        let j: serde_json::Value = serde_json::from_str(&u.to_json()).expect("json");
        assert_eq!(j["meta"]["columns"], "4");
        assert_eq!(j["meta"]["legend"][3], "AVERAGE:host:h:memory");
        assert_eq!(j["data"][0]["t"], "1700000150");
        assert_eq!(j["data"][0]["values"][1], "1024");
    }

    #[test]
    fn interval_and_cf_pick_archives() {
        let r = sample();
        let u = updates(&[("vm:a:".into(), &r)], -60, 60, None);
        assert_eq!(u.step, 60);
        let u = updates(&[("vm:a:".into(), &r)], 1_600_000_000, 0, Some(Cf::Average));
        assert_eq!(u.step, 86400, "nothing reaches back that far: the coarsest");
        let u = updates(&[("vm:a:".into(), &r)], 0, 0, Some(Cf::Max));
        assert!(u.legend.is_empty() && u.rows.is_empty());
        let u = updates(&[("vm:a:".into(), &r)], -20, 0, None);
        assert!(u.rows.iter().all(|(t, _)| *t >= 1_700_000_130));
        assert_eq!(u.rows.len(), 5);
    }

    #[test]
    fn dumps() {
        let r = sample();
        let x = dump_xml(&r);
        assert!(x.contains("<rrd><version>0003</version><step>5</step><lastupdate>1700000150</lastupdate><ds><name>cpu0</name><type>GAUGE</type><minimal_heartbeat>300</minimal_heartbeat>"), "{x}");
        assert_eq!(x.matches("<rra>").count(), 4);
        assert_eq!(x.matches("<row>").count(), 120 + 120 + 168 + 366);
        let j: serde_json::Value = serde_json::from_str(&dump_json(&r)).expect("json");
        assert_eq!(j["step"], "5");
        assert_eq!(j["ds"][1]["name"], "memory");
        assert_eq!(j["rra"][0]["database"].as_array().map(|a| a.len()), Some(120));
        assert_eq!(j["rra"][0]["database"][119][1], "1024");
    }
}
