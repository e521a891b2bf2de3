//! The host's networking as the server wants it, and how a guest NIC may use
//! its switch port. The server sends the whole wanted state ([`HostNetwork`])
//! after every change and the backend makes the host match it, as xapi hands
//! xcp-networkd a full bridge and interface configuration: a missed or
//! repeated call does no harm, and a restart converges by itself.
//!
//! Nothing here names XenAPI objects: a switch is a bridge name, an uplink a
//! chain of Linux links (NIC, VLAN, bond).

use crate::Map;

/// One of the host's network interfaces that can carry a switch (a NIC).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNic {
    pub device: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    pub mtu: i64,
    pub carrier: bool,
    /// Link speed in Mbit/s when the driver knows it.
    pub speed_mbps: Option<i64>,
    /// Full duplex, when the driver knows it.
    pub full_duplex: Option<bool>,
    /// PCI address or other bus id, when there is one.
    pub bus: String,
    /// PCI ids as 4 hex digits ("8086") and their names when known.
    pub vendor_id: String,
    pub vendor_name: String,
    pub device_id: String,
    pub device_name: String,
}

/// How a bond spreads traffic over its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BondMode {
    /// One member carries everything; another takes over when it fails.
    ActiveBackup,
    /// Source-load balancing without switch support (xapi's balance-slb;
    /// Linux's balance-alb is the nearest).
    SourceLoadBalance,
    /// IEEE 802.3ad (LACP).
    Lacp,
}

/// The link a switch is connected to the outside through.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    /// A NIC, by device name.
    Nic { device: String },
    /// An 802.1Q interface named `device` on top of `parent`.
    Vlan { device: String, parent: Box<Link>, tag: u16 },
    /// A bond named `device` of the NICs `members`; `props` holds the
    /// tuning xapi accepts (`miimon`, `updelay`, `downdelay`,
    /// `hashing_algorithm`, `lacp-time`, …), unknown keys ignored.
    Bond { device: String, mode: BondMode, members: Vec<String>, props: Map },
}

impl Link {
    /// The name of the interface that joins the switch.
    pub fn device(&self) -> &str {
        match self {
            Link::Nic { device } | Link::Vlan { device, .. } | Link::Bond { device, .. } => device,
        }
    }
}

/// One switch (a network with an attached interface on this host).
#[derive(Clone, Debug, PartialEq)]
pub struct Switch {
    pub bridge: String,
    pub mtu: i64,
    /// None for a switch with no way out (a private network's switch stays
    /// up only while guests use it; such switches need not be listed).
    pub uplink: Option<Link>,
    /// The guide's §6.5 settings for the uplink's device: validated offloads
    /// (`rx`, `tx`, `sg`, `tso`, `ufo`, `gso` → on/off).
    pub ethtool: Map,
    pub promiscuous: bool,
    /// The host's own addresses on this switch, as xapi puts a PIF's IP
    /// configuration on its bridge. None leaves the host's addresses where
    /// they are (and a NIC that holds them is not made the uplink).
    pub host_ip: Option<HostIp>,
}

/// The host's addresses on a switch's bridge. When the uplink NIC holds the
/// host's addresses, they move: the bridge gets these first, then the NIC
/// is enslaved and its own global addresses go, and its routes are made
/// again through the bridge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostIp {
    /// Addresses with their prefix length ("10.0.0.2/24", "fd00::2/64");
    /// the bridge ends up with exactly these global addresses.
    pub addresses: Vec<String>,
    /// Default gateways (at most one per family) routed through the bridge.
    pub gateways: Vec<String>,
}

/// Every switch the server wants on this host. Switches, VLAN interfaces and
/// bonds the backend made earlier that are not here (and carry no guest NIC)
/// are removed; interfaces it did not make are never removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostNetwork {
    pub switches: Vec<Switch>,
}

/// What a guest NIC may send, as xapi's VIF locking modes enforce it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Locking {
    /// Anything goes.
    #[default]
    Unlocked,
    /// Only frames from the NIC's MAC, and IP traffic from these addresses
    /// (plus DHCP discovery and IPv6 link-local / neighbour discovery).
    Locked { ipv4: Vec<String>, ipv6: Vec<String> },
    /// Nothing in or out.
    Disabled,
}
