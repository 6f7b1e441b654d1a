//! The first bytes a TLS connector reads, kept (real world only).
//!
//! An acceptor at a connection cap refuses before any handshake, in plaintext: a
//! refusal frame ([`crate::bounds::refusal_frame`]) where a TLS server's first answer
//! was due. rustls then fails with a decoding error that says nothing about why;
//! [`Sniffed`] keeps what the connection delivered first, so the connector can find the
//! refusal in it and report the acceptor's reason ([`refusal_in`]).

use crate::bounds::{parse_refusal, MAX_REFUSAL_BYTES};
use crate::frame;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes kept: a whole refusal frame, header included.
const KEEP: usize = frame::HEADER_LEN + MAX_REFUSAL_BYTES;

/// The first bytes read from a stream, shared with whoever wraps it.
pub(crate) type FirstBytes = Arc<Mutex<Vec<u8>>>;

/// A TCP stream that keeps the first [`KEEP`] bytes it reads.
pub(crate) struct Sniffed {
    inner: TcpStream,
    first: FirstBytes,
}

impl Sniffed {
    /// Wraps `inner`; the returned handle sees the bytes read through the wrapper.
    pub(crate) fn new(inner: TcpStream) -> (Sniffed, FirstBytes) {
        let first = FirstBytes::default();
        (
            Sniffed {
                inner,
                first: first.clone(),
            },
            first,
        )
    }
}

/// The reason of a refusal frame at the start of `first`, if that is what it holds.
pub(crate) fn refusal_in(first: &FirstBytes) -> Option<String> {
    let bytes = sim_runtime::sync::lock(first).clone();
    match frame::decode(&bytes, MAX_REFUSAL_BYTES) {
        Ok(Some((payload, _))) => parse_refusal(payload),
        _ => None,
    }
}

impl AsyncRead for Sniffed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let mut first = sim_runtime::sync::lock(&this.first);
            let room = KEEP.saturating_sub(first.len());
            let new = &buf.filled()[before..];
            first.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

impl AsyncWrite for Sniffed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_frame_is_found_and_anything_else_is_not() {
        let first = FirstBytes::default();
        *first.lock().expect("lock") = crate::bounds::refusal_frame("at the cap");
        assert_eq!(refusal_in(&first).as_deref(), Some("at the cap"));
        // A TLS record (a ServerHello's first bytes) is not a refusal.
        *first.lock().expect("lock") = vec![0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76];
        assert_eq!(refusal_in(&first), None);
        first.lock().expect("lock").clear();
        assert_eq!(refusal_in(&first), None);
    }
}
