//! Network commands: networks, VIFs, PIF addressing, VLANs and bonds.

use super::{class, ctor, map_arg, random_mac_local, s, uuid_of};
use crate::cli::generic;
use crate::cli::{CliError, CliResult, Cx};
use model::schema::{CLASS_BOND, CLASS_NETWORK, CLASS_PIF, CLASS_VIF, CLASS_VLAN};
use model::Value;

async fn obj(cx: &Cx<'_, '_>, c: &str, key: &str) -> CliResult<String> {
    Ok(generic::by_uuid(cx, class(c)?, cx.params.reqd(key)?).await?.0)
}

pub async fn run(cx: &mut Cx<'_, '_>, name: &str) -> CliResult {
    match name {
        "network-create" => {
            // xapi's defaults: MTU 1500, managed.
            let mtu: i64 = match cx.params.get("MTU") {
                Some(m) => {
                    m.trim().parse().map_err(|_| CliError::Failure("Parameter MTU must be an integer".into()))?
                }
                None => 1500,
            };
            let mut given = vec![
                ("name_label", s(cx.params.reqd("name-label")?)),
                ("name_description", s(cx.params.get("name-description").unwrap_or(""))),
                ("other_config", map_arg(cx, "other-config")),
                ("MTU", Value::Int(mtu)),
                ("managed", Value::Bool(cx.params.bool("managed", true)?)),
            ];
            if let Some(b) = cx.params.get("bridge") {
                given.push(("bridge", s(b)));
            }
            let net = cx.call_str("network.create", vec![ctor(&CLASS_NETWORK, given)]).await?;
            let u = uuid_of(cx, &CLASS_NETWORK, &net);
            cx.lines(vec![u]).await
        }
        "vif-create" => {
            let vm = obj(cx, "VM", "vm-uuid").await?;
            let net = obj(cx, "network", "network-uuid").await?;
            // As the real xe: `random` is a random local MAC (empty lets the
            // server derive one), and the VIF takes its network's MTU.
            let mac = match cx.params.get("mac").unwrap_or("") {
                "random" => random_mac_local(),
                m => m.to_string(),
            };
            let mtu = {
                let st = cx.s.db.read();
                st.get(&CLASS_NETWORK, &net).and_then(|r| r.get_by_name("MTU").and_then(Value::as_int)).unwrap_or(1500)
            };
            let rec = ctor(
                &CLASS_VIF,
                vec![
                    ("device", s(cx.params.reqd("device")?)),
                    ("network", s(net)),
                    ("VM", s(vm)),
                    ("MAC", s(mac)),
                    ("MTU", Value::Int(mtu)),
                ],
            );
            let vif = cx.call_str("VIF.create", vec![rec]).await?;
            let u = uuid_of(cx, &CLASS_VIF, &vif);
            cx.lines(vec![u]).await
        }
        "vif-plug" | "vif-destroy" => {
            let vif = obj(cx, "VIF", "uuid").await?;
            let m = if name == "vif-plug" { "VIF.plug" } else { "VIF.destroy" };
            cx.call(m, vec![s(vif)]).await.map(|_| ())
        }
        "vif-unplug" => {
            let vif = obj(cx, "VIF", "uuid").await?;
            let m = if cx.params.flag("force") { "VIF.unplug_force" } else { "VIF.unplug" };
            cx.call(m, vec![s(vif)]).await.map(|_| ())
        }
        "pif-scan" => {
            let host = obj(cx, "host", "host-uuid").await?;
            cx.call("PIF.scan", vec![s(host)]).await.map(|_| ())
        }
        "pif-plug" | "pif-unplug" => {
            let pif = obj(cx, "PIF", "uuid").await?;
            let m = if name == "pif-plug" { "PIF.plug" } else { "PIF.unplug" };
            cx.call(m, vec![s(pif)]).await.map(|_| ())
        }
        "pif-reconfigure-ip" => {
            let pif = obj(cx, "PIF", "uuid").await?;
            let g = |k: &str| s(cx.params.get(k).unwrap_or(""));
            cx.call(
                "PIF.reconfigure_ip",
                vec![s(pif), s(cx.params.reqd("mode")?), g("IP"), g("netmask"), g("gateway"), g("DNS")],
            )
            .await
            .map(|_| ())
        }
        "pif-reconfigure-ipv6" => {
            let pif = obj(cx, "PIF", "uuid").await?;
            let g = |k: &str| s(cx.params.get(k).unwrap_or(""));
            let mode = s(cx.params.reqd("mode")?);
            cx.call("PIF.reconfigure_ipv6", vec![s(pif), mode, g("IPv6"), g("gateway"), g("DNS")]).await.map(|_| ())
        }
        "vlan-create" => {
            let pif = obj(cx, "PIF", "pif-uuid").await?;
            let net = obj(cx, "network", "network-uuid").await?;
            let tag: i64 = cx
                .params
                .reqd("vlan")?
                .trim()
                .parse()
                .map_err(|_| CliError::Failure("Failed to parse parameter 'vlan': expecting an integer".into()))?;
            let vlan = cx.call_str("VLAN.create", vec![s(pif), Value::Int(tag), s(net)]).await?;
            // xapi prints the new untagged PIF.
            let untagged = super::field_str(cx, &CLASS_VLAN, &vlan, "untagged_PIF");
            let u = uuid_of(cx, &CLASS_PIF, &untagged);
            cx.lines(vec![u]).await
        }
        "bond-create" => {
            let net = obj(cx, "network", "network-uuid").await?;
            let mut members = Vec::new();
            for u in cx.params.reqd("pif-uuids")?.split(',').filter(|u| !u.is_empty()) {
                members.push(s(generic::by_uuid(cx, &CLASS_PIF, u).await?.0));
            }
            let bond = cx
                .call_str(
                    "Bond.create",
                    vec![
                        s(net),
                        Value::Array(members),
                        s(cx.params.get("mac").unwrap_or("")),
                        // xapi: an empty mode is balance-slb.
                        s(match cx.params.get("mode").unwrap_or("") {
                            "" => "balance-slb",
                            m => m,
                        }),
                        map_arg(cx, "properties"),
                    ],
                )
                .await?;
            let u = uuid_of(cx, &CLASS_BOND, &bond);
            cx.lines(vec![u]).await
        }
        other => Err(CliError::UnknownCommand(other.to_string())),
    }
}
