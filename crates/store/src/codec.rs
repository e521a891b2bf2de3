//! Compact binary encoding of values and rows for the log and snapshots.
//!
//! Tag byte, then: varints (LEB128, zig-zag for signed) for ints and lengths,
//! 8 bytes for floats, UTF-8 bytes for strings. Decoding is bounds-checked and
//! depth-limited: a damaged file yields an error, never a panic.

use model::datetime::Zone;
use model::{DateTime, Value};

const NIL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const DT: u8 = 6;
const ARR: u8 = 7;
const STRUCT: u8 = 8;
const I32: u8 = 9;

pub fn put_uv(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_iv(out: &mut Vec<u8>, v: i64) {
    put_uv(out, ((v << 1) ^ (v >> 63)) as u64)
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uv(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Nil => out.push(NIL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Int(i) => {
            out.push(INT);
            put_iv(out, *i)
        }
        Value::I32(i) => {
            out.push(I32);
            put_iv(out, *i as i64)
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes())
        }
        Value::String(s) => {
            out.push(STR);
            put_str(out, s)
        }
        Value::DateTime(d) => {
            out.push(DT);
            put_iv(out, d.secs);
            match d.zone {
                Zone::Utc => out.push(0),
                Zone::Unqualified => out.push(1),
                Zone::Offset(m) => {
                    out.push(2);
                    put_iv(out, m as i64)
                }
            }
        }
        Value::Array(a) => {
            out.push(ARR);
            put_uv(out, a.len() as u64);
            for x in a {
                put_value(out, x)
            }
        }
        Value::Struct(m) => {
            out.push(STRUCT);
            put_uv(out, m.len() as u64);
            for (k, x) in m {
                put_str(out, k);
                put_value(out, x)
            }
        }
        Value::Row(r) => put_value(out, &r.to_struct()),
        Value::Cached(c) => put_value(out, &c.value),
    }
}

#[derive(Debug)]
pub struct Corrupt(pub &'static str);

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "damaged data: {}", self.0)
    }
}
impl std::error::Error for Corrupt {}

pub struct Reader<'a> {
    pub b: &'a [u8],
    pub i: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }
    pub fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    pub fn u8(&mut self) -> Result<u8, Corrupt> {
        let v = *self.b.get(self.i).ok_or(Corrupt("truncated"))?;
        self.i += 1;
        Ok(v)
    }
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.i.checked_add(n).ok_or(Corrupt("length overflow"))?;
        let s = self.b.get(self.i..end).ok_or(Corrupt("truncated"))?;
        self.i = end;
        Ok(s)
    }
    pub fn uv(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt("varint too long"))
    }
    pub fn iv(&mut self) -> Result<i64, Corrupt> {
        let u = self.uv()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    /// A length prefix (not the reader's length), checked against what is left.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&mut self) -> Result<usize, Corrupt> {
        let n = self.uv()? as usize;
        if n > self.b.len() - self.i.min(self.b.len()) {
            return Err(Corrupt("length beyond data"));
        }
        Ok(n)
    }
    pub fn str(&mut self) -> Result<String, Corrupt> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| Corrupt("bad utf-8"))
    }
    pub fn value(&mut self) -> Result<Value, Corrupt> {
        self.value_at(0)
    }
    fn value_at(&mut self, depth: usize) -> Result<Value, Corrupt> {
        if depth > 64 {
            return Err(Corrupt("too deep"));
        }
        Ok(match self.u8()? {
            NIL => Value::Nil,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(self.iv()?),
            I32 => Value::I32(self.iv()? as i32),
            FLOAT => {
                let b = self.bytes(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float(f64::from_bits(u64::from_le_bytes(a)))
            }
            STR => Value::String(self.str()?),
            DT => {
                let secs = self.iv()?;
                let zone = match self.u8()? {
                    0 => Zone::Utc,
                    1 => Zone::Unqualified,
                    _ => Zone::Offset(self.iv()? as i32),
                };
                Value::DateTime(DateTime { secs, zone })
            }
            ARR => {
                let n = self.len()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.value_at(depth + 1)?);
                }
                Value::Array(v)
            }
            STRUCT => {
                let n = self.len()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.str()?;
                    v.push((k, self.value_at(depth + 1)?));
                }
                Value::Struct(v)
            }
            _ => return Err(Corrupt("bad tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip() {
        let v = Value::Struct(vec![
            ("a".into(), Value::Array(vec![Value::Int(-5), Value::Int(i64::MAX), Value::Float(1.5)])),
            ("b".into(), Value::DateTime(DateTime::parse("20250101T01:02:03+02:00").unwrap())),
            ("c".into(), Value::Nil),
            ("d".into(), Value::Bool(true)),
            ("e".into(), Value::I32(-7)),
        ]);
        let mut out = Vec::new();
        put_value(&mut out, &v);
        assert_eq!(Reader::new(&out).value().unwrap(), v);
        for cut in 0..out.len() {
            let _ = Reader::new(&out[..cut]).value();
        }
        assert!(Reader::new(&[ARR, 0xff, 0xff, 0xff, 0x0f]).value().is_err());
    }
}
