//! A synchronous facade for scripts: the async API driven by a private
//! single-threaded runtime.

use crate::{Builder, Result};
use std::future::Future;

pub struct Session {
    rt: tokio::runtime::Runtime,
    inner: crate::Session,
}

impl Session {
    /// Connect and log in, blocking.
    pub fn login(builder: Builder, user: &str, password: &str) -> Result<Session> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(crate::Error::Io)?;
        let inner = rt.block_on(builder.login(user, password))?;
        Ok(Session { rt, inner })
    }

    /// Run async API calls to completion: `s.run(|s| s.vm().get_all())`.
    pub fn run<'a, F, T>(&'a self, f: impl FnOnce(&'a crate::Session) -> F) -> T
    where
        F: Future<Output = T> + 'a,
    {
        self.rt.block_on(f(&self.inner))
    }

    pub fn session(&self) -> &crate::Session {
        &self.inner
    }

    pub fn logout(self) -> Result<()> {
        self.rt.block_on(self.inner.logout())
    }
}
