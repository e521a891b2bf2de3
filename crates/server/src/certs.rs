//! The host's TLS server certificate: the HTTPS listener asks [`CertStore`]
//! for it at every handshake, so installing or resetting one takes effect on
//! the next connection without a restart. The `Certificate` row of type
//! `host` mirrors the one in use (validity and SHA-256 fingerprint).
//!
//! `host.install_server_certificate` checks what xapi checks (PEM parses,
//! key and certificate belong together, the validity period covers now)
//! before anything changes; `reset_server_certificate` and
//! `emergency_reset_server_certificate` generate a self-signed one like
//! xapi's: CN and SANs are the host name and address, valid ten years.
//!
//! Each host also has an internal certificate (xapi's `host_internal`), its
//! own and never replaced by the user's: the hosts of a pool present it to
//! each other on the pool database's port, and accept only the ones the
//! pool's `host_internal` Certificate rows name.

use crate::{ApiError, Result, Server};
use model::types::{fields, CertificateType};
use model::{DateTime, Ref};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The certificate the HTTPS listener presents.
#[derive(Debug, Default)]
pub struct CertStore {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl CertStore {
    pub fn set(&self, ck: Arc<CertifiedKey>) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(ck);
        }
    }
    pub fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().and_then(|g| g.clone())
    }
}

impl rustls::server::ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// Where the certificate and key live: the configured files, or the data
/// directory's.
pub fn paths(cfg: &crate::Config) -> (PathBuf, PathBuf) {
    match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => (cfg.data_dir.join("tls-cert.pem"), cfg.data_dir.join("tls-key.pem")),
    }
}

/// A self-signed certificate as xapi generates one: (certificate PEM, key PEM).
pub fn generate(hostname: &str, address: &str) -> std::result::Result<(String, String), String> {
    let mut names = vec![hostname.to_string()];
    if !address.is_empty() && address != hostname {
        names.push(address.to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, hostname);
    // `YYYYMMDDT…`: the date of today, in UTC.
    let today = DateTime::now().to_string();
    let num = |a: usize, b: usize| today.get(a..b).and_then(|x| x.parse::<i32>().ok()).unwrap_or(1);
    let (y, mo, d) = (num(0, 4), num(4, 6) as u8, num(6, 8) as u8);
    params.not_before = rcgen::date_time_ymd(y, mo, d);
    params.not_after = rcgen::date_time_ymd(y + 10, mo, d.min(28));
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A checked certificate and key, ready to install.
pub struct Checked {
    pub key: Arc<CertifiedKey>,
    pub not_before: i64,
    pub not_after: i64,
    pub fingerprint: String,
}

fn iso(secs: i64) -> String {
    DateTime::utc(secs).to_string()
}

/// A certificate's validity (Unix seconds) and SHA-256 fingerprint.
fn describe(der: &[u8]) -> Option<(i64, i64, String)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
    let nb = parsed.validity().not_before.timestamp();
    let na = parsed.validity().not_after.timestamp();
    Some((nb, na, fingerprint(der)))
}

/// A certificate's SHA-256 fingerprint as its Certificate row gives it.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// The DNS name a client should expect in the server certificate, as
/// xapi's get_nbd_info picks it: the first subject name that is not a
/// wildcard, else the last one (SANs, else the common name); None when the
/// certificate names no host.
pub fn subject_name(s: &Server) -> Option<String> {
    let ck = s.certs.get()?;
    let der = ck.cert.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_string());
            }
        }
    }
    if names.is_empty() {
        names.extend(parsed.subject().iter_common_name().filter_map(|c| c.as_str().ok()).map(str::to_string));
    }
    names.iter().find(|n| !n.contains('*')).or(names.last()).cloned()
}

/// At start: `https_only` applies again, and the Certificate row describes
/// the certificate loaded.
pub fn startup(s: &Server) {
    let hc = &model::schema::CLASS_HOST;
    let closed =
        s.db.read().get(hc, &s.host).is_some_and(|r| r.get(fields::host::HTTPS_ONLY.index).as_bool() == Some(true));
    s.https_only.store(closed, std::sync::atomic::Ordering::Relaxed);
    if !s.cfg.ephemeral {
        if let Err(e) = record_internal(s) {
            tracing::warn!("cannot record this host's internal certificate: {e}");
        }
    }
    let Some(ck) = s.certs.get() else { return };
    let Some((nb, na, fp)) = ck.cert.first().and_then(|d| describe(d)) else {
        tracing::warn!("the server certificate cannot be described");
        return;
    };
    let c = Checked { key: ck.clone(), not_before: nb, not_after: na, fingerprint: fp };
    if let Err(e) = record(s, &c) {
        tracing::warn!("cannot record the server certificate: {e}");
    }
}

/// Parse and check a certificate, its key and chain as xapi does.
pub fn check(cert: &str, key: &str, chain: &str) -> Result<Checked> {
    let leaf = CertificateDer::from_pem_slice(cert.as_bytes()).map_err(|_| ApiError::ServerCertificateInvalid)?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|_| ApiError::ServerCertificateKeyInvalid)?;
    let mut certs = vec![leaf.clone()];
    if !chain.trim().is_empty() {
        for c in CertificateDer::pem_slice_iter(chain.as_bytes()) {
            certs.push(c.map_err(|_| ApiError::ServerCertificateChainInvalid)?);
        }
    }
    let (nb, na, fingerprint) = describe(&leaf).ok_or(ApiError::ServerCertificateInvalid)?;
    let now = DateTime::now().secs;
    if now < nb {
        return Err(ApiError::ServerCertificateNotValidYet { now: iso(now), not_before: iso(nb) });
    }
    if now > na {
        return Err(ApiError::ServerCertificateExpired { now: iso(now), not_after: iso(na) });
    }
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| ApiError::ServerCertificateKeyAlgorithmNotSupported { algorithm_oid: String::new() })?;
    let ck = CertifiedKey::new(certs, signer);
    match ck.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(ApiError::ServerCertificateKeyMismatch)
        }
        // The certificate itself is unusable (e.g. an X.509 v1 one).
        Err(e) => {
            tracing::info!("server certificate refused: {e}");
            return Err(ApiError::ServerCertificateInvalid);
        }
    }
    Ok(Checked { key: Arc::new(ck), not_before: nb, not_after: na, fingerprint })
}

/// Write a file whole or not at all (temporary file, fsync, rename).
fn write_atomic(path: &std::path::Path, data: &str, private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        if private {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Put a checked certificate in use: files, the listener, the Certificate row.
pub fn install(s: &Server, cert_pem: &str, key_pem: &str, chain: &str, c: Checked) -> Result<()> {
    if !s.cfg.ephemeral {
        let (cp, kp) = paths(&s.cfg);
        let mut full = cert_pem.trim_end().to_string();
        full.push('\n');
        if !chain.trim().is_empty() {
            full.push_str(chain.trim_end());
            full.push('\n');
        }
        write_atomic(&kp, key_pem, true).map_err(|e| crate::internal(format!("{}: {e}", kp.display())))?;
        write_atomic(&cp, &full, false).map_err(|e| crate::internal(format!("{}: {e}", cp.display())))?;
    }
    s.certs.set(c.key.clone());
    record(s, &c)?;
    tracing::info!(fingerprint = %c.fingerprint, "server certificate installed");
    Ok(())
}

/// The host's Certificate row (type host) describes the certificate in use.
pub fn record(s: &Server, c: &Checked) -> Result<()> {
    let host = s.host.clone();
    let (nb, na, fp) = (c.not_before, c.not_after, c.fingerprint.clone());
    s.db.write(|tx| {
        put_row(tx, &host, CertificateType::Host, (nb, na, fp.clone()));
        Ok::<_, ApiError>(())
    })?;
    Ok(())
}

/// Make `host`'s one Certificate row of type `ty` describe `(not_before,
/// not_after, fingerprint)`; unchanged when it already does (a pool member
/// writes through the master).
pub fn put_row(tx: &mut store::Txn, host: &str, ty: CertificateType, (nb, na, fp): (i64, i64, String)) {
    let cc = &model::schema::CLASS_CERTIFICATE;
    let mine: Vec<(String, bool)> = tx
        .state()
        .table(cc)
        .rows
        .iter()
        .filter(|(_, e)| {
            e.row.read(fields::certificate::HOST).as_str() == host && e.row.read(fields::certificate::TYPE) == ty
        })
        .map(|(r, e)| (r.clone(), e.row.read(fields::certificate::FINGERPRINT) == fp))
        .collect();
    if let [(_, true)] = mine.as_slice() {
        return;
    }
    for (r, _) in mine {
        tx.delete(cc, &r);
    }
    add_row(tx, host, ty, (nb, na, fp));
}

/// A new Certificate row for `host` of type `ty` describing `(not_before,
/// not_after, fingerprint)`, beside any it has.
fn add_row(tx: &mut store::Txn, host: &str, ty: CertificateType, (nb, na, fp): (i64, i64, String)) {
    let mut row = crate::rows::new_row(fields::certificate::UUID);
    row.write(fields::certificate::TYPE, ty);
    row.write(fields::certificate::HOST, Ref::new(host));
    row.write(fields::certificate::NOT_BEFORE, DateTime::utc(nb));
    row.write(fields::certificate::NOT_AFTER, DateTime::utc(na));
    row.write(fields::certificate::FINGERPRINT, fp);
    tx.insert(&model::new_ref(), row);
}

/// This host's internal certificate (see the module's comment).
pub struct Internal {
    pub pem: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pub described: (i64, i64, String),
}

/// Load this host's internal certificate from the data directory, made on
/// first use (outside the pool's directory, which a join or an eject
/// starts over: the certificate stays the host's).
pub fn internal(data_dir: &std::path::Path, hostname: &str, address: &str) -> std::result::Result<Internal, String> {
    let (cp, kp) = internal_paths(data_dir);
    if !cp.exists() || !kp.exists() {
        let (cert, key) = generate(hostname, address)?;
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        write_atomic(&kp, &key, true).map_err(|e| format!("{}: {e}", kp.display()))?;
        write_atomic(&cp, &cert, false).map_err(|e| format!("{}: {e}", cp.display()))?;
        tracing::info!("made this host's internal certificate ({})", cp.display());
    }
    let pem = std::fs::read_to_string(&cp).map_err(|e| format!("{}: {e}", cp.display()))?;
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("{}: {e}", cp.display()))?;
    let key = PrivateKeyDer::from_pem_file(&kp).map_err(|e| format!("{}: {e}", kp.display()))?;
    let described = describe(&cert).ok_or_else(|| format!("{}: not an X.509 certificate", cp.display()))?;
    Ok(Internal { pem, cert, key, described })
}

/// The internal certificate's and key's files.
fn internal_paths(data_dir: &std::path::Path) -> (PathBuf, PathBuf) {
    (data_dir.join("pool-cert.pem"), data_dir.join("pool-key.pem"))
}

/// `host.refresh_server_certificate`: a new internal certificate for this
/// host. The pool learns it before this host presents it (a second
/// `host_internal` row beside the old one; on the master, until every host
/// has the entry), and forgets the old one after, so no connection between
/// the hosts is refused on the way.
pub async fn refresh_internal(s: &Server) -> Result<()> {
    let (cert_pem, key_pem) = generate(&s.cfg.hostname, &s.cfg.address).map_err(crate::internal)?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| crate::internal(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| crate::internal(e.to_string()))?;
    let described = describe(&cert).ok_or_else(|| crate::internal("a new certificate that cannot be described"))?;
    let (host, fp) = (s.host.clone(), described.2.clone());
    s.db.write(|tx| {
        add_row(tx, &host, CertificateType::HostInternal, described.clone());
        Ok::<_, ApiError>(())
    })?;
    let pool = s.replica.get();
    if let Some(p) = pool.filter(|_| s.db.replicated() == Some(store::Role::Leader)) {
        if let Err(e) = p.replicated(std::time::Duration::from_secs(10)).await {
            tracing::warn!("presenting a new internal certificate before every host knows it: {e}");
        }
    }
    if !s.cfg.ephemeral {
        let (cp, kp) = internal_paths(&s.cfg.data_dir);
        write_atomic(&kp, &key_pem, true).map_err(|e| crate::internal(format!("{}: {e}", kp.display())))?;
        write_atomic(&cp, &cert_pem, false).map_err(|e| crate::internal(format!("{}: {e}", cp.display())))?;
    }
    if let Some(p) = pool {
        p.present(vec![cert], key).map_err(crate::internal)?;
    }
    s.db.write(|tx| {
        put_row(tx, &host, CertificateType::HostInternal, described);
        Ok::<_, ApiError>(())
    })?;
    tracing::info!(fingerprint = %fp, "new internal certificate in use");
    Ok(())
}

/// A certificate (PEM) as its Certificate row describes it.
pub fn describe_pem(pem: &str) -> Option<(i64, i64, String)> {
    describe(&CertificateDer::from_pem_slice(pem.as_bytes()).ok()?)
}

/// The pool database's TLS: this host's internal certificate, and the
/// pool's `host_internal` rows in `db` as the certificates it accepts.
pub fn engine_tls(db: Arc<store::Db>, own: Internal) -> std::result::Result<pooldb::Tls, String> {
    // At every handshake: the digest only, no certificate parsing.
    let trust: pooldb::Trust = Arc::new(move |der: &[u8]| {
        let fp = fingerprint(der);
        let st = db.read();
        let known = st.table(&model::schema::CLASS_CERTIFICATE).iter().any(|(_, r)| {
            r.read(fields::certificate::TYPE) == CertificateType::HostInternal
                && r.read(fields::certificate::FINGERPRINT) == fp
        });
        if !known {
            tracing::warn!(fingerprint = %fp, "a pool host presented a certificate the pool does not know: refused");
        }
        known
    });
    pooldb::Tls::new(vec![own.cert], own.key, trust)
}

/// At start: the host's `host_internal` row names its internal certificate.
pub fn record_internal(s: &Server) -> std::result::Result<(), String> {
    let own = internal(&s.cfg.data_dir, &s.cfg.hostname, &s.cfg.address)?;
    let host = s.host.clone();
    s.db.write(|tx| {
        put_row(tx, &host, CertificateType::HostInternal, own.described.clone());
        Ok::<_, ApiError>(())
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

/// Replace the certificate with a fresh self-signed one.
pub fn reset(s: &Server) -> Result<()> {
    let (cert, key) = generate(&s.cfg.hostname, &s.cfg.address).map_err(crate::internal)?;
    let c = check(&cert, &key, "")?;
    install(s, &cert, &key, "", c)
}

/// The certificate in use, PEM.
pub fn current_pem(s: &Server) -> Option<String> {
    let ck = s.certs.get()?;
    let der = ck.cert.first()?;
    let b64 = base64_encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    Some(out)
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A CA certificate's name: a plain file name (it names a file here, as in
/// xapi's trust store).
fn ca_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn ca_rows(s: &Server, name: &str) -> Vec<String> {
    let cc = &model::schema::CLASS_CERTIFICATE;
    let st = s.db.read();
    st.table(cc)
        .rows
        .iter()
        .filter(|(_, e)| {
            e.row.read(fields::certificate::TYPE) == CertificateType::Ca
                && e.row.read(fields::certificate::NAME) == name
        })
        .map(|(r, _)| r.clone())
        .collect()
}

/// `pool.install_ca_certificate`: a trusted CA kept under `<data dir>/ca/`
/// with a Certificate row of type `ca`.
pub fn install_ca(s: &Server, name: &str, cert: &str) -> Result<()> {
    if !ca_name_ok(name) {
        return Err(ApiError::CertificateNameInvalid { name: name.to_string() });
    }
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).map_err(|_| ApiError::CaCertificateInvalid)?;
    let (nb, na, fp) = describe(&der).ok_or(ApiError::CaCertificateInvalid)?;
    let now = DateTime::now().secs;
    if now < nb {
        return Err(ApiError::CaCertificateNotValidYet);
    }
    if now > na {
        return Err(ApiError::CaCertificateExpired);
    }
    if !ca_rows(s, name).is_empty() {
        return Err(ApiError::CertificateAlreadyExists { name: name.to_string() });
    }
    if !s.cfg.ephemeral {
        let dir = s.cfg.data_dir.join("ca");
        std::fs::create_dir_all(&dir).map_err(|e| crate::internal(format!("{}: {e}", dir.display())))?;
        write_atomic(&dir.join(name), cert, false).map_err(|e| crate::internal(e.to_string()))?;
    }
    s.db.write(|tx| {
        let mut row = crate::rows::new_row(fields::certificate::UUID);
        row.write(fields::certificate::NAME, name.to_string());
        row.write(fields::certificate::TYPE, CertificateType::Ca);
        row.write(fields::certificate::NOT_BEFORE, DateTime::utc(nb));
        row.write(fields::certificate::NOT_AFTER, DateTime::utc(na));
        row.write(fields::certificate::FINGERPRINT, fp.clone());
        tx.insert(&model::new_ref(), row);
        Ok::<_, ApiError>(())
    })?;
    Ok(())
}

/// `pool.uninstall_ca_certificate`.
pub fn uninstall_ca(s: &Server, name: &str) -> Result<()> {
    let rows = ca_rows(s, name);
    if rows.is_empty() || !ca_name_ok(name) {
        return Err(ApiError::CertificateDoesNotExist { name: name.to_string() });
    }
    if !s.cfg.ephemeral {
        let p = s.cfg.data_dir.join("ca").join(name);
        if let Err(e) = std::fs::remove_file(&p) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(crate::internal(format!("{}: {e}", p.display())));
            }
        }
    }
    let cc = &model::schema::CLASS_CERTIFICATE;
    s.db.write(|tx| {
        for r in &rows {
            tx.delete(cc, r);
        }
        Ok::<_, ApiError>(())
    })?;
    Ok(())
}
