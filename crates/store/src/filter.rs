//! The `get_all_records_where` expression language.
//!
//! ```text
//! expr  := "not" expr | unary (("and" | "or") unary)*
//! unary := "(" expr ")" | "true" | "false" | value "=" value
//! ```
//! `and` and `or` share one precedence and associate to the left; `not` binds
//! more loosely than both, so `not a and b` is `not (a and b)`, as in xapi's
//! grammar.
//! ```text
//! value := "field" STRING | STRING            -- STRING is "…", no escapes
//! ```
//! Fields are database columns (`name__label`, `_ref`); `=` compares the stored
//! value's database text form.

use model::{Row, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    True,
    False,
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Operand, Operand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(String),
    Lit(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Eq,
    And,
    Or,
    Not,
    True,
    False,
    Field,
    Str(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '=' => {
                out.push(Tok::Eq);
                i += 1
            }
            '"' => {
                let start = i + 1;
                let end = cs[start..].iter().position(|&c| c == '"').ok_or("unterminated string")? + start;
                out.push(Tok::Str(cs[start..end].iter().collect()));
                i = end + 1;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                    i += 1;
                }
                let w: String = cs[start..i].iter().collect();
                out.push(match w.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "true" => Tok::True,
                    "false" => Tok::False,
                    "field" => Tok::Field,
                    _ => return Err(format!("unexpected word {w}")),
                });
            }
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    i: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }
    fn expr(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > 100 {
            return Err("expression nested too deeply".into());
        }
        if self.peek() == Some(&Tok::Not) {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.expr(depth + 1)?)));
        }
        let mut lhs = self.unary(depth)?;
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.i += 1;
                    lhs = Expr::And(Box::new(lhs), Box::new(self.operand_or_not(depth)?));
                }
                Some(Tok::Or) => {
                    self.i += 1;
                    lhs = Expr::Or(Box::new(lhs), Box::new(self.operand_or_not(depth)?));
                }
                _ => return Ok(lhs),
            }
        }
    }
    /// After `and`/`or`: a `not` there swallows the rest of the expression.
    fn operand_or_not(&mut self, depth: usize) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Not) {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.expr(depth + 1)?)));
        }
        self.unary(depth)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > 100 {
            return Err("expression nested too deeply".into());
        }
        match self.peek() {
            Some(Tok::LParen) => {
                self.i += 1;
                let e = self.expr(depth + 1)?;
                match self.next() {
                    Some(Tok::RParen) => Ok(e),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::True) => {
                self.i += 1;
                Ok(Expr::True)
            }
            Some(Tok::False) => {
                self.i += 1;
                Ok(Expr::False)
            }
            _ => {
                let a = self.operand()?;
                match self.next() {
                    Some(Tok::Eq) => {}
                    _ => return Err("expected =".into()),
                }
                let b = self.operand()?;
                Ok(Expr::Eq(a, b))
            }
        }
    }
    fn operand(&mut self) -> Result<Operand, String> {
        match self.next() {
            Some(Tok::Field) => match self.next() {
                Some(Tok::Str(s)) => Ok(Operand::Field(s)),
                _ => Err("field needs a quoted name".into()),
            },
            Some(Tok::Str(s)) => Ok(Operand::Lit(s)),
            t => Err(format!("unexpected {t:?}")),
        }
    }
}

pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = P { toks: lex(s)?, i: 0 };
    let e = p.expr(0)?;
    if p.i != p.toks.len() {
        return Err("trailing tokens".into());
    }
    Ok(e)
}

/// The text form the database compares: bools `true`/`false`, ints decimal,
/// datetimes compact, sets and maps as S-expressions (`('a' 'b')`, `(('k' 'v'))`).
pub fn db_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::I32(i) => i.to_string(),
        Value::Float(f) => format!("{f}"),
        Value::Bool(b) => b.to_string(),
        Value::DateTime(d) => d.to_string(),
        Value::Nil => String::new(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(|x| sexp_atom(&db_text(x))).collect();
            format!("({})", items.join(" "))
        }
        Value::Struct(m) => {
            let items: Vec<String> =
                m.iter().map(|(k, x)| format!("({} {})", sexp_atom(k), sexp_atom(&db_text(x)))).collect();
            format!("({})", items.join(" "))
        }
        Value::Row(r) => db_text(&r.to_struct()),
        Value::Cached(c) => db_text(&c.value),
    }
}

fn sexp_atom(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn operand(o: &Operand, r: &str, row: &Row) -> String {
    match o {
        Operand::Lit(s) => s.clone(),
        Operand::Field(f) if f == "_ref" => r.to_string(),
        Operand::Field(f) => match row.class.field_by_column(f) {
            Some(i) => db_text(&row.fields[i]),
            None => String::new(),
        },
    }
}

pub fn eval(e: &Expr, r: &str, row: &Row) -> bool {
    match e {
        Expr::True => true,
        Expr::False => false,
        Expr::Not(x) => !eval(x, r, row),
        Expr::And(a, b) => eval(a, r, row) && eval(b, r, row),
        Expr::Or(a, b) => eval(a, r, row) || eval(b, r, row),
        Expr::Eq(a, b) => operand(a, r, row) == operand(b, r, row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn grammar() {
        assert_eq!(parse("true").unwrap(), Expr::True);
        let e = parse(r#"field "is_a_template"="false" and field "is_control_domain"="false""#).unwrap();
        assert!(matches!(e, Expr::And(_, _)));
        let e = parse(r#"not field "a"="b" or (true)"#).unwrap();
        assert!(matches!(e, Expr::Not(_)), "not binds loosest: {e:?}");
        let e = parse(r#"field "a"="b" and not field "c"="d" or true"#).unwrap();
        assert!(matches!(e, Expr::And(_, ref r) if matches!(**r, Expr::Not(_))), "{e:?}");
        assert!(parse("field").is_err());
        assert!(parse(r#"field "a"="#).is_err());
        assert!(parse(r#""a"="b" junk"#).is_err());
        assert!(parse(&"(".repeat(500)).is_err());
    }
    #[test]
    fn sexp() {
        assert_eq!(db_text(&Value::Array(vec![Value::from("a"), Value::from("b'c")])), r"('a' 'b\'c')");
        assert_eq!(db_text(&Value::Struct(vec![("k".into(), Value::from("v"))])), "(('k' 'v'))");
        assert_eq!(db_text(&Value::Array(vec![])), "()");
    }
}
