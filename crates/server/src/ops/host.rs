//! host: the explicit messages management tools call.

use crate::api::HostApi;
use crate::{Ctx, Result, Server};
use model::types::*;
use model::{DateTime, Ref};

impl HostApi for Server {
    async fn get_servertime(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<DateTime> {
        self.row(crate::class("host"), host.as_str())?;
        Ok(DateTime::now())
    }

    async fn get_server_localtime(&self, _ctx: &Ctx, host: Ref<Host>) -> Result<DateTime> {
        self.row(crate::class("host"), host.as_str())?;
        Ok(local_now())
    }
}

/// The host's local time, written without a zone (as xapi does).
pub fn local_now() -> DateTime {
    let now = DateTime::now();
    // SAFETY: localtime_r only reads `t` and writes the caller-owned `tm`.
    let offset = unsafe {
        let t = now.secs as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    };
    DateTime { secs: now.secs + offset, zone: model::datetime::Zone::Unqualified }
}
