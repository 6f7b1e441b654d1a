//! The step before the hello: turn a fresh TCP stream into a [`Stream`] and learn the
//! peer's verified identity, according to the endpoint's [`Auth`].
//!
//! - Real world: `Auth::Tls` runs a rustls handshake (server side requires a client
//!   certificate); `Auth::Insecure` keeps the plain stream and verifies nothing.
//! - Simulated world: no TLS. Each side sends one frame holding its
//!   [`SimCredential`] (or none); the acceptor checks the connector's before it answers
//!   with its own, the connector checks the acceptor's — the same order as the hello.
//!   An insecure endpoint still exchanges the frame (presenting none and ignoring the
//!   peer's), so secure and insecure endpoints meet in one protocol and a refusal is a
//!   refusal, not a decoding accident.
//!
//! What the peer *claims* is checked afterwards, with the identity returned here, by
//! [`authorize`](crate::auth::authorize) (in `conn`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::auth::{Auth, AuthError, Identity};
use crate::frame::FrameError;

/// Why the step before the hello failed.
#[derive(Debug)]
pub(crate) enum SecureError {
    /// The peer is not authenticated (or TLS failed).
    Auth(AuthError),
    /// A credential frame was malformed, or the stream failed.
    #[cfg_attr(not(madsim), allow(dead_code))]
    Frame(FrameError),
    /// The peer closed the connection before answering.
    #[cfg_attr(not(madsim), allow(dead_code))]
    Closed,
    /// The acceptor refused the connection at a cap, saying why (its refusal frame
    /// came where its credential, or its TLS answer, was due).
    Refused(String),
}

impl From<AuthError> for SecureError {
    fn from(e: AuthError) -> Self {
        SecureError::Auth(e)
    }
}

impl From<FrameError> for SecureError {
    fn from(e: FrameError) -> Self {
        SecureError::Frame(e)
    }
}

/// A connection's byte stream: plain TCP, or TLS over it (real world).
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(not(madsim))]
    TlsClient(Box<tokio_rustls::client::TlsStream<crate::sniff::Sniffed>>),
    #[cfg(not(madsim))]
    TlsServer(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            #[cfg(not(madsim))]
            Stream::TlsClient($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
            #[cfg(not(madsim))]
            Stream::TlsServer($s) => {
                let $s = Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// The connector's side: secures `stream` to node `dialled`.
pub(crate) async fn connect(
    stream: TcpStream,
    auth: &Auth,
    dialled: u64,
) -> Result<(Stream, Option<Identity>), SecureError> {
    imp::connect(stream, auth, dialled).await
}

/// The acceptor's side: secures `stream` and verifies the connector's credential.
pub(crate) async fn accept(
    stream: TcpStream,
    auth: &Auth,
) -> Result<(Stream, Option<Identity>), SecureError> {
    imp::accept(stream, auth).await
}

#[cfg(not(madsim))]
mod imp {
    use super::*;
    use crate::tls::{identity_of, server_name_of};

    pub(super) async fn connect(
        stream: TcpStream,
        auth: &Auth,
        dialled: u64,
    ) -> Result<(Stream, Option<Identity>), SecureError> {
        match auth {
            Auth::Insecure => Ok((Stream::Plain(stream), None)),
            Auth::Simulated(_) => Err(SIMULATED_ONLY.into()),
            Auth::Tls(tls) => {
                let name = server_name_of(dialled)?;
                let (sniffed, first) = crate::sniff::Sniffed::new(stream);
                let tls_stream = match tls.connector().connect(name, sniffed).await {
                    Ok(s) => s,
                    // An acceptor at its connection cap answers with a plaintext
                    // refusal frame instead of TLS: report its reason.
                    Err(e) => match crate::sniff::refusal_in(&first) {
                        Some(why) => return Err(SecureError::Refused(why)),
                        None => return Err(AuthError::Tls(e.to_string()).into()),
                    },
                };
                let identity = leaf_identity(tls_stream.get_ref().1.peer_certificates())?;
                Ok((Stream::TlsClient(Box::new(tls_stream)), Some(identity)))
            }
        }
    }

    pub(super) async fn accept(
        stream: TcpStream,
        auth: &Auth,
    ) -> Result<(Stream, Option<Identity>), SecureError> {
        match auth {
            Auth::Insecure => Ok((Stream::Plain(stream), None)),
            Auth::Simulated(_) => Err(SIMULATED_ONLY.into()),
            Auth::Tls(tls) => {
                let tls_stream = tls
                    .acceptor()
                    .accept(stream)
                    .await
                    .map_err(|e| AuthError::Tls(e.to_string()))?;
                let identity = leaf_identity(tls_stream.get_ref().1.peer_certificates())?;
                Ok((Stream::TlsServer(Box::new(tls_stream)), Some(identity)))
            }
        }
    }

    const SIMULATED_ONLY: AuthError =
        AuthError::WrongWorld("simulated credentials exist only in the simulated world");

    fn leaf_identity(
        certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<Identity, AuthError> {
        match certs.and_then(|c| c.first()) {
            Some(leaf) => identity_of(leaf),
            None => Err(AuthError::NoCredential),
        }
    }
}

#[cfg(madsim)]
mod imp {
    use super::*;
    use crate::auth::SimCredential;
    use crate::frame;
    use crate::handshake::MAX_HANDSHAKE_BYTES;
    use tokio::io::AsyncWriteExt;

    /// What an endpoint presents: its credential, or none.
    fn presented(auth: &Auth) -> Option<SimCredential> {
        match auth {
            Auth::Insecure => None,
            Auth::Simulated(s) => s.credential.clone(),
        }
    }

    /// The identity the peer's frame proves (None when we do not check: insecure).
    fn verify(auth: &Auth, theirs: Option<&SimCredential>) -> Result<Option<Identity>, AuthError> {
        match auth {
            Auth::Insecure => Ok(None),
            Auth::Simulated(s) => s.verify(theirs).map(Some),
        }
    }

    async fn send(stream: &mut TcpStream, auth: &Auth) -> Result<(), SecureError> {
        let frame = frame::encode_value(&presented(auth), MAX_HANDSHAKE_BYTES)?;
        stream.write_all(&frame).await.map_err(FrameError::Io)?;
        stream.flush().await.map_err(FrameError::Io)?;
        Ok(())
    }

    async fn receive(stream: &mut TcpStream) -> Result<Option<SimCredential>, SecureError> {
        match frame::read_frame(stream, MAX_HANDSHAKE_BYTES).await? {
            Some(payload) => match crate::bounds::parse_refusal(&payload) {
                Some(why) => Err(SecureError::Refused(why)),
                None => Ok(frame::decode_value(&payload)?),
            },
            None => Err(SecureError::Closed),
        }
    }

    pub(super) async fn connect(
        mut stream: TcpStream,
        auth: &Auth,
        _dialled: u64,
    ) -> Result<(Stream, Option<Identity>), SecureError> {
        send(&mut stream, auth).await?;
        let theirs = receive(&mut stream).await?;
        let identity = verify(auth, theirs.as_ref())?;
        Ok((Stream::Plain(stream), identity))
    }

    pub(super) async fn accept(
        mut stream: TcpStream,
        auth: &Auth,
    ) -> Result<(Stream, Option<Identity>), SecureError> {
        let theirs = receive(&mut stream).await?;
        let identity = verify(auth, theirs.as_ref())?;
        send(&mut stream, auth).await?;
        Ok((Stream::Plain(stream), identity))
    }
}
