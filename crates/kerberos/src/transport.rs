//! Kerberos over TCP (RFC 4120 §7.2.2): each message is preceded by its length as 4 bytes,
//! big-endian. One connection per request, as MIT krb5 does (a KDC may close after answering).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::KerberosError;

/// The largest reply accepted. An AS-REP with a big PAC is a few KiB; this bounds memory if
/// something else answers on the port.
pub(crate) const MAX_REPLY: usize = 256 * 1024;

/// Sends `message` to `kdc` ("host:port") and returns the reply without its length prefix.
/// `password_tried` says whether `message` carries the proof of the password (for the error).
pub(crate) async fn round_trip(
    kdc: &str,
    message: &[u8],
    password_tried: bool,
) -> Result<Vec<u8>, KerberosError> {
    let mut stream = TcpStream::connect(kdc)
        .await
        .map_err(|source| KerberosError::Connect {
            kdc: kdc.to_owned(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let transport = |source| KerberosError::Transport {
        kdc: kdc.to_owned(),
        password_tried,
        source,
    };
    let len = u32::try_from(message.len())
        .map_err(|_| KerberosError::Input("request too large".into()))?;
    let mut framed = Vec::with_capacity(message.len() + 4);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await.map_err(transport)?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await.map_err(transport)?;
    let len = u32::from_be_bytes(prefix);
    // The high bit is reserved for extensions (RFC 5021); no KDC we talk to uses it.
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len == 0 || len > MAX_REPLY {
        return Err(KerberosError::Protocol {
            detail: format!("the KDC announced a reply of {len} bytes"),
            password_tried,
        });
    }
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).await.map_err(transport)?;
    Ok(reply)
}
