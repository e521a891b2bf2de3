//! Replies encoded a slice at a time.
//!
//! `get_all_records` on a big pool answers with tens of MiB. Encoding it whole
//! before the first byte leaves means the client waits for the encoder and the
//! network in turn, and the server holds the whole text. A [`Streamed`] reply
//! instead yields the envelope, then the top-level collection a few hundred KiB
//! at a time, then the envelope's end; the bytes are exactly those of
//! `write_response`.

use crate::{jsonrpc, xmlrpc, Outcome};
use model::Value;

/// Which protocol (and, for JSON-RPC, which dialect and id) a reply is in.
#[derive(Debug, Clone)]
pub enum Dialect {
    Xml,
    Json(jsonrpc::Version, serde_json::Value),
}

/// Entries of the reply's top-level collection, if it has one worth slicing.
pub fn entries(o: &Outcome) -> usize {
    match o {
        Outcome::Success(Value::Struct(m)) => m.len(),
        Outcome::Success(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// A reply being encoded piece by piece.
pub struct Streamed {
    outcome: Outcome,
    dialect: Dialect,
    /// 0: nothing written; 1 + i: entries before i written; past the end: done.
    next: usize,
}

impl Streamed {
    pub fn new(outcome: Outcome, dialect: Dialect) -> Self {
        Streamed { outcome, dialect, next: 0 }
    }

    /// Append the next piece of at least `budget` bytes (less only at the
    /// end) to `out`; false once everything has been written.
    pub fn next_piece(&mut self, out: &mut Vec<u8>, budget: usize) -> bool {
        let n = entries(&self.outcome);
        if self.next > n + 1 {
            return false;
        }
        let start = out.len();
        if self.next == 0 {
            self.open(out);
            self.next = 1;
        }
        while self.next <= n && out.len() - start < budget {
            self.entry(out, self.next - 1);
            self.next += 1;
        }
        if self.next == n + 1 && out.len() - start < budget {
            self.close(out);
            self.next = n + 2;
        }
        true
    }

    fn open(&self, out: &mut Vec<u8>) {
        let Some(is_struct) = self.collection() else {
            return self.whole(out);
        };
        match &self.dialect {
            Dialect::Xml => xmlrpc::write_success_open(out, is_struct),
            Dialect::Json(version, _) => jsonrpc::write_success_open(out, *version, is_struct),
        }
    }

    fn entry(&self, out: &mut Vec<u8>, i: usize) {
        let (key, v) = match &self.outcome {
            Outcome::Success(Value::Struct(m)) => match m.get(i) {
                Some((k, v)) => (Some(k.as_str()), v),
                None => return,
            },
            Outcome::Success(Value::Array(a)) => match a.get(i) {
                Some(v) => (None, v),
                None => return,
            },
            _ => return,
        };
        match &self.dialect {
            Dialect::Xml => xmlrpc::write_entry(out, key, v),
            Dialect::Json(..) => jsonrpc::write_entry(out, i, key, v),
        }
    }

    /// Some(true) for a top-level struct, Some(false) for an array.
    fn collection(&self) -> Option<bool> {
        match &self.outcome {
            Outcome::Success(Value::Struct(_)) => Some(true),
            Outcome::Success(Value::Array(_)) => Some(false),
            _ => None,
        }
    }

    fn close(&self, out: &mut Vec<u8>) {
        let Some(is_struct) = self.collection() else {
            return;
        };
        match &self.dialect {
            Dialect::Xml => xmlrpc::write_success_close(out, is_struct),
            Dialect::Json(version, id) => jsonrpc::write_success_close(out, *version, id, is_struct),
        }
    }

    /// Replies without a collection go out in one piece.
    fn whole(&self, out: &mut Vec<u8>) {
        match &self.dialect {
            Dialect::Xml => xmlrpc::write_response(out, &self.outcome),
            Dialect::Json(version, id) => jsonrpc::write_response(out, *version, id, &self.outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Value {
        Value::Struct(vec![
            ("uuid".into(), Value::String(format!("u-{i}"))),
            ("name_label".into(), Value::String("a <b> & \"c\"".into())),
            ("VCPUs_max".into(), Value::Int(i as i64)),
            ("tags".into(), Value::Array(vec![Value::String("x".into())])),
        ])
    }

    fn pieces(o: &Outcome, d: Dialect, budget: usize) -> (Vec<u8>, usize) {
        let mut s = Streamed::new(o.clone(), d);
        let (mut all, mut count) = (Vec::new(), 0);
        let mut piece = Vec::new();
        while s.next_piece(&mut piece, budget) {
            all.extend_from_slice(&piece);
            piece.clear();
            count += 1;
        }
        (all, count)
    }

    #[test]
    fn kept_row_encodings_are_the_same_bytes_and_not_cloned() {
        let c = model::schema::class("VM").expect("VM");
        let mut fields: Vec<Value> = c.fields.iter().map(|f| f.default_value()).collect();
        let nl = c.field_index("name_label").expect("name_label");
        fields[nl] = Value::String("<a & \"b\">".into());
        let row = std::sync::Arc::new(model::value::Row::new(c, fields));
        let v = Value::Row(row.clone());
        let (mut x0, mut j0) = (Vec::new(), Vec::new());
        xmlrpc::write_value(&mut x0, &v);
        jsonrpc::write_value(&mut j0, &v);
        assert!(row.encodings.xml.get().is_none(), "plain encoding keeps nothing");
        xmlrpc::keep_row_encoding(&row);
        jsonrpc::keep_row_encoding(&row);
        let (mut x1, mut j1) = (Vec::new(), Vec::new());
        xmlrpc::write_value(&mut x1, &v);
        jsonrpc::write_value(&mut j1, &v);
        assert_eq!(x0, x1);
        assert_eq!(j0, j1);
        let mut changed = (*row).clone();
        assert!(changed.encodings.xml.get().is_none() && changed.encodings.json.get().is_none());
        changed.fields[nl] = Value::String("new".into());
        let mut x2 = Vec::new();
        xmlrpc::write_value(&mut x2, &Value::Row(std::sync::Arc::new(changed)));
        assert!(String::from_utf8(x2).unwrap().contains("<name>name_label</name><value>new</value>"));
    }

    #[test]
    fn same_bytes_as_whole_replies() {
        let outcomes = [
            Outcome::Success(Value::Struct((0..50).map(|i| (format!("OpaqueRef:{i}"), record(i))).collect())),
            Outcome::Success(Value::Array((0..50).map(|i| Value::String(format!("OpaqueRef:{i}"))).collect())),
            Outcome::Success(Value::Struct(vec![])),
            Outcome::Success(Value::Array(vec![])),
            Outcome::Success(Value::String("x".into())),
            Outcome::Failure(vec!["HANDLE_INVALID".into(), "VM".into(), "OpaqueRef:x".into()]),
        ];
        let id = serde_json::json!("7");
        for o in &outcomes {
            for budget in [1, 100, 1 << 20] {
                let mut whole = Vec::new();
                xmlrpc::write_response(&mut whole, o);
                let (got, count) = pieces(o, Dialect::Xml, budget);
                assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(whole).unwrap());
                if budget == 1 {
                    assert!(count >= entries(o), "one entry per piece at least");
                }
                for v in [jsonrpc::Version::V1, jsonrpc::Version::V2] {
                    let mut whole = Vec::new();
                    jsonrpc::write_response(&mut whole, v, &id, o);
                    let (got, _) = pieces(o, Dialect::Json(v, id.clone()), budget);
                    assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(whole).unwrap());
                }
            }
        }
    }
}
