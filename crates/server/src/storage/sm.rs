//! SM records: one per driver, kept in line with what the driver can do (on
//! first start and on every start after, so upgrades refresh them).

use super::driver::Driver;
use model::types::fields::sm as SM;
use model::{Row, Value};
use store::Txn;

/// Write what the driver says about itself into its SM row.
fn fill(d: Driver, row: &mut Row) {
    let sm = d.sm();
    let caps = sm.features.iter().map(|(f, _)| f.to_string()).collect();
    // The maps keep the driver's order, as stored.
    let features = Value::Struct(sm.features.iter().map(|(f, v)| (f.to_string(), Value::Int(*v))).collect());
    let config = Value::Struct(sm.configuration.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect());
    row.write(SM::NAME_LABEL, sm.name.to_string());
    row.write(SM::NAME_DESCRIPTION, format!("SR plugin for {} storage", sm.name));
    row.write(SM::TYPE, sm.ty.to_string());
    row.write(SM::VENDOR, "xapi-rs".to_string());
    row.write(SM::COPYRIGHT, "(C) xapi-rs contributors".to_string());
    row.write(SM::VERSION, "1.0".to_string());
    row.write(SM::REQUIRED_API_VERSION, "1.0".to_string());
    row.write(SM::CAPABILITIES, caps);
    row.fields[SM::FEATURES.index] = features;
    row.fields[SM::CONFIGURATION.index] = config;
    row.write(SM::DRIVER_FILENAME, format!("/usr/libexec/xapi-rs/sm/{}", sm.ty));
}

/// Create or refresh the SM record of every driver.
pub fn sync(tx: &mut Txn) {
    let c = &model::schema::CLASS_SM;
    let ty = model::types::fields::sm::TYPE.index;
    for d in Driver::ALL {
        let want = d.sm().ty;
        let existing = tx.refs(c).into_iter().find(|r| tx.get(c, r).and_then(|row| row.get(ty).as_str()) == Some(want));
        match existing {
            Some(r) => {
                tx.update(c, &r, |row| fill(d, row));
            }
            None => {
                let mut row = crate::rows::new_row(SM::UUID);
                fill(d, &mut row);
                tx.insert(&model::new_ref(), row);
            }
        }
    }
}
