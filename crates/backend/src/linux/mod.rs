//! The Linux host's networking, for backends that run guests on this host:
//! NIC inventory ([`inventory`]), switches as Linux bridges with NIC, VLAN
//! and bond uplinks ([`switches`]), guest NICs as bridge ports on taps
//! ([`ports`]) and VIF locking with nftables ([`filter`]). Everything goes
//! through `ip`, `nft` and `ethtool` ([`cmd`]), reading state as JSON
//! ([`links`]); links we make carry the ifalias [`links::MARK`], so a
//! restarted server knows what it may remove.
//!
//! [`Net`] serialises every change: a guest port joining a bridge and the
//! removal of unused bridges must not interleave.

pub mod addrs;
pub mod cmd;
pub mod filter;
pub mod inventory;
pub mod links;
pub mod ports;
pub mod switches;

use crate::{HostNetwork, HostNic, Locking, Nic, Result};
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Net {
    /// The host's NICs when named by the administrator, else found.
    nics: Option<Vec<String>>,
    sysfs: PathBuf,
    /// The last plan applied: what a bridge left without guests is checked against.
    plan: Mutex<Option<HostNetwork>>,
    lock: tokio::sync::Mutex<()>,
}

impl Net {
    pub fn new(nics: Option<Vec<String>>) -> Net {
        Net { nics, sysfs: inventory::SYSFS_NET.into(), plan: Mutex::new(None), lock: tokio::sync::Mutex::new(()) }
    }

    fn plan(&self) -> Option<HostNetwork> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn nics(&self) -> Vec<HostNic> {
        inventory::nics(&self.sysfs, self.nics.as_deref())
    }

    /// The names of the NICs [`Net::nics`] lists, cheaply.
    pub fn nic_names(&self) -> Vec<String> {
        inventory::nic_names(&self.sysfs, self.nics.as_deref())
    }

    /// The sysfs `class/net` directory NICs are read from.
    pub fn sysfs(&self) -> &std::path::Path {
        &self.sysfs
    }

    /// Make the host's switches what `plan` says (see [`switches::apply`]).
    pub async fn apply(&self, plan: &HostNetwork) -> Result<()> {
        let _g = self.lock.lock().await;
        *self.plan.lock().unwrap_or_else(|e| e.into_inner()) = Some(plan.clone());
        switches::apply(plan).await
    }

    /// Join a guest's tap to its switch, or move it to another one.
    pub async fn attach(&self, tap: &str, nic: &Nic) -> Result<()> {
        let _g = self.lock.lock().await;
        let r = ports::attach(tap, nic).await;
        if r.is_ok() {
            // A move may have left a private switch empty.
            self.collect().await;
        }
        r
    }

    pub async fn set_locking(&self, tap: &str, mac: &str, locking: &Locking) -> Result<()> {
        let _g = self.lock.lock().await;
        filter::apply(tap, mac, locking).await
    }

    /// After NICs went (unplug, or their domain ended): drop their rules and
    /// the bridges nobody uses any more. Failures are logged: the NICs are
    /// gone either way.
    pub async fn release(&self, taps: &[String]) {
        let _g = self.lock.lock().await;
        for t in taps {
            if let Err(e) = filter::remove(t).await {
                tracing::warn!(tap = %t, "cannot remove the locking rules of a gone NIC: {e}");
            }
        }
        self.collect().await;
    }

    async fn collect(&self) {
        if let Err(e) = switches::collect(self.plan().as_ref()).await {
            tracing::warn!("cleaning up unused switches: {e}");
        }
    }
}
