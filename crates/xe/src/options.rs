//! Options as the reference client reads them: defaults < `~/.xe` <
//! `XE_EXTRA_ARGS` < the command line. Each source sets the keys it knows
//! (`server`, `port`, `username`, `password`, `passwordfile`, `nossl`,
//! `debug`); everything else is passed to the server.

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Options {
    pub server: String,
    pub port: Option<u16>,
    pub username: String,
    pub password: String,
    pub passwordfile: String,
    pub ssl: bool,
    pub debug: bool,
    pub debug_on_fail: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server: "127.0.0.1".into(),
            port: None,
            username: "root".into(),
            password: "null".into(),
            passwordfile: String::new(),
            ssl: true,
            debug: false,
            debug_on_fail: false,
        }
    }
}

#[derive(Debug)]
pub enum OptError {
    BadPort,
}

fn ocaml_bool(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl Options {
    /// Set a known key; false when the key is not the client's.
    fn set(&mut self, k: &str, v: &str) -> Result<bool, OptError> {
        match k {
            "server" => self.server = v.to_string(),
            "port" => self.port = Some(v.trim().parse::<u16>().map_err(|_| OptError::BadPort)?),
            "username" => self.username = v.to_string(),
            "password" => self.password = v.to_string(),
            "passwordfile" => self.passwordfile = v.to_string(),
            // bool_of_string: anything else is an error in the reference
            // client; treat it as "leave unchanged".
            "nossl" => {
                if let Some(b) = ocaml_bool(v) {
                    self.ssl = !b
                }
            }
            "debug" => self.debug = ocaml_bool(v).unwrap_or(false),
            "debugonfail" => self.debug_on_fail = ocaml_bool(v).unwrap_or(false),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Consume client options from a list, returning what is left for the server.
    fn process(&mut self, args: &[String]) -> Result<Vec<String>, OptError> {
        let mut rest = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            let two = |k: &'static str| args.get(i + 1).map(|v| (k, v.clone()));
            let opt = match a {
                "-s" | "-h" => two("server"),
                "-p" => two("port"),
                "-u" => two("username"),
                "-pw" => two("password"),
                "-pwf" => two("passwordfile"),
                _ => None,
            };
            if let Some((k, v)) = opt {
                self.set(k, &v)?;
                i += 2;
                continue;
            }
            match a {
                "--nossl" => {
                    self.set("nossl", "true")?;
                }
                "--debug" => {
                    self.set("debug", "true")?;
                }
                "--debug-on-fail" => {
                    self.set("debugonfail", "true")?;
                }
                _ => {
                    let known = match a.split_once('=') {
                        Some((k, v)) => self.set(k, v)?,
                        None => false,
                    };
                    if !known {
                        rest.push(a.to_string());
                    }
                }
            }
            i += 1;
        }
        Ok(rest)
    }
}

/// Split `XE_EXTRA_ARGS` at commas not preceded by a backslash, then drop
/// the backslashes (as the reference client does).
pub fn split_extra(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..=b.len() {
        let end = i == b.len() || (b[i] == b',' && (i == 0 || b[i - 1] != b'\\'));
        if end {
            if i > start {
                out.push(s[start..i].replace('\\', ""));
            }
            start = i + 1;
        }
    }
    out
}

/// `key=value` lines of `~/.xe`.
pub fn read_rc(path: Option<PathBuf>) -> Vec<(String, String)> {
    let Some(p) = path else { return Vec::new() };
    let Ok(text) = std::fs::read_to_string(p) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            l.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

pub fn rc_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".xe"))
}

/// Everything resolved: the options and the arguments for the server
/// (command line first, then the extras, then unknown `~/.xe` keys).
pub fn resolve(
    argv: &[String],
    extra: Option<&str>,
    rc: &[(String, String)],
) -> Result<(Options, Vec<String>, bool), OptError> {
    let mut o = Options::default();
    let mut rc_rest = Vec::new();
    for (k, v) in rc {
        if !o.set(k, v)? {
            rc_rest.push(format!("{k}={v}"));
        }
    }
    let extras = o.process(&split_extra(extra.unwrap_or("")))?;
    let help = argv.iter().any(|a| a == "-help" || a == "--help");
    let argv: Vec<String> = argv.iter().filter(|a| *a != "-help" && *a != "--help").cloned().collect();
    let mut args = o.process(&argv)?;
    args.extend(extras);
    args.extend(rc_rest);
    Ok((o, args, help))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn precedence_is_argv_then_env_then_rc() {
        let rc = vec![("server".into(), "rc-host".into()), ("port".into(), "1".into()), ("colour".into(), "x".into())];
        let (o, args, _) =
            resolve(&v(&["vm-list", "-p", "3", "--minimal"]), Some("server=env-host,port=2,params=a\\,b"), &rc)
                .unwrap();
        assert_eq!(o.server, "env-host");
        assert_eq!(o.port, Some(3));
        assert_eq!(args, v(&["vm-list", "--minimal", "params=a,b", "colour=x"]));
        let (o, _, _) = resolve(&v(&["vm-list", "server=cli", "--nossl", "-pw", "pw"]), None, &rc).unwrap();
        assert_eq!((o.server.as_str(), o.ssl, o.password.as_str()), ("cli", false, "pw"));
    }

    #[test]
    fn extra_args_escape_commas() {
        assert_eq!(split_extra("a=1,b=x\\,y,,c"), v(&["a=1", "b=x,y", "c"]));
        assert!(split_extra("").is_empty());
    }

    #[test]
    fn bad_port() {
        assert!(matches!(resolve(&v(&["x", "-p", "99999"]), None, &[]), Err(OptError::BadPort)));
    }
}
