//! message: alerts attached to objects. Stored like any object (so they
//! produce events), kept to the newest 10,000 as xapi does.

use crate::api::MessageApi;
use crate::{class, handle_invalid, ApiError, Ctx, Result, Server};
use model::schema::CLASS_MESSAGE;
use model::types::fields;
use model::types::*;
use model::{DateTime, Ref, Value, XenType};
use std::collections::BTreeMap;

pub const MESSAGE_LIMIT: usize = 10_000;

fn object_class(cls: &Cls) -> Option<&'static str> {
    Some(match cls {
        Cls::Vm => "VM",
        Cls::Host => "host",
        Cls::Sr => "SR",
        Cls::Pool => "pool",
        Cls::Vdi => "VDI",
        Cls::Certificate => "Certificate",
        _ => return None,
    })
}

type Records = BTreeMap<Ref<Message>, MessageRecord>;

fn records(s: &Server, keep: impl Fn(&MessageRecord) -> bool) -> Result<Records> {
    let c = &CLASS_MESSAGE;
    let st = s.db.read();
    let mut out = BTreeMap::new();
    for (r, row) in st.table(c).iter() {
        let rec = MessageRecord::from_value(&Value::Row(row.clone())).map_err(|e| crate::internal(e.to_string()))?;
        if keep(&rec) {
            out.insert(Ref::new(r.clone()), rec);
        }
    }
    Ok(out)
}

impl MessageApi for Server {
    async fn create(
        &self,
        ctx: &Ctx,
        name: String,
        priority: i64,
        cls: Cls,
        obj_uuid: String,
        body: String,
    ) -> Result<Ref<Message>> {
        if let Some(cn) = object_class(&cls) {
            if self.db.read().table(class(cn)).by_uuid(&obj_uuid).is_none() {
                return Err(ApiError::UuidInvalid { r#type: cls.to_string(), uuid: obj_uuid });
            }
        }
        let r = model::new_ref();
        let c = &CLASS_MESSAGE;
        ctx.write(|tx| {
            let mut row = crate::rows::new_row(fields::message::UUID);
            row.write(fields::message::NAME, name);
            row.write(fields::message::PRIORITY, priority);
            row.write(fields::message::CLS, cls);
            row.write(fields::message::OBJ_UUID, obj_uuid);
            row.write(fields::message::TIMESTAMP, DateTime::now());
            row.write(fields::message::BODY, body);
            tx.insert(&r, row);
            // Keep the newest messages only.
            let refs = tx.refs(c);
            if refs.len() > MESSAGE_LIMIT {
                let ts = fields::message::TIMESTAMP.index;
                let mut aged: Vec<(i64, String)> = refs
                    .into_iter()
                    .map(|m| {
                        let t = match tx.get(c, &m).map(|row| row.get(ts).clone()) {
                            Some(Value::DateTime(d)) => d.secs,
                            _ => 0,
                        };
                        (t, m)
                    })
                    .collect();
                aged.sort();
                let excess = aged.len() - MESSAGE_LIMIT;
                for (_, m) in aged.into_iter().take(excess) {
                    tx.delete(c, &m);
                }
            }
            Ok(())
        })?;
        Ok(Ref::new(r))
    }

    async fn destroy(&self, ctx: &Ctx, self_: Ref<Message>) -> Result<()> {
        let c = &CLASS_MESSAGE;
        ctx.write(|tx| {
            if !tx.delete(c, self_.as_str()) {
                return Err(handle_invalid(c, self_.as_str()));
            }
            Ok(())
        })
    }

    async fn destroy_many(&self, ctx: &Ctx, messages: Vec<Ref<Message>>) -> Result<()> {
        let c = &CLASS_MESSAGE;
        ctx.write(|tx| {
            for m in &messages {
                if !tx.exists(c, m.as_str()) {
                    return Err(handle_invalid(c, m.as_str()));
                }
            }
            for m in &messages {
                tx.delete(c, m.as_str());
            }
            Ok(())
        })
    }

    async fn get_all(&self, _ctx: &Ctx) -> Result<Vec<Ref<Message>>> {
        let st = self.db.read();
        Ok(st.table(&CLASS_MESSAGE).iter().map(|(r, _)| Ref::new(r.clone())).collect())
    }

    async fn get_all_records(&self, _ctx: &Ctx) -> Result<Records> {
        records(self, |_| true)
    }

    async fn get_all_records_where(&self, _ctx: &Ctx, _expr: String) -> Result<Records> {
        // As in xapi, the expression is ignored for messages.
        records(self, |_| true)
    }

    async fn get_record(&self, _ctx: &Ctx, self_: Ref<Message>) -> Result<MessageRecord> {
        let row = self.row(&CLASS_MESSAGE, self_.as_str())?;
        MessageRecord::from_value(&Value::Row(row)).map_err(|e| crate::internal(e.to_string()))
    }

    async fn get_by_uuid(&self, _ctx: &Ctx, uuid: String) -> Result<Ref<Message>> {
        let st = self.db.read();
        match st.table(&CLASS_MESSAGE).by_uuid(&uuid) {
            Some(r) => Ok(Ref::new(r.to_string())),
            None => Err(ApiError::UuidInvalid { r#type: "message".into(), uuid }),
        }
    }

    async fn get_since(&self, _ctx: &Ctx, since: DateTime) -> Result<Records> {
        records(self, |m| m.timestamp > since)
    }

    async fn get(&self, _ctx: &Ctx, cls: Cls, obj_uuid: String, since: DateTime) -> Result<Records> {
        records(self, |m| m.cls == cls && m.obj_uuid == obj_uuid && m.timestamp > since)
    }
}
