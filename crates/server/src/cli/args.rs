//! The request body of an invocation: argv lines (an optional leading
//! `session_id=` line), parsed as xapi's `parse_params_2` does: `--flag`
//! is `flag=true`, `-x value` goes through the switch table, everything
//! else is `key=value` split at the first `=` (no `=` means an empty value).

use super::CliError;

#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    pub fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(a, _)| a == k)
    }
    pub fn reqd(&self, k: &str) -> Result<&str, CliError> {
        self.get(k).ok_or_else(|| CliError::ParamNotFound(k.to_string()))
    }
    /// A switch (`--force`): absent or not a true spelling is false.
    pub fn flag(&self, k: &str) -> bool {
        self.get(k).is_some_and(|v| bool_of_string(v) == Some(true) || v.eq_ignore_ascii_case("on"))
    }
    /// xapi's `get_bool_param`: `default` when absent, else one of
    /// true/t/yes/y/1 or false/f/no/n/0 (any case), else its failure.
    pub fn bool(&self, k: &str, default: bool) -> Result<bool, CliError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => bool_of_string(v).ok_or_else(|| {
                CliError::Failure(format!("Expected 'true','t','yes','y','1','false','f','no','n','0' got {v}"))
            }),
        }
    }
    /// `name:key=value` arguments for one map name.
    pub fn map(&self, name: &str) -> Vec<(String, String)> {
        let pre = format!("{name}:");
        self.0.iter().filter_map(|(k, v)| k.strip_prefix(&pre).map(|key| (key.to_string(), v.clone()))).collect()
    }
}

/// Record_util.bool_of_string's spellings.
pub fn bool_of_string(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

pub struct Invocation {
    pub session: Option<String>,
    pub cmd: String,
    pub params: Params,
}

fn switch(s: &str) -> Option<&'static str> {
    Some(match s {
        "--force" => "force",
        "--live" => "live",
        "--internal" => "internal",
        "-u" => "username",
        "-pw" => "password",
        "-s" | "-h" => "server",
        "-p" => "port",
        "--debug" => "debug",
        "--minimal" => "minimal",
        "--all" => "all",
        _ => return None,
    })
}

/// Lines of the body (CR stripped, as `zap_cr`).
pub fn lines(body: &str) -> Vec<String> {
    body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()).collect()
}

pub fn parse(body: &str) -> Result<Invocation, CliError> {
    let mut args = lines(body);
    let mut session = None;
    if let Some(s) = args.first().and_then(|l| l.strip_prefix("session_id=")) {
        session = Some(s.to_string());
        args.remove(0);
    }
    let mut it = args.into_iter();
    let cmd = it.next().unwrap_or_default();
    if cmd.contains('=') {
        return Err(CliError::Syntax("command name is missing".into()));
    }
    if cmd.is_empty() {
        return Err(CliError::Syntax(String::new()));
    }
    let mut params = Vec::new();
    while let Some(p) = it.next() {
        if let Some(flag) = p.strip_prefix("--") {
            params.push((flag.to_string(), "true".to_string()));
        } else if p.starts_with('-') {
            let Some(k) = switch(&p) else {
                return Err(CliError::Syntax(format!("Unknown switch: {p}")));
            };
            let Some(v) = it.next() else {
                return Err(CliError::Syntax(String::new()));
            };
            params.push((k.to_string(), v));
        } else {
            let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
            params.push((k.to_string(), v.to_string()));
        }
    }
    Ok(Invocation { session, cmd, params: Params(params) })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_like_xapi() {
        let i = parse("session_id=OpaqueRef:x\r\nvm-list\r\n--minimal\r\nparams=uuid\r\nother-config:a=b=c\r\n-u\r\nroot\r\nflagonly").unwrap();
        assert_eq!(i.session.as_deref(), Some("OpaqueRef:x"));
        assert_eq!(i.cmd, "vm-list");
        assert!(i.params.flag("minimal"));
        assert_eq!(i.params.get("params"), Some("uuid"));
        assert_eq!(i.params.map("other-config"), vec![("a".to_string(), "b=c".to_string())]);
        assert_eq!(i.params.get("username"), Some("root"));
        assert_eq!(i.params.get("flagonly"), Some(""));
        assert!(matches!(parse("uuid=1"), Err(CliError::Syntax(_))));
        assert!(matches!(parse("vm-list\n-zz\n1"), Err(CliError::Syntax(_))));
        assert!(matches!(parse(""), Err(CliError::Syntax(_))));
    }
}
