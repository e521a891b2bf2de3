//! Just enough of an NBD client to read a dirty bitmap out of QEMU: QEMU
//! offers no QMP command that lists a bitmap's bits, but its NBD server
//! exports them as the `qemu:dirty-bitmap:NAME` metadata context, answered
//! by `NBD_CMD_BLOCK_STATUS` (the way libvirt's incremental backups read
//! them). Fixed-newstyle handshake, structured replies, one context, no
//! data reads.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const STRUCTURED_MAGIC: u32 = 0x668e_33ef;
const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_GO: u32 = 7;
const OPT_STRUCTURED_REPLY: u32 = 8;
const OPT_SET_META_CONTEXT: u32 = 10;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_META_CONTEXT: u32 = 4;
const INFO_EXPORT: u16 = 0;
const CMD_DISC: u16 = 2;
const CMD_BLOCK_STATUS: u16 = 7;
const REPLY_FLAG_DONE: u16 = 1;
const REPLY_TYPE_NONE: u16 = 0;
const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
/// `NBD_STATE_DIRTY` in a dirty-bitmap context's status flags.
const STATE_DIRTY: u32 = 1;
/// The most asked for in one block-status request (the length is 32-bit).
const MAX_REQUEST: u64 = 1 << 30;
/// The longest option reply or reply chunk accepted (QEMU's are small).
const MAX_PAYLOAD: u32 = 16 << 20;

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// The byte ranges `(offset, length)` marked dirty in bitmap `bitmap` of
/// export `export`, over the export's whole size, in order.
pub async fn dirty_ranges<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    export: &str,
    bitmap: &str,
) -> io::Result<Vec<(u64, u64)>> {
    let (size, context) = handshake(s, export, &format!("qemu:dirty-bitmap:{bitmap}")).await?;
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut off = 0u64;
    let mut cookie = 0u64;
    while off < size {
        cookie += 1;
        let len = (size - off).min(MAX_REQUEST);
        request(s, CMD_BLOCK_STATUS, cookie, off, len as u32).await?;
        let covered = block_status_reply(s, cookie, context, off, &mut out).await?;
        if covered == 0 {
            return Err(bad(format!("block status at {off} covered nothing")));
        }
        off += covered;
    }
    request(s, CMD_DISC, cookie + 1, 0, 0).await?;
    Ok(out)
}

/// Negotiate structured replies and the one metadata context, then enter
/// transmission: the export's size and the context's id.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, export: &str, query: &str) -> io::Result<(u64, u32)> {
    let mut hello = [0u8; 18];
    s.read_exact(&mut hello).await?;
    if &hello[..8] != b"NBDMAGIC" || u64::from_be_bytes(hello[8..16].try_into().unwrap_or_default()) != IHAVEOPT {
        return Err(bad("not a newstyle NBD server"));
    }
    let flags = u16::from_be_bytes([hello[16], hello[17]]);
    if flags & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(bad("the NBD server is not fixed-newstyle"));
    }
    s.write_all(&u32::from(flags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).to_be_bytes()).await?;

    option(s, OPT_STRUCTURED_REPLY, &[]).await?;
    let (kind, _) = option_reply(s, OPT_STRUCTURED_REPLY).await?;
    if kind != REP_ACK {
        return Err(bad("the NBD server refused structured replies"));
    }

    let mut data = Vec::new();
    put_str32(&mut data, export);
    data.extend_from_slice(&1u32.to_be_bytes());
    put_str32(&mut data, query);
    option(s, OPT_SET_META_CONTEXT, &data).await?;
    let mut context = None;
    loop {
        match option_reply(s, OPT_SET_META_CONTEXT).await? {
            (REP_META_CONTEXT, d) if d.len() >= 4 && &d[4..] == query.as_bytes() => {
                context = Some(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            }
            (REP_ACK, _) => break,
            (k, _) => return Err(bad(format!("unexpected reply {k} to SET_META_CONTEXT"))),
        }
    }
    let context = context.ok_or_else(|| bad(format!("the NBD server does not offer {query}")))?;

    let mut data = Vec::new();
    put_str32(&mut data, export);
    data.extend_from_slice(&0u16.to_be_bytes());
    option(s, OPT_GO, &data).await?;
    let mut size = None;
    loop {
        match option_reply(s, OPT_GO).await? {
            (REP_INFO, d) if d.len() >= 12 && u16::from_be_bytes([d[0], d[1]]) == INFO_EXPORT => {
                size = Some(u64::from_be_bytes(d[2..10].try_into().unwrap_or_default()));
            }
            (REP_INFO, _) => {}
            (REP_ACK, _) => break,
            (k, _) => return Err(bad(format!("unexpected reply {k} to GO"))),
        }
    }
    Ok((size.ok_or_else(|| bad("the NBD server did not say the export's size"))?, context))
}

fn put_str32(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

async fn option<S: AsyncWrite + Unpin>(s: &mut S, opt: u32, data: &[u8]) -> io::Result<()> {
    let mut m = Vec::with_capacity(16 + data.len());
    m.extend_from_slice(&IHAVEOPT.to_be_bytes());
    m.extend_from_slice(&opt.to_be_bytes());
    m.extend_from_slice(&(data.len() as u32).to_be_bytes());
    m.extend_from_slice(data);
    s.write_all(&m).await
}

/// One option reply: its type and data; an error reply is an error.
async fn option_reply<S: AsyncRead + Unpin>(s: &mut S, opt: u32) -> io::Result<(u32, Vec<u8>)> {
    let mut h = [0u8; 20];
    s.read_exact(&mut h).await?;
    let magic = u64::from_be_bytes(h[..8].try_into().unwrap_or_default());
    let got = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let kind = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let len = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    if magic != REPLY_MAGIC || got != opt || len > MAX_PAYLOAD {
        return Err(bad(format!("a malformed reply to option {opt}")));
    }
    let mut data = vec![0u8; len as usize];
    s.read_exact(&mut data).await?;
    if kind & (1 << 31) != 0 {
        return Err(bad(format!("option {opt} refused ({kind:#x}): {}", String::from_utf8_lossy(&data))));
    }
    Ok((kind, data))
}

async fn request<S: AsyncWrite + Unpin>(s: &mut S, cmd: u16, cookie: u64, off: u64, len: u32) -> io::Result<()> {
    let mut m = [0u8; 28];
    m[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
    m[6..8].copy_from_slice(&cmd.to_be_bytes());
    m[8..16].copy_from_slice(&cookie.to_be_bytes());
    m[16..24].copy_from_slice(&off.to_be_bytes());
    m[24..28].copy_from_slice(&len.to_be_bytes());
    s.write_all(&m).await
}

/// Read the chunks answering one block-status request from `off`: dirty
/// extents are appended to `out` (merged with a touching last one); the
/// number of bytes the answer covered.
async fn block_status_reply<S: AsyncRead + Unpin>(
    s: &mut S,
    cookie: u64,
    context: u32,
    off: u64,
    out: &mut Vec<(u64, u64)>,
) -> io::Result<u64> {
    let mut covered = 0u64;
    loop {
        let mut h = [0u8; 20];
        s.read_exact(&mut h).await?;
        let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let flags = u16::from_be_bytes([h[4], h[5]]);
        let kind = u16::from_be_bytes([h[6], h[7]]);
        let got = u64::from_be_bytes(h[8..16].try_into().unwrap_or_default());
        let len = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        if magic != STRUCTURED_MAGIC || got != cookie || len > MAX_PAYLOAD {
            return Err(bad("a malformed block status reply"));
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data).await?;
        if kind & (1 << 15) != 0 {
            let msg = data.get(6..).map(String::from_utf8_lossy).unwrap_or_default();
            return Err(bad(format!("block status failed: {msg}")));
        }
        match kind {
            REPLY_TYPE_BLOCK_STATUS if data.len() >= 4 && (data.len() - 4).is_multiple_of(8) => {
                if u32::from_be_bytes([data[0], data[1], data[2], data[3]]) == context {
                    for d in data[4..].chunks_exact(8) {
                        let n = u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
                        let dirty = u32::from_be_bytes([d[4], d[5], d[6], d[7]]) & STATE_DIRTY != 0;
                        let at = off + covered;
                        if dirty && n > 0 {
                            match out.last_mut() {
                                Some((o, l)) if *o + *l == at => *l += n,
                                _ => out.push((at, n)),
                            }
                        }
                        covered += n;
                    }
                }
            }
            REPLY_TYPE_NONE => {}
            k => return Err(bad(format!("unexpected block status chunk type {k}"))),
        }
        if flags & REPLY_FLAG_DONE != 0 {
            return Ok(covered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server speaking the protocol's side of one exchange: a 3 MiB
    /// export whose bitmap says [0, 64K) clean, [64K, 192K) dirty, the rest
    /// clean except its last 64 KiB, answered in two requests' worth.
    async fn server(mut s: tokio::net::UnixStream) {
        let mut hello = b"NBDMAGIC".to_vec();
        hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
        hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
        s.write_all(&hello).await.unwrap();
        let mut cf = [0u8; 4];
        s.read_exact(&mut cf).await.unwrap();
        let reply = |opt: u32, kind: u32, data: &[u8]| {
            let mut m = REPLY_MAGIC.to_be_bytes().to_vec();
            m.extend_from_slice(&opt.to_be_bytes());
            m.extend_from_slice(&kind.to_be_bytes());
            m.extend_from_slice(&(data.len() as u32).to_be_bytes());
            m.extend_from_slice(data);
            m
        };
        for _ in 0..3 {
            let mut h = [0u8; 16];
            s.read_exact(&mut h).await.unwrap();
            let opt = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            let len = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            let mut d = vec![0u8; len as usize];
            s.read_exact(&mut d).await.unwrap();
            if opt == OPT_SET_META_CONTEXT {
                let mut c = 9u32.to_be_bytes().to_vec();
                c.extend_from_slice(b"qemu:dirty-bitmap:cbt-1");
                s.write_all(&reply(opt, REP_META_CONTEXT, &c)).await.unwrap();
            }
            if opt == OPT_GO {
                let mut i = INFO_EXPORT.to_be_bytes().to_vec();
                i.extend_from_slice(&(3u64 << 20).to_be_bytes());
                i.extend_from_slice(&0u16.to_be_bytes());
                s.write_all(&reply(opt, REP_INFO, &i)).await.unwrap();
            }
            s.write_all(&reply(opt, REP_ACK, &[])).await.unwrap();
        }
        let k = 64u32 << 10;
        let answers: [&[(u32, u32)]; 2] = [&[(k, 0), (2 * k, 1), (k, 0)], &[(3 * (1 << 20) - 5 * k, 0), (k, 1)]];
        for extents in answers {
            let mut r = [0u8; 28];
            s.read_exact(&mut r).await.unwrap();
            let cookie = &r[8..16];
            let mut payload = 9u32.to_be_bytes().to_vec();
            for (n, f) in extents {
                payload.extend_from_slice(&n.to_be_bytes());
                payload.extend_from_slice(&f.to_be_bytes());
            }
            let mut m = STRUCTURED_MAGIC.to_be_bytes().to_vec();
            m.extend_from_slice(&REPLY_FLAG_DONE.to_be_bytes());
            m.extend_from_slice(&REPLY_TYPE_BLOCK_STATUS.to_be_bytes());
            m.extend_from_slice(cookie);
            m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            m.extend_from_slice(&payload);
            s.write_all(&m).await.unwrap();
        }
        let mut disc = [0u8; 28];
        s.read_exact(&mut disc).await.unwrap();
        assert_eq!(u16::from_be_bytes([disc[6], disc[7]]), CMD_DISC);
    }

    #[tokio::test]
    async fn dirty_extents_come_from_block_status() {
        let (mut a, b) = tokio::net::UnixStream::pair().unwrap();
        let srv = tokio::spawn(server(b));
        let got = dirty_ranges(&mut a, "cbt", "cbt-1").await.unwrap();
        let k = 64u64 << 10;
        assert_eq!(got, vec![(k, 2 * k), ((3 << 20) - k, k)]);
        srv.await.unwrap();
    }
}
