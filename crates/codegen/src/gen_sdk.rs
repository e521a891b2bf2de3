//! Generates the SDK's per-message client functions (filled in with the SDK issue).

use crate::ast::Api;

pub fn gen_sdk(_api: &Api) -> String {
    String::new()
}
