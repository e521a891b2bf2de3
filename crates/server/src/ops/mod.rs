//! Explicit messages, one module per class, plus the hooks that give
//! implicit constructors, destructors and setters their class-specific rules.

pub mod bond;
pub mod event;
pub mod host;
pub mod message;
pub mod netutil;
pub mod network;
pub mod pbd;
pub mod pif;
pub mod pool;
pub mod rbac;
pub mod session;
pub mod snapmeta;
pub mod sr;
pub mod task;
pub mod templates;
pub mod tunnel;
pub mod vbd;
pub mod vdi;
pub mod vif;
pub mod vlan;
pub mod vm;

pub use vbd::new_vbd;

use crate::api::*;
use crate::implicit::Hooks;
use crate::Server;
use model::schema::{ClassDef, ClassId};

/// Class-specific rules for implicit messages.
pub fn hooks(c: &ClassDef) -> Hooks {
    match c.id {
        ClassId::Vm => vm::HOOKS,
        ClassId::Vbd => vbd::HOOKS,
        ClassId::Network => network::HOOKS,
        ClassId::Vif => vif::HOOKS,
        ClassId::Pbd => pbd::HOOKS,
        ClassId::Subject => rbac::SUBJECT_HOOKS,
        _ => Hooks::default(),
    }
}

/// Constructors that do I/O outside the transaction (VDI.create makes the
/// file through the SR's driver); None for classes served generically.
pub async fn create_with_io(ctx: &crate::Ctx, c: &ClassDef, rec: &model::Value) -> Option<crate::Result<String>> {
    match c.id {
        ClassId::Vdi => Some(vdi::create(ctx, rec).await),
        _ => None,
    }
}

/// Destructors that do I/O outside the transaction (VDI.destroy removes the file).
pub async fn destroy_with_io(ctx: &crate::Ctx, c: &ClassDef, r: &str) -> Option<crate::Result<()>> {
    match c.id {
        ClassId::Vdi => Some(vdi::destroy(ctx, r).await),
        _ => None,
    }
}

// Classes whose explicit messages are not implemented yet answer
// NOT_IMPLEMENTED through the generated defaults.
impl BlobApi for Server {}
impl HostCrashdumpApi for Server {}
impl PoolUpdateApi for Server {}
impl VmApplianceApi for Server {}
impl VtpmApi for Server {}
