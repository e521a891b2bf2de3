//! Each class's operations enum names its class and its wire names.

use model::schema::{CLASS_SR, CLASS_VBD, CLASS_VDI, CLASS_VIF, CLASS_VM};
use model::types::{StorageOperations, VbdOperations, VdiOperations, VifOperations, VmOperations};
use model::Operation;

fn class_of<O: Operation>(_: &O) -> &'static str {
    O::CLASS.name
}

#[test]
fn operations_name_their_class() {
    assert_eq!(class_of(&VmOperations::PoolMigrate), CLASS_VM.name);
    assert_eq!(class_of(&VbdOperations::Plug), CLASS_VBD.name);
    assert_eq!(class_of(&VdiOperations::Destroy), CLASS_VDI.name);
    assert_eq!(class_of(&VifOperations::Unplug), CLASS_VIF.name);
    assert_eq!(class_of(&StorageOperations::VdiCreate), CLASS_SR.name);
}

#[test]
fn operation_names_are_the_wire_names() {
    assert_eq!(VmOperations::PoolMigrate.name(), "pool_migrate");
    assert_eq!(VmOperations::ChangingVcpusLive.name(), "changing_VCPUs_live");
    assert_eq!(VbdOperations::UnplugForce.name(), "unplug_force");
    assert_eq!(StorageOperations::VdiCreate.name(), "vdi_create");
}
