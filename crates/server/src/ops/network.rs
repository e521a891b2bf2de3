//! network: bridge naming on create.

use crate::implicit::Hooks;
use crate::{class, field, Ctx, Result};
use model::{Row, Value};
use store::Txn;

pub const HOOKS: Hooks = Hooks { create: Some(create), destroy: None, set: None };

/// xapi names bridges of new networks `xapi<N>`, the first unused.
fn create(_ctx: &Ctx, tx: &mut Txn, _r: &str, row: &mut Row) -> Result<()> {
    let c = class("network");
    let b = field(c, "bridge");
    if row.get(b).as_str().is_some_and(|s| !s.is_empty()) {
        return Ok(());
    }
    let used: std::collections::HashSet<String> = tx
        .refs(c)
        .iter()
        .filter_map(|r| tx.get(c, r).and_then(|row| row.get(b).as_str().map(str::to_string)))
        .collect();
    let name = (0..).map(|i| format!("xapi{i}")).find(|n| !used.contains(n)).unwrap_or_default();
    row.fields[b] = Value::String(name);
    Ok(())
}
