//! `xe help [--all] [--minimal] [command…]`, laid out as xapi's `rio_help`.

use super::table::{self, Spec};
use super::{CliResult, Cx};

const VM_SELECTORS_INFO: &str = " Which VMs: field=value arguments pick the VMs whose fields match (uuid=<uuid>, power-state=halted, any field that 'xe vm-list params=all' shows), and vm= matches a name-label or a uuid. With no selector every VM is picked; when more than one matches, --multiple must be given.";
const SR_SELECTORS_INFO: &str = " Which SRs: field=value arguments pick the SRs whose fields match (uuid=<uuid>, any field that 'xe sr-list params=all' shows), and sr= matches a name-label or a uuid.";

/// Comma lists wrapped at 74 columns, as xapi's `make_list`.
fn wrap(names: &[&str]) -> Vec<String> {
    let indent = "    ";
    let mut lines = Vec::new();
    let Some((first, rest)) = names.split_first() else { return vec![indent.to_string()] };
    let mut cur = format!("{indent}{first}");
    for n in rest {
        if cur.len() + n.len() > 74 {
            lines.push(std::mem::replace(&mut cur, format!("{indent}{n}")));
        } else {
            cur = format!("{cur}, {n}");
        }
    }
    lines.push(cur);
    lines
}

async fn one(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    let Some(spec): Option<&Spec> = table::find(name) else {
        return cx.lines(vec![format!("Unknown command '{name}'")]).await;
    };
    let mut optn = spec.optn.clone();
    let mut desc = spec.help.clone();
    if spec.vm_selectors {
        optn.push("<vm-selectors>".into());
        desc.push_str(VM_SELECTORS_INFO);
    }
    if spec.sr_selectors {
        optn.push("<sr-selectors>".into());
        desc.push_str(SR_SELECTORS_INFO);
    }
    let rec = vec![
        ("command name        ".to_string(), name.to_string()),
        ("reqd params     ".to_string(), spec.reqd.join(", ")),
        ("optional params ".to_string(), optn.join(", ")),
        ("description     ".to_string(), desc),
    ];
    cx.table(vec![rec]).await
}

pub async fn run(cx: &mut Cx<'_, '_>) -> CliResult {
    let asked: Vec<String> = cx
        .params
        .0
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !["server", "username", "password", "port", "minimal", "all"].contains(&k.as_str()))
        .collect();
    if !asked.is_empty() {
        for a in asked {
            one(cx, &a).await?;
        }
        return Ok(());
    }
    let all = cx.params.flag("all");
    let names: Vec<&str> = table::all().values().filter(|s| all || s.standard).map(|s| s.name.as_str()).collect();
    let usage = "Usage: xe <command> [-s server] [-pw passwd] [-p port] [-u user] [-pwf password-file]\n  [command specific arguments]\n\nTo get help on a specific command: xe help <command>\n";
    if cx.minimal {
        return cx.lines(names.iter().map(|s| s.to_string()).collect()).await;
    }
    if all {
        cx.lines(vec![format!("{usage}\nFull command list\n-----------------")]).await?;
        let (host, rest): (Vec<&str>, Vec<&str>) = names.iter().partition(|n| n.starts_with("host-"));
        let (vm, other): (Vec<&str>, Vec<&str>) = rest.iter().partition(|n| n.starts_with("vm-"));
        cx.lines(wrap(&host)).await?;
        cx.lines(wrap(&[""])).await?;
        cx.lines(wrap(&vm)).await?;
        cx.lines(wrap(&[""])).await?;
        cx.lines(wrap(&other)).await
    } else {
        cx.lines(vec![format!(
            "{usage}To get a full listing of commands: xe help --all\n\nCommon command list\n-------------------"
        )])
        .await?;
        cx.lines(wrap(&names)).await
    }
}
