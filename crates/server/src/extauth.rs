//! External authentication: directory users from an LDAP server (our
//! `auth_type` "LDAP"; xapi's AD plugin speaks to Active Directory through
//! winbind, which an LDAP directory replaces here).
//!
//! The configuration is the host's `external_auth_configuration` (see
//! [`LdapConfig::from_map`] for the keys). The bind password is not kept in
//! that readable map: it goes into a `secret` object whose uuid the map
//! names (`bind_password_secret`).
//!
//! Subject identifiers are the directory's stable entry ids (the
//! `id_attribute`, OpenLDAP's `entryUUID` by default). Every operation opens
//! its own connection (bounded by `timeout_secs`), binds as the service
//! account (or anonymously) and searches with filters whose values are
//! escaped (RFC 4515), so a user name such as `*)(uid=*` matches nothing.

use crate::{ApiError, Result, Server};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use model::schema::Role;
use model::types::fields;
use model::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub const AUTH_TYPE: &str = "LDAP";

/// Why a directory operation failed, as xapi's `Auth_signature` tells
/// apart wrong credentials, unknown subjects and an unusable service.
#[derive(Debug)]
pub enum AuthErr {
    /// Wrong user name or password.
    Failure(String),
    /// No such user or group.
    NotFound(String),
    /// The directory is unreachable, refused the service account, or
    /// answered something unusable.
    Service(String),
}

impl std::fmt::Display for AuthErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthErr::Failure(m) | AuthErr::NotFound(m) | AuthErr::Service(m) => f.write_str(m),
        }
    }
}

type AuthResult<T> = std::result::Result<T, AuthErr>;

/// The LDAP settings.
#[derive(Clone, Debug)]
pub struct LdapConfig {
    pub url: String,
    pub starttls: bool,
    pub bind_dn: String,
    pub bind_password: String,
    pub user_base: String,
    pub user_filter: String,
    pub user_name_attribute: String,
    pub group_base: String,
    pub group_filter: String,
    pub group_name_attribute: String,
    /// Attribute of a group listing its members' DNs (`member`) or user
    /// names (`memberUid`).
    pub group_member_attribute: String,
    pub id_attribute: String,
    pub disabled_attribute: String,
    pub ca_cert: Option<String>,
    pub tls_verify: bool,
    pub timeout: Duration,
}

impl LdapConfig {
    /// Read the configuration map of `enable_external_auth`:
    /// `url` (ldap:// or ldaps://, required), `starttls` (true/false),
    /// `bind_dn` and `bind_password` (none: anonymous), `user_base`
    /// (required), `user_filter` (`(objectClass=posixAccount)`),
    /// `user_name_attribute` (`uid`), `group_base` (the user base),
    /// `group_filter` (`(|(objectClass=groupOfNames)(objectClass=posixGroup))`),
    /// `group_name_attribute` (`cn`), `group_member_attribute` (`member`; or
    /// `memberUid`), `id_attribute` (`entryUUID`), `disabled_attribute`
    /// (`pwdAccountLockedTime`: a user that has it is disabled), `ca_cert`
    /// (PEM file of the CA that signed the server's certificate; default: the
    /// system's roots), `tls_verify` (true), `timeout_secs` (5).
    pub fn from_map(m: &BTreeMap<String, String>, password: Option<String>) -> std::result::Result<LdapConfig, String> {
        let get = |k: &str| m.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let or = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_string());
        let bool_of = |k: &str, d: bool| -> std::result::Result<bool, String> {
            match get(k).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => Ok(d),
                Some("true" | "yes" | "1" | "on") => Ok(true),
                Some("false" | "no" | "0" | "off") => Ok(false),
                Some(v) => Err(format!("{k}: not a boolean: {v}")),
            }
        };
        let url = get("url").ok_or("the url key is required (ldap://host or ldaps://host)")?;
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("ldap://") || lower.starts_with("ldaps://")) {
            return Err(format!("url must start with ldap:// or ldaps://: {url}"));
        }
        let starttls = bool_of("starttls", false)?;
        if starttls && lower.starts_with("ldaps://") {
            return Err("starttls applies to ldap:// URLs only".into());
        }
        let user_base = get("user_base").ok_or("the user_base key is required")?;
        let timeout_secs: u64 = match get("timeout_secs") {
            None => 5,
            Some(v) => v.parse().ok().filter(|n| (1..=300).contains(n)).ok_or("timeout_secs: 1 to 300")?,
        };
        let filter_ok = |f: &str| f.starts_with('(') && f.ends_with(')');
        let user_filter = or("user_filter", "(objectClass=posixAccount)");
        let group_filter = or("group_filter", "(|(objectClass=groupOfNames)(objectClass=posixGroup))");
        if !filter_ok(&user_filter) || !filter_ok(&group_filter) {
            return Err("filters must be parenthesised LDAP filters".into());
        }
        Ok(LdapConfig {
            url,
            starttls,
            bind_dn: or("bind_dn", ""),
            bind_password: password.or_else(|| get("bind_password")).unwrap_or_default(),
            group_base: or("group_base", &user_base),
            user_base,
            user_filter,
            user_name_attribute: or("user_name_attribute", "uid"),
            group_filter,
            group_name_attribute: or("group_name_attribute", "cn"),
            group_member_attribute: or("group_member_attribute", "member"),
            id_attribute: or("id_attribute", "entryUUID"),
            disabled_attribute: or("disabled_attribute", "pwdAccountLockedTime"),
            ca_cert: get("ca_cert"),
            tls_verify: bool_of("tls_verify", true)?,
            timeout: Duration::from_secs(timeout_secs),
        })
    }

    fn settings(&self) -> std::result::Result<LdapConnSettings, String> {
        let mut s = LdapConnSettings::new().set_conn_timeout(self.timeout).set_starttls(self.starttls);
        if !self.tls_verify {
            s = s.set_no_tls_verify(true);
        } else if let Some(ca) = &self.ca_cert {
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::CertificateDer;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("ca_cert {ca}: {e}"))?;
            for c in certs {
                roots.add(c.map_err(|e| format!("ca_cert {ca}: {e}"))?).map_err(|e| format!("ca_cert {ca}: {e}"))?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            s = s.set_config(Arc::new(cfg));
        }
        Ok(s)
    }
}

/// A directory entry as the server uses it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub dn: String,
    pub id: String,
    pub name: String,
    pub is_group: bool,
    pub attrs: std::collections::HashMap<String, Vec<String>>,
}

/// The configured directory, if any.
#[derive(Default)]
pub struct ExtAuth {
    cfg: RwLock<Option<Arc<LdapConfig>>>,
}

impl ExtAuth {
    pub fn config(&self) -> Option<Arc<LdapConfig>> {
        self.cfg.read().ok().and_then(|c| c.clone())
    }
    pub fn set(&self, c: Option<LdapConfig>) {
        if let Ok(mut g) = self.cfg.write() {
            *g = c.map(Arc::new);
        }
    }
}

/// One bound connection.
struct Conn {
    ldap: Ldap,
    cfg: Arc<LdapConfig>,
}

fn service<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> AuthErr + '_ {
    move |e| AuthErr::Service(format!("{what}: {e}"))
}

impl Conn {
    /// Connect and bind as the service account (anonymously without one).
    async fn open(cfg: Arc<LdapConfig>) -> AuthResult<Conn> {
        let settings = cfg.settings().map_err(AuthErr::Service)?;
        let t = cfg.timeout;
        let (conn, ldap) = tokio::time::timeout(t, LdapConnAsync::with_settings(settings, &cfg.url))
            .await
            .map_err(|_| AuthErr::Service(format!("{}: timed out connecting", cfg.url)))?
            .map_err(service(&cfg.url))?;
        ldap3::drive!(conn);
        let mut c = Conn { ldap, cfg };
        if !c.cfg.bind_dn.is_empty() {
            let (dn, pw) = (c.cfg.bind_dn.clone(), c.cfg.bind_password.clone());
            match c.bind(&dn, &pw).await? {
                true => {}
                false => return Err(AuthErr::Service(format!("the directory refused the bind DN {dn}"))),
            }
        }
        Ok(c)
    }

    /// A simple bind: Ok(false) for wrong credentials.
    async fn bind(&mut self, dn: &str, pw: &str) -> AuthResult<bool> {
        let r = tokio::time::timeout(self.cfg.timeout, self.ldap.simple_bind(dn, pw))
            .await
            .map_err(|_| AuthErr::Service("bind timed out".into()))?
            .map_err(service("bind"))?;
        match r.rc {
            0 => Ok(true),
            // invalidCredentials, inappropriateAuthentication, invalidDNSyntax,
            // unwillingToPerform (e.g. an unauthenticated bind)
            49 | 48 | 34 | 53 => Ok(false),
            rc => Err(AuthErr::Service(format!("bind: LDAP result {rc} {}", r.text))),
        }
    }

    async fn search(&mut self, base: &str, filter: &str) -> AuthResult<Vec<SearchEntry>> {
        let attrs = vec!["*", "+"];
        let r = tokio::time::timeout(self.cfg.timeout, self.ldap.search(base, Scope::Subtree, filter, attrs))
            .await
            .map_err(|_| AuthErr::Service("search timed out".into()))?
            .map_err(service("search"))?;
        // noSuchObject: the base is gone, so nothing matches.
        if r.1.rc == 32 {
            return Ok(Vec::new());
        }
        let (entries, _) = r.success().map_err(service("search"))?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            // ldap3 panics on a malformed entry; a bad answer must not take
            // the server down, so it becomes a service error.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(e))) {
                Ok(se) => out.push(se),
                Err(_) => return Err(AuthErr::Service("the directory sent a malformed entry".into())),
            }
        }
        Ok(out)
    }

    fn entry(&self, se: SearchEntry, is_group: bool) -> AuthResult<Entry> {
        let first =
            |a: &str| se.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(a)).and_then(|(_, v)| v.first().cloned());
        let id = first(&self.cfg.id_attribute)
            .ok_or_else(|| AuthErr::Service(format!("{} has no {}", se.dn, self.cfg.id_attribute)))?;
        let name_attr = if is_group { &self.cfg.group_name_attribute } else { &self.cfg.user_name_attribute };
        let name = first(name_attr).unwrap_or_default();
        Ok(Entry { dn: se.dn, id, name, is_group, attrs: se.attrs })
    }

    async fn find_user(&mut self, name: &str) -> AuthResult<Option<Entry>> {
        let f = format!("(&{}({}={}))", self.cfg.user_filter, self.cfg.user_name_attribute, ldap_escape(name));
        let base = self.cfg.user_base.clone();
        let mut found = self.search(&base, &f).await?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(Some(self.entry(found.remove(0), false)?)),
            n => Err(AuthErr::Service(format!("{n} directory entries are named {name}"))),
        }
    }

    async fn find_group(&mut self, name: &str) -> AuthResult<Option<Entry>> {
        let f = format!("(&{}({}={}))", self.cfg.group_filter, self.cfg.group_name_attribute, ldap_escape(name));
        let base = self.cfg.group_base.clone();
        let mut found = self.search(&base, &f).await?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(Some(self.entry(found.remove(0), true)?)),
            n => Err(AuthErr::Service(format!("{n} directory groups are named {name}"))),
        }
    }

    /// The user or group with this subject identifier.
    async fn by_id(&mut self, id: &str) -> AuthResult<Entry> {
        let cfg = self.cfg.clone();
        let f = format!("(&{}({}={}))", cfg.user_filter, cfg.id_attribute, ldap_escape(id));
        if let Some(se) = self.search(&cfg.user_base, &f).await?.into_iter().next() {
            return self.entry(se, false);
        }
        let f = format!("(&{}({}={}))", cfg.group_filter, cfg.id_attribute, ldap_escape(id));
        if let Some(se) = self.search(&cfg.group_base, &f).await?.into_iter().next() {
            return self.entry(se, true);
        }
        Err(AuthErr::NotFound(format!("subject {id} is not in the directory")))
    }

    /// The groups containing `e`, nested groups followed (bounded).
    async fn groups_of(&mut self, e: &Entry) -> AuthResult<Vec<Entry>> {
        let cfg = self.cfg.clone();
        let mut out: Vec<Entry> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut todo: Vec<Entry> = vec![e.clone()];
        // Nesting deeper than this is refused rather than followed forever.
        let mut rounds = 0;
        while let Some(cur) = todo.pop() {
            rounds += 1;
            if rounds > 256 {
                return Err(AuthErr::Service("group nesting too deep".into()));
            }
            let mut alts = format!("({}={})", cfg.group_member_attribute, ldap_escape(&cur.dn));
            if !cur.is_group && !cur.name.is_empty() {
                alts.push_str(&format!("(memberUid={})", ldap_escape(&cur.name)));
            }
            let f = format!("(&{}(|{alts}))", cfg.group_filter);
            for se in self.search(&cfg.group_base, &f).await? {
                let g = self.entry(se, true)?;
                if seen.insert(g.id.clone()) {
                    todo.push(g.clone());
                    out.push(g);
                }
            }
        }
        Ok(out)
    }

    async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

async fn with_conn<T, F>(s: &Server, f: F) -> AuthResult<T>
where
    F: for<'c> FnOnce(&'c mut Conn) -> std::pin::Pin<Box<dyn std::future::Future<Output = AuthResult<T>> + Send + 'c>>,
{
    let cfg = s.extauth.config().ok_or_else(|| AuthErr::Service("external authentication is disabled".into()))?;
    let mut c = Conn::open(cfg).await?;
    let out = f(&mut c).await;
    c.close().await;
    out
}

/// Check a directory user's password; its subject identifier.
pub async fn authenticate(s: &Server, user: &str, password: &str) -> AuthResult<String> {
    // An empty password would be an unauthenticated bind, which LDAP
    // servers accept as anonymous.
    if password.is_empty() || user.is_empty() {
        return Err(AuthErr::Failure("empty user name or password".into()));
    }
    let (user, password) = (user.to_string(), password.to_string());
    with_conn(s, move |c| {
        Box::pin(async move {
            let e = c.find_user(&user).await?.ok_or_else(|| AuthErr::Failure(format!("unknown user {user}")))?;
            if !c.bind(&e.dn, &password).await? {
                return Err(AuthErr::Failure("wrong password".into()));
            }
            Ok(e.id)
        })
    })
    .await
}

/// The subject's groups (transitively), as subject identifiers.
pub async fn group_membership(s: &Server, id: &str) -> AuthResult<Vec<String>> {
    let id = id.to_string();
    with_conn(s, move |c| {
        Box::pin(async move {
            let e = c.by_id(&id).await?;
            Ok(c.groups_of(&e).await?.into_iter().map(|g| g.id).collect())
        })
    })
    .await
}

/// A user's or group's identifier from its name.
pub async fn subject_identifier(s: &Server, name: &str) -> AuthResult<String> {
    let name = name.to_string();
    with_conn(s, move |c| {
        Box::pin(async move {
            if let Some(u) = c.find_user(&name).await? {
                return Ok(u.id);
            }
            if let Some(g) = c.find_group(&name).await? {
                return Ok(g.id);
            }
            Err(AuthErr::NotFound(format!("{name} is not in the directory")))
        })
    })
    .await
}

/// xapi's subject information keys for a user or group.
pub async fn subject_information(s: &Server, id: &str) -> AuthResult<BTreeMap<String, String>> {
    let id = id.to_string();
    let disabled_attr = s.extauth.config().map(|c| c.disabled_attribute.clone()).unwrap_or_default();
    with_conn(s, move |c| {
        Box::pin(async move {
            let e = c.by_id(&id).await?;
            let first = |a: &str| {
                e.attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(a))
                    .and_then(|(_, v)| v.first().cloned())
                    .unwrap_or_default()
            };
            let mut m = BTreeMap::new();
            m.insert("subject-name".into(), e.name.clone());
            m.insert("subject-sid".into(), e.id.clone());
            m.insert("subject-is-group".into(), e.is_group.to_string());
            m.insert("subject-gid".into(), first("gidNumber"));
            if !e.is_group {
                let disabled = e.attrs.keys().any(|k| k.eq_ignore_ascii_case(&disabled_attr));
                m.insert("subject-uid".into(), first("uidNumber"));
                m.insert("subject-gecos".into(), first("gecos"));
                let display = first("displayName");
                m.insert("subject-displayname".into(), if display.is_empty() { first("cn") } else { display });
                m.insert("subject-upn".into(), first("mail"));
                m.insert("subject-account-disabled".into(), disabled.to_string());
                m.insert("subject-account-locked".into(), disabled.to_string());
                m.insert("subject-account-expired".into(), "false".into());
                m.insert("subject-password-expired".into(), "false".into());
            }
            Ok(m)
        })
    })
    .await
}

/// Whether a user is disabled in the directory (the `disabled_attribute`).
async fn is_suspended(s: &Server, id: &str) -> AuthResult<bool> {
    let info = subject_information(s, id).await?;
    Ok(info.get("subject-account-disabled").map(String::as_str) == Some("true"))
}

/// A directory login's outcome: who, and the best role.
pub struct Identity {
    pub subject: String,
    pub sid: String,
    pub role: Role,
}

/// The subjects among `sids` (a user and its groups) and the best role
/// they hold. None: no subject is listed.
fn subjects_and_role(s: &Server, sids: &[String]) -> Option<(String, Option<Role>)> {
    let sc = &model::schema::CLASS_SUBJECT;
    let rc = &model::schema::CLASS_ROLE;
    let st = s.db.read();
    let (sid_f, roles_f) = (fields::subject::SUBJECT_IDENTIFIER.index, fields::subject::ROLES.index);
    let mut first: Option<String> = None;
    let mut best: Option<Role> = None;
    // The user's own subject first, then its groups', as xapi orders them.
    for sid in sids {
        for (r, e) in st.table(sc).rows.iter() {
            if e.row.get(sid_f).as_str() != Some(sid.as_str()) {
                continue;
            }
            first.get_or_insert_with(|| r.clone());
            if let Value::Array(roles) = e.row.get(roles_f) {
                for role in roles.iter().filter_map(Value::as_str) {
                    let name = st.get(rc, role).map(|row| row.read(fields::role::NAME_LABEL));
                    if let Some(r) = name.as_deref().and_then(Role::from_name) {
                        best = Some(best.map_or(r, |b| b.min(r)));
                    }
                }
            }
        }
    }
    first.map(|f| (f, best))
}

/// Log a directory user in: check the password, gather its groups, find
/// its subjects and their roles (xapi's `login_with_password` for external
/// users). The caller applies the failure delay.
pub async fn login(s: &Server, user: &str, password: &str) -> Result<Identity> {
    let auth_failed = |m: String| ApiError::SessionAuthenticationFailed { uname: user.to_string(), message: m };
    let authz_failed = |m: String| ApiError::SessionAuthorizationFailed { username: user.to_string(), msg: m };
    let sid = match authenticate(s, user, password).await {
        Ok(sid) => sid,
        Err(AuthErr::Failure(m)) | Err(AuthErr::NotFound(m)) => {
            tracing::info!(user, "directory login failed: {m}");
            return Err(auth_failed(format!("Authentication failure: {m}")));
        }
        Err(AuthErr::Service(m)) => {
            tracing::warn!(user, "directory unusable at login: {m}");
            return Err(authz_failed(m));
        }
    };
    match is_suspended(s, &sid).await {
        Ok(false) => {}
        Ok(true) => {
            return Err(authz_failed(format!("User {user} (subject_id {sid}) suspended in external directory")))
        }
        Err(e) => return Err(authz_failed(e.to_string())),
    }
    let mut sids = vec![sid.clone()];
    match group_membership(s, &sid).await {
        Ok(g) => sids.extend(g),
        Err(e) => return Err(authz_failed(e.to_string())),
    }
    let Some((subject, role)) = subjects_and_role(s, &sids) else {
        return Err(authz_failed(format!("Subject {user} (identifier {sid}) has no access rights in this pool")));
    };
    let Some(role) = role else {
        return Err(ApiError::RbacPermissionDenied {
            permission: user.to_string(),
            message: format!("Subject {user} (identifier {sid}) has no roles in this pool"),
        });
    };
    Ok(Identity { subject, sid, role })
}

/// The secret holding the bind password, named in the stored configuration.
const PASSWORD_SECRET_KEY: &str = "bind_password_secret";

/// Enable LDAP on this host: check the settings against the directory
/// (connect and bind), then record them (the password in a secret).
pub async fn enable(s: &Server, config: BTreeMap<String, String>, service_name: &str, auth_type: &str) -> Result<()> {
    let hc = &model::schema::CLASS_HOST;
    let row = s.row(hc, &s.host)?;
    let current = row.read(fields::host::EXTERNAL_AUTH_TYPE);
    if !current.is_empty() {
        return Err(ApiError::AuthAlreadyEnabled {
            current_auth_type: current,
            current_service_name: row
                .get(fields::host::EXTERNAL_AUTH_SERVICE_NAME.index)
                .as_str()
                .unwrap_or("")
                .to_string(),
        });
    }
    if !auth_type.eq_ignore_ascii_case(AUTH_TYPE) {
        return Err(ApiError::AuthUnknownType { r#type: auth_type.to_string() });
    }
    let cfg = LdapConfig::from_map(&config, None).map_err(|m| ApiError::AuthEnableFailed { message: m })?;
    // Try it: a directory we cannot reach or bind to is refused now.
    match Conn::open(Arc::new(cfg.clone())).await {
        Ok(c) => c.close().await,
        Err(AuthErr::Service(m)) if m.contains("refused the bind DN") => {
            return Err(ApiError::AuthEnableFailedWrongCredentials { message: m })
        }
        Err(e) => return Err(ApiError::AuthEnableFailedUnavailable { message: e.to_string() }),
    }
    let mut stored = config.clone();
    stored.remove("bind_password");
    let secret_c = &model::schema::CLASS_SECRET;
    let secret_ref = model::new_ref();
    let secret_uuid = model::new_uuid();
    if !cfg.bind_password.is_empty() {
        stored.insert(PASSWORD_SECRET_KEY.into(), secret_uuid.clone());
    }
    let stored_v = Value::Struct(stored.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    let host = s.host.clone();
    let password = cfg.bind_password.clone();
    s.db.write(|tx| {
        if !password.is_empty() {
            let mut srow = store::blank_row(secret_c);
            srow.fields[fields::secret::UUID.index] = Value::from(secret_uuid.as_str());
            srow.fields[fields::secret::VALUE.index] = Value::from(password.as_str());
            tx.insert(&secret_ref, srow);
        }
        tx.update(hc, &host, |r| {
            r.fields[fields::host::EXTERNAL_AUTH_TYPE.index] = Value::from(AUTH_TYPE);
            r.fields[fields::host::EXTERNAL_AUTH_SERVICE_NAME.index] = Value::from(service_name);
            r.fields[fields::host::EXTERNAL_AUTH_CONFIGURATION.index] = stored_v.clone();
        });
        Ok::<_, ApiError>(())
    })?;
    s.extauth.set(Some(cfg));
    tracing::info!(service_name, "external authentication (LDAP) enabled");
    Ok(())
}

/// Disable external auth: forget the settings and the password, and end
/// every directory user's session (only local root can log in after).
pub fn disable(s: &Server) -> Result<()> {
    let hc = &model::schema::CLASS_HOST;
    let row = s.row(hc, &s.host)?;
    let secret_uuid = match row.get(fields::host::EXTERNAL_AUTH_CONFIGURATION.index) {
        Value::Struct(m) => {
            m.iter().find(|(k, _)| k == PASSWORD_SECRET_KEY).and_then(|(_, v)| v.as_str().map(str::to_string))
        }
        _ => None,
    };
    let host = s.host.clone();
    let secret_c = &model::schema::CLASS_SECRET;
    s.db.write(|tx| {
        if let Some(u) = &secret_uuid {
            if let Some(r) = tx.state().table(secret_c).by_uuid(u).map(str::to_string) {
                tx.delete(secret_c, &r);
            }
        }
        tx.update(hc, &host, |r| {
            r.write(fields::host::EXTERNAL_AUTH_TYPE, String::new());
            r.write(fields::host::EXTERNAL_AUTH_SERVICE_NAME, String::new());
            r.fields[fields::host::EXTERNAL_AUTH_CONFIGURATION.index] = Value::Struct(Vec::new());
        });
        Ok::<_, ApiError>(())
    })?;
    s.extauth.set(None);
    let ended = s.sessions.logout_where(s, |_, row| !row.read(fields::session::IS_LOCAL_SUPERUSER));
    tracing::info!(ended, "external authentication disabled");
    Ok(())
}

/// Load the stored settings at start.
pub fn startup(s: &Server) {
    spawn_revalidation(s.clone());
    let hc = &model::schema::CLASS_HOST;
    let Ok(row) = s.row(hc, &s.host) else { return };
    if row.read(fields::host::EXTERNAL_AUTH_TYPE).as_str() != AUTH_TYPE {
        return;
    }
    let map: BTreeMap<String, String> = match row.get(fields::host::EXTERNAL_AUTH_CONFIGURATION.index) {
        Value::Struct(m) => m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect(),
        _ => BTreeMap::new(),
    };
    let password = map.get(PASSWORD_SECRET_KEY).and_then(|u| {
        let sc = &model::schema::CLASS_SECRET;
        let st = s.db.read();
        let r = st.table(sc).by_uuid(u)?.to_string();
        st.read(&r, fields::secret::VALUE)
    });
    match LdapConfig::from_map(&map, password) {
        Ok(c) => s.extauth.set(Some(c)),
        Err(e) => tracing::error!("stored LDAP configuration unusable, directory logins refused: {e}"),
    }
}

/// Revalidate directory sessions every `session_revalidation_interval`: a
/// user gone from the directory, disabled there, or no longer listed as a
/// subject (itself or through a group) loses its sessions. An unreachable
/// directory ends nothing (xapi keeps sessions when it cannot tell).
pub fn spawn_revalidation(s: Server) {
    let every = s.cfg.session_revalidation_interval;
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.tick().await;
        loop {
            t.tick().await;
            if s.extauth.config().is_some() {
                revalidate(&s).await;
            }
        }
    });
}

/// One revalidation pass; returns how many sessions ended.
pub async fn revalidate(s: &Server) -> usize {
    let sc = &model::schema::CLASS_SESSION;
    let sids: HashSet<String> = {
        let st = s.db.read();
        st.table(sc)
            .rows
            .iter()
            .filter(|(_, e)| e.row.get(fields::session::IS_LOCAL_SUPERUSER.index).as_bool() != Some(true))
            .map(|(_, e)| e.row.read(fields::session::AUTH_USER_SID))
            .filter(|sid| !sid.is_empty())
            .collect()
    };
    let mut doomed: Vec<String> = Vec::new();
    for sid in sids {
        let keep = match is_suspended(s, &sid).await {
            Ok(true) => false,
            Ok(false) => match group_membership(s, &sid).await {
                Ok(groups) => {
                    let mut all = vec![sid.clone()];
                    all.extend(groups);
                    matches!(subjects_and_role(s, &all), Some((_, Some(_))))
                }
                Err(AuthErr::NotFound(_)) => false,
                Err(e) => {
                    tracing::warn!(sid, "session revalidation: directory unusable, sessions kept: {e}");
                    true
                }
            },
            Err(AuthErr::NotFound(_)) => false,
            Err(e) => {
                tracing::warn!(sid, "session revalidation: directory unusable, sessions kept: {e}");
                true
            }
        };
        if !keep {
            doomed.push(sid);
        }
    }
    let mut ended = 0;
    for sid in doomed {
        let n = s.sessions.logout_where(s, |_, row| row.read(fields::session::AUTH_USER_SID).as_str() == sid.as_str());
        tracing::info!(sid, sessions = n, "session revalidation: subject lost access");
        ended += n;
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn configuration_keys() {
        let base = [("url", "ldap://127.0.0.1:389"), ("user_base", "ou=people,dc=x")];
        let c = LdapConfig::from_map(&map(&base), None).expect("minimal config");
        assert_eq!(c.group_base, "ou=people,dc=x");
        assert_eq!(c.user_name_attribute, "uid");
        assert_eq!(c.id_attribute, "entryUUID");
        assert!(c.tls_verify && !c.starttls);
        assert_eq!(c.timeout, Duration::from_secs(5));
        let c = LdapConfig::from_map(&map(&[base[0], base[1], ("bind_password", "pw")]), Some("secret".into()))
            .expect("config");
        assert_eq!(c.bind_password, "secret", "the stored secret wins over the map");
        for bad in [
            vec![("user_base", "ou=p")],
            vec![("url", "http://x"), ("user_base", "ou=p")],
            vec![("url", "ldaps://x"), ("user_base", "ou=p"), ("starttls", "true")],
            vec![("url", "ldap://x")],
            vec![base[0], base[1], ("timeout_secs", "0")],
            vec![base[0], base[1], ("starttls", "maybe")],
            vec![base[0], base[1], ("user_filter", "objectClass=x")],
        ] {
            assert!(LdapConfig::from_map(&map(&bad), None).is_err(), "{bad:?}");
        }
    }
}
