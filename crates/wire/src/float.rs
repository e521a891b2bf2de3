//! Float formatting as OCaml's `%.16g` (xapi's XML-RPC doubles) and `%0.15g`.

/// `%.<prec>g` with OCaml's spellings of the special values (`inf`, `-inf`, `nan`).
pub fn fmt_g(f: f64, prec: usize) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Whole numbers (1.0 shadow multipliers, sizes) print as integers, which
    // %g does for them up to its precision; skips exact decimal conversion.
    if f.fract() == 0.0 && f.abs() < 1e15 && prec >= 15 {
        return (f as i64).to_string();
    }
    let prec = prec.max(1);
    // Round to `prec` significant digits via scientific formatting.
    let sci = format!("{:.*e}", prec - 1, f);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, f)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// xapi's XML-RPC double.
pub fn g16(f: f64) -> String {
    fmt_g(f, 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn like_printf() {
        assert_eq!(g16(1.0), "1");
        assert_eq!(g16(0.5), "0.5");
        assert_eq!(g16(60.1), "60.1");
        assert_eq!(g16(1e20), "1e+20");
        assert_eq!(g16(1.5e-7), "1.5e-07");
        assert_eq!(g16(123456789.125), "123456789.125");
        assert_eq!(g16(0.1), "0.1");
        assert_eq!(g16(f64::INFINITY), "inf");
        assert_eq!(g16(f64::NAN), "nan");
        assert_eq!(g16(-2.0), "-2");
        assert_eq!(fmt_g(0.0123, 15), "0.0123");
    }
}
