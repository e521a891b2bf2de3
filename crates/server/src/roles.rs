//! Roles and permissions as objects of the `role` class, and the
//! permission catalogue RBAC checks against.
//!
//! As in xapi, `role.get_all` returns the six roles and every permission (a
//! role with no subroles, named by the lower-cased wire name of a message,
//! `<message>/key:<key>` for a map key with its own role, `http/<action>`
//! for an HTTP handler). Refs are `OpaqueRef:<uuid>` with the uuid taken
//! from the MD5 of the name, except pool-admin's fixed uuid, so they are the
//! same on every server.
//!
//! The roles form a chain (each holds every permission of the roles below
//! it), so a permission is fully described by the least role holding it, and
//! a session by the most privileged role it has.

use md5::{Digest, Md5};
use model::schema::{ClassDef, MsgDef, MsgKind, Role, CLASSES};
use model::types::fields;
use model::Ref;
use std::collections::HashMap;
use std::sync::OnceLock;
use store::Txn;

/// HTTP handler actions (xapi's `http_actions`) and the least role that may
/// use them; `post_cli` is checked per call the command makes.
pub const HTTP_ACTIONS: &[(&str, Role)] = &[
    ("get_export", Role::VmAdmin),
    ("get_export_metadata", Role::VmAdmin),
    ("get_export_raw_vdi", Role::VmAdmin),
    ("put_import", Role::VmAdmin),
    ("put_import_metadata", Role::VmAdmin),
    ("put_import_raw_vdi", Role::VmAdmin),
    ("connect_console", Role::VmOperator),
    ("connect_console_ws", Role::VmOperator),
    ("get_rrd_updates", Role::ReadOnly),
    ("get_vm_rrd", Role::ReadOnly),
    ("get_host_rrd", Role::ReadOnly),
    ("get_sr_rrd", Role::ReadOnly),
    // Ours: the Prometheus page shows what the RRD handlers show.
    ("get_metrics", Role::ReadOnly),
    ("get_pool_xml_db_sync", Role::PoolAdmin),
    ("put_pool_xml_db_sync", Role::PoolAdmin),
    ("post_cli", Role::ReadOnly),
    ("get_audit_log", Role::ReadOnly),
];

/// One permission: its name and the least role that holds it
/// (`Role::Nobody`: only the local superuser).
pub struct Perm {
    pub name: String,
    /// The name before lower-casing, which its uuid is derived from.
    pub wire: String,
    pub min: Role,
}

impl Perm {
    fn new(wire: String, min: Role) -> Perm {
        Perm { name: wire.to_lowercase(), wire, min }
    }
}

struct Catalogue {
    perms: Vec<Perm>,
    by_name: HashMap<String, usize>,
}

fn catalogue() -> &'static Catalogue {
    static C: OnceLock<Catalogue> = OnceLock::new();
    C.get_or_init(|| {
        let mut perms = Vec::new();
        for c in CLASSES {
            for m in c.messages {
                perms.push(Perm::new(format!("{}.{}", c.name, m.name), m.roles.min));
            }
            for m in c.messages {
                if let Some(f) = keyed_field(c, m) {
                    for (k, r) in f.key_roles {
                        perms.push(Perm::new(format!("{}.{}/key:{k}", c.name, m.name), *r));
                    }
                }
            }
        }
        for (a, r) in HTTP_ACTIONS {
            perms.push(Perm::new(format!("http/{a}"), *r));
        }
        let by_name = perms.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect();
        Catalogue { perms, by_name }
    })
}

/// Every permission, messages first, in a stable order.
pub fn permissions() -> &'static [Perm] {
    &catalogue().perms
}

/// The least role holding a permission, if it exists.
pub fn min_role(name: &str) -> Option<Role> {
    let c = catalogue();
    c.by_name.get(name).map(|i| c.perms[*i].min)
}

/// Does `have` hold a permission whose least role is `min`?
pub fn holds(have: Role, min: Role) -> bool {
    min != Role::Nobody && have <= min
}

/// A message's permission name: its wire name, lower-cased (Async calls
/// use the same one).
pub fn message_permission(c: &ClassDef, m: &MsgDef) -> String {
    format!("{}.{}", c.name, m.name).to_lowercase()
}

/// The permission for a protected map key (the key pattern, lower-cased).
pub fn key_permission(message_perm: &str, key_pattern: &str) -> String {
    format!("{message_perm}/key:{}", key_pattern.to_lowercase())
}

/// The field of an `add_to_`/`remove_from_` message whose keys have roles.
pub fn keyed_field(c: &'static ClassDef, m: &MsgDef) -> Option<&'static model::schema::FieldDef> {
    match m.kind {
        MsgKind::AddTo(i) | MsgKind::RemoveFrom(i) => c.fields.get(i).filter(|f| !f.key_roles.is_empty()),
        _ => None,
    }
}

/// The roles holding a permission, in xapi's order, as the denial lists them.
pub fn roles_holding(min: Role) -> Vec<&'static str> {
    Role::ALL.iter().filter(|r| holds(**r, min)).map(|r| r.name()).collect()
}

/// Every permission name a role holds.
pub fn permission_names(role: Role) -> Vec<String> {
    permissions().iter().filter(|p| holds(role, p.min)).map(|p| p.name.clone()).collect()
}

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
    let c = &model::schema::CLASS_ROLE;
    let mut added = 0;
    let mut perms_of: Vec<Vec<Ref<model::types::Role>>> = vec![Vec::new(); Role::ALL.len()];
    for p in permissions() {
        let r = role_ref(&p.wire);
        for (i, role) in Role::ALL.iter().enumerate() {
            if holds(*role, p.min) {
                perms_of[i].push(Ref::new(r.as_str()));
            }
        }
        if !tx.exists(c, &r) {
            let mut row = store::blank_row(c);
            row.write(fields::role::UUID, uuid_of(&p.wire));
            row.write(fields::role::NAME_LABEL, p.name.clone());
            row.write(fields::role::NAME_DESCRIPTION, "A basic permission".to_string());
            row.write(fields::role::IS_INTERNAL, true);
            tx.insert(&r, row);
            added += 1;
        }
    }
    for (i, role) in Role::ALL.iter().enumerate() {
        let r = role_ref(role.name());
        if !tx.exists(c, &r) {
            let mut row = store::blank_row(c);
            row.write(fields::role::UUID, uuid_of(role.name()));
            row.write(fields::role::NAME_LABEL, role.name().to_string());
            row.write(fields::role::NAME_DESCRIPTION, describe(*role).to_string());
            row.write(fields::role::SUBROLES, std::mem::take(&mut perms_of[i]));
            tx.insert(&r, row);
            added += 1;
        }
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn permissions_from_the_datamodel() {
        assert_eq!(min_role("vm.start"), Some(Role::VmOperator));
        assert_eq!(min_role("vm.get_record"), Some(Role::ReadOnly));
        assert_eq!(min_role("vm.add_to_other_config"), Some(Role::VmAdmin));
        assert_eq!(min_role("vm.add_to_other_config/key:folder"), Some(Role::VmOperator));
        assert_eq!(min_role("vm.remove_from_other_config/key:pci"), Some(Role::PoolAdmin));
        assert_eq!(min_role("vm.add_to_other_config/key:xencenter.customfields.*"), Some(Role::VmOperator));
        assert_eq!(min_role("task.add_to_other_config/key:applies_to"), Some(Role::VmOperator));
        assert_eq!(min_role("http/get_export"), Some(Role::VmAdmin));
        assert_eq!(min_role("http/connect_console"), Some(Role::VmOperator));
        assert_eq!(min_role("no.such"), None);
        let vm = &model::schema::CLASS_VM;
        let oc = &vm.fields[fields::vm::OTHER_CONFIG.index];
        assert_eq!(oc.key_role("XenCenter.CustomFields.owner"), Some(("XenCenter.CustomFields.*", Role::VmOperator)));
        assert_eq!(oc.key_role("pci"), Some(("pci", Role::PoolAdmin)));
        assert_eq!(oc.key_role("pcix"), None);
    }

    #[test]
    fn roles_form_a_chain() {
        assert!(holds(Role::PoolAdmin, Role::ReadOnly));
        assert!(!holds(Role::ReadOnly, Role::VmOperator));
        assert!(!holds(Role::PoolAdmin, Role::Nobody), "superuser-only permissions belong to no role");
        for w in Role::ALL.windows(2) {
            let hi: HashSet<String> = permission_names(w[0]).into_iter().collect();
            let lo: HashSet<String> = permission_names(w[1]).into_iter().collect();
            assert!(lo.is_subset(&hi) && lo.len() < hi.len(), "{:?} vs {:?}", w[0], w[1]);
        }
        assert_eq!(roles_holding(Role::VmAdmin), vec!["pool-admin", "pool-operator", "vm-power-admin", "vm-admin"]);
    }
}
