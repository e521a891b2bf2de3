//! SM records: one per driver, kept in line with what the driver can do (on
//! first start and on every start after, so upgrades refresh them).

use super::driver::Driver;
use crate::put;
use model::Value;
use store::Txn;

fn fields(d: Driver) -> Vec<(&'static str, Value)> {
    let sm = d.sm();
    let caps = Value::Array(sm.features.iter().map(|(f, _)| Value::from(*f)).collect());
    let features = Value::Struct(sm.features.iter().map(|(f, v)| (f.to_string(), Value::Int(*v))).collect());
    let config = Value::Struct(sm.configuration.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect());
    vec![
        ("name_label", Value::from(sm.name)),
        ("name_description", Value::from(format!("SR plugin for {} storage", sm.name))),
        ("type", Value::from(sm.ty)),
        ("vendor", Value::from("xapi-rs")),
        ("copyright", Value::from("(C) xapi-rs contributors")),
        ("version", Value::from("1.0")),
        ("required_api_version", Value::from("1.0")),
        ("capabilities", caps),
        ("features", features),
        ("configuration", config),
        ("driver_filename", Value::from(format!("/usr/libexec/xapi-rs/sm/{}", sm.ty))),
    ]
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
                tx.update(c, &r, |row| {
                    for (k, v) in fields(d) {
                        put(row, k, v);
                    }
                });
            }
            None => {
                crate::rows::obj(tx, "SM", &model::new_ref(), fields(d));
            }
        }
    }
}
