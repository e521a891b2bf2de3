//! Roles and permissions as objects of the `role` class.
//!
//! As in xapi, `role.get_all` returns the six roles and every permission (a
//! role with no subroles, named by the lower-cased wire name of a message).
//! Refs are `OpaqueRef:<uuid>` with the uuid taken from the MD5 of the name,
//! except pool-admin's fixed uuid, so they are the same on every server.

use crate::{class, put};
use md5::{Digest, Md5};
use model::schema::{Role, CLASSES};
use model::Value;
use store::Txn;

pub const POOL_ADMIN_UUID: &str = "0165f154-ba3e-034e-6b27-5d271af109ba";

fn uuid_of(name: &str) -> String {
    if name == "pool-admin" {
        return POOL_ADMIN_UUID.to_string();
    }
    let h: [u8; 16] = Md5::digest(name.as_bytes()).into();
    uuid::Uuid::from_bytes(h).to_string()
}

pub fn role_ref(name: &str) -> String {
    format!("OpaqueRef:{}", uuid_of(name))
}

fn describe(r: Role) -> &'static str {
    match r {
        Role::PoolAdmin => "Full control, including security, accounts and pool-wide settings",
        Role::PoolOperator => "Pool-wide management except security and accounts",
        Role::VmPowerAdmin => "Create and manage VMs, including migration and snapshots",
        Role::VmAdmin => "Manage VMs and their devices, but not placement",
        Role::VmOperator => "Use existing VMs: start, stop, consoles",
        Role::ReadOnly => "Look, but not change",
        Role::Nobody => "",
    }
}

/// Insert every role and permission that is missing. Returns how many were added.
pub fn ensure(tx: &mut Txn) -> usize {
    let c = class("role");
    let mut added = 0;
    let mut perms_of: Vec<Vec<Value>> = vec![Vec::new(); Role::ALL.len()];
    for cl in CLASSES {
        for m in cl.messages {
            let wire = format!("{}.{}", cl.name, m.name);
            let r = role_ref(&wire);
            for (i, role) in Role::ALL.iter().enumerate() {
                if m.roles.allows(*role) {
                    perms_of[i].push(Value::String(r.clone()));
                }
            }
            if !tx.exists(c, &r) {
                let mut row = store::blank_row(c);
                put(&mut row, "uuid", uuid_of(&wire));
                put(&mut row, "name_label", wire.to_lowercase());
                put(&mut row, "name_description", "A basic permission");
                put(&mut row, "is_internal", true);
                tx.insert(&r, row);
                added += 1;
            }
        }
    }
    for (i, role) in Role::ALL.iter().enumerate() {
        let r = role_ref(role.name());
        if !tx.exists(c, &r) {
            let mut row = store::blank_row(c);
            put(&mut row, "uuid", uuid_of(role.name()));
            put(&mut row, "name_label", role.name());
            put(&mut row, "name_description", describe(*role));
            put(&mut row, "subroles", Value::Array(std::mem::take(&mut perms_of[i])));
            tx.insert(&r, row);
            added += 1;
        }
    }
    added
}
