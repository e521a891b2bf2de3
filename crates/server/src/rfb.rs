//! A small RFB (VNC) server for simulated consoles: the version and
//! security handshake (3.3, 3.7 and 3.8, security type None), ServerInit,
//! and Raw framebuffer updates of a fixed, deterministic picture.
//!
//! The picture never changes, so incremental update requests get no answer
//! (RFB lets a server wait until something changes). Only 32 bits-per-pixel
//! true-colour formats from SetPixelFormat are honoured; any other format
//! is ignored and pixels stay in the server's format.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The longest ClientCutText accepted; more closes the connection.
pub const MAX_CUT_TEXT: u32 = 1 << 20;

/// A 32 bpp true-colour pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub big_endian: bool,
    pub max: [u16; 3],
    pub shift: [u8; 3],
}

impl PixelFormat {
    /// Depth 24, little-endian, red at bit 16, green at 8, blue at 0.
    pub const DEFAULT: PixelFormat = PixelFormat { big_endian: false, max: [255, 255, 255], shift: [16, 8, 0] };

    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0] = 32;
        b[1] = 24;
        b[2] = u8::from(self.big_endian);
        b[3] = 1;
        for i in 0..3 {
            b[4 + 2 * i..6 + 2 * i].copy_from_slice(&self.max[i].to_be_bytes());
            b[10 + i] = self.shift[i];
        }
        b
    }

    /// A client's format, if it is one we can produce (32 bpp true colour
    /// with shifts that fit in 32 bits).
    fn decode(b: &[u8; 16]) -> Option<PixelFormat> {
        if b[0] != 32 || b[3] == 0 {
            return None;
        }
        let max =
            [u16::from_be_bytes([b[4], b[5]]), u16::from_be_bytes([b[6], b[7]]), u16::from_be_bytes([b[8], b[9]])];
        let shift = [b[10], b[11], b[12]];
        if shift.iter().any(|s| *s > 31) {
            return None;
        }
        Some(PixelFormat { big_endian: b[2] != 0, max, shift })
    }

    fn pixel(&self, rgb: [u8; 3]) -> [u8; 4] {
        let mut v: u32 = 0;
        for ((c, max), shift) in rgb.iter().zip(self.max).zip(self.shift) {
            let c = u32::from(*c) * u32::from(max) / 255;
            v |= c.checked_shl(u32::from(shift)).unwrap_or(0);
        }
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
}

/// The simulated screen: a colour gradient with a checkerboard in blue.
pub fn pattern(x: u32, y: u32, width: u32, height: u32) -> [u8; 3] {
    let r = (x * 255 / width.max(1)) as u8;
    let g = (y * 255 / height.max(1)) as u8;
    let b = if (x / 32 + y / 32).is_multiple_of(2) { 0x40 } else { 0xc0 };
    [r, g, b]
}

/// Read exactly `buf`; Ok(false) at a clean end of stream.
async fn read(r: &mut (dyn AsyncRead + Unpin + Send), buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// The minor version the client chose (3, 7 or 8), or None to hang up.
fn client_version(b: &[u8; 12]) -> Option<u32> {
    let s = std::str::from_utf8(b).ok()?;
    let rest = s.strip_prefix("RFB ")?.strip_suffix('\n')?;
    let (major, minor) = rest.split_once('.')?;
    if major.len() != 3 || minor.len() != 3 {
        return None;
    }
    let major: u32 = major.parse().ok()?;
    let minor: u32 = minor.parse().ok()?;
    if major != 3 {
        return None;
    }
    // Unknown minors below 7 are 3.3 (RFC 6143 §7.1.1); above 8, 3.8.
    Some(match minor {
        0..=6 => 3,
        7 => 7,
        _ => 8,
    })
}

/// Serve one RFB session until the client leaves or misbehaves.
pub async fn serve(
    r: &mut (dyn AsyncRead + Unpin + Send),
    w: &mut (dyn AsyncWrite + Unpin + Send),
    width: u16,
    height: u16,
    name: &str,
) -> io::Result<()> {
    w.write_all(b"RFB 003.008\n").await?;
    w.flush().await?;
    let mut v = [0u8; 12];
    if !read(r, &mut v).await? {
        return Ok(());
    }
    let Some(minor) = client_version(&v) else { return Ok(()) };
    if minor == 3 {
        // 3.3: the server decides; None.
        w.write_all(&1u32.to_be_bytes()).await?;
    } else {
        w.write_all(&[1, 1]).await?;
        w.flush().await?;
        let mut choice = [0u8; 1];
        if !read(r, &mut choice).await? {
            return Ok(());
        }
        if choice[0] != 1 {
            if minor == 8 {
                let why = b"unsupported security type";
                w.write_all(&1u32.to_be_bytes()).await?;
                w.write_all(&(why.len() as u32).to_be_bytes()).await?;
                w.write_all(why).await?;
                w.flush().await?;
            }
            return Ok(());
        }
        if minor == 8 {
            w.write_all(&0u32.to_be_bytes()).await?;
        }
    }
    w.flush().await?;
    let mut shared = [0u8; 1];
    if !read(r, &mut shared).await? {
        return Ok(());
    }
    let mut init = Vec::with_capacity(24 + name.len());
    init.extend_from_slice(&width.to_be_bytes());
    init.extend_from_slice(&height.to_be_bytes());
    init.extend_from_slice(&PixelFormat::DEFAULT.encode());
    init.extend_from_slice(&(name.len() as u32).to_be_bytes());
    init.extend_from_slice(name.as_bytes());
    w.write_all(&init).await?;
    w.flush().await?;
    messages(r, w, width, height).await
}

async fn messages(
    r: &mut (dyn AsyncRead + Unpin + Send),
    w: &mut (dyn AsyncWrite + Unpin + Send),
    width: u16,
    height: u16,
) -> io::Result<()> {
    let mut format = PixelFormat::DEFAULT;
    loop {
        let mut t = [0u8; 1];
        if !read(r, &mut t).await? {
            return Ok(());
        }
        match t[0] {
            // SetPixelFormat: 3 padding, 16 bytes of format.
            0 => {
                let mut b = [0u8; 19];
                if !read(r, &mut b).await? {
                    return Ok(());
                }
                let mut pf = [0u8; 16];
                pf.copy_from_slice(&b[3..]);
                if let Some(f) = PixelFormat::decode(&pf) {
                    format = f;
                }
            }
            // SetEncodings: 1 padding, a count, that many i32s (Raw is always allowed).
            2 => {
                let mut b = [0u8; 3];
                if !read(r, &mut b).await? {
                    return Ok(());
                }
                let n = u16::from_be_bytes([b[1], b[2]]) as usize;
                let mut e = vec![0u8; n * 4];
                if !read(r, &mut e).await? {
                    return Ok(());
                }
            }
            // FramebufferUpdateRequest: incremental, x, y, w, h.
            3 => {
                let mut b = [0u8; 9];
                if !read(r, &mut b).await? {
                    return Ok(());
                }
                if b[0] != 0 {
                    // Nothing ever changes.
                    continue;
                }
                let g = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
                update(w, &format, (g(1), g(3), g(5), g(7)), width, height).await?;
            }
            // KeyEvent: down flag, 2 padding, keysym.
            4 => {
                let mut b = [0u8; 7];
                if !read(r, &mut b).await? {
                    return Ok(());
                }
            }
            // PointerEvent: button mask, x, y.
            5 => {
                let mut b = [0u8; 5];
                if !read(r, &mut b).await? {
                    return Ok(());
                }
            }
            // ClientCutText: 3 padding, length, text.
            6 => {
                let mut b = [0u8; 7];
                if !read(r, &mut b).await? {
                    return Ok(());
                }
                let n = u32::from_be_bytes([b[3], b[4], b[5], b[6]]);
                if n > MAX_CUT_TEXT {
                    return Ok(());
                }
                let mut text = vec![0u8; n as usize];
                if !read(r, &mut text).await? {
                    return Ok(());
                }
            }
            _ => return Ok(()),
        }
    }
}

/// One FramebufferUpdate: the requested region clipped to the screen, as a
/// single Raw rectangle (none when the region lies outside).
async fn update(
    w: &mut (dyn AsyncWrite + Unpin + Send),
    format: &PixelFormat,
    (x, y, rw, rh): (u16, u16, u16, u16),
    width: u16,
    height: u16,
) -> io::Result<()> {
    let x1 = (u32::from(x) + u32::from(rw)).min(u32::from(width));
    let y1 = (u32::from(y) + u32::from(rh)).min(u32::from(height));
    let (x0, y0) = (u32::from(x), u32::from(y));
    if x0 >= x1 || y0 >= y1 {
        w.write_all(&[0, 0, 0, 0]).await?;
        return w.flush().await;
    }
    let mut head = vec![0u8, 0, 0, 1];
    for v in [x0, y0, x1 - x0, y1 - y0] {
        head.extend_from_slice(&(v as u16).to_be_bytes());
    }
    head.extend_from_slice(&0i32.to_be_bytes());
    w.write_all(&head).await?;
    let mut row = Vec::with_capacity(((x1 - x0) * 4) as usize);
    for py in y0..y1 {
        row.clear();
        for px in x0..x1 {
            row.extend_from_slice(&format.pixel(pattern(px, py, u32::from(width), u32::from(height))));
        }
        w.write_all(&row).await?;
    }
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn session(client: &[u8]) -> Vec<u8> {
        let mut r: &[u8] = client;
        let mut out = Vec::new();
        serve(&mut r, &mut out, 4, 2, "vm").await.unwrap();
        out
    }

    #[tokio::test]
    async fn handshake_38_and_update() {
        let mut c = b"RFB 003.008\n".to_vec();
        c.extend_from_slice(&[1, 1]); // security None, shared
        c.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 100, 0, 100]); // full update, clipped
        c.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 4, 0, 2]); // incremental: ignored
        let out = session(&c).await;
        assert_eq!(&out[..12], b"RFB 003.008\n");
        assert_eq!(&out[12..14], &[1, 1]);
        assert_eq!(&out[14..18], &[0, 0, 0, 0]);
        let init = &out[18..];
        assert_eq!(&init[..4], &[0, 4, 0, 2]);
        assert_eq!(&init[4..8], &[32, 24, 0, 1]);
        assert_eq!(&init[20..24], &[0, 0, 0, 2]);
        assert_eq!(&init[24..26], b"vm");
        let upd = &init[26..];
        assert_eq!(&upd[..4], &[0, 0, 0, 1]);
        assert_eq!(&upd[4..12], &[0, 0, 0, 0, 0, 4, 0, 2]);
        assert_eq!(upd.len(), 16 + 4 * 2 * 4);
    }

    #[tokio::test]
    async fn handshake_33_and_bad_input() {
        let mut c = b"RFB 003.003\n".to_vec();
        c.push(0);
        c.extend_from_slice(&[6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]); // huge cut text: hang up
        let out = session(&c).await;
        assert_eq!(&out[12..16], &[0, 0, 0, 1]);
        assert_eq!(&out[16..18], &[0, 4]);
        assert!(session(b"HTTP/1.1 200").await.len() == 12);
        assert!(session(b"RFB 004.000\n").await.len() == 12);
        // 3.7 with a wrong security type: no result, hang up.
        let out = session(b"RFB 003.007\n\x02").await;
        assert_eq!(out.len(), 14);
        // Truncated messages and unknown types close cleanly.
        let mut c = b"RFB 003.008\n\x01\x01".to_vec();
        c.extend_from_slice(&[2, 0, 0, 9]);
        session(&c).await;
        let mut c = b"RFB 003.008\n\x01\x01".to_vec();
        c.push(99);
        session(&c).await;
    }

    #[test]
    fn pixel_formats() {
        assert_eq!(PixelFormat::DEFAULT.pixel([1, 2, 3]), [3, 2, 1, 0]);
        let be = PixelFormat { big_endian: true, max: [255, 255, 255], shift: [0, 8, 16] };
        assert_eq!(be.pixel([1, 2, 3]), [0, 3, 2, 1]);
        let mut b = PixelFormat::DEFAULT.encode();
        assert_eq!(PixelFormat::decode(&b), Some(PixelFormat::DEFAULT));
        b[0] = 16;
        assert_eq!(PixelFormat::decode(&b), None);
    }
}
