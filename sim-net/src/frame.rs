//! Framing: every message on a connection is one frame.
//!
//! ```text
//! +----------------------+----------------------------+-----------------+
//! | len: u32 LE          | crc: u32 LE                | payload         |
//! | payload length       | crc32c of the payload      | `len` bytes     |
//! +----------------------+----------------------------+-----------------+
//! ```
//!
//! The payload is a value encoded with [postcard](https://docs.rs/postcard). A reader
//! checks `len` against its maximum, then lets the payload buffer grow only as bytes
//! arrive, [`READ_CHUNK`] at a time (D53): the length prefix is a claim, not an
//! allocation, so a peer that announces a maximal frame and sends a byte costs the
//! reader a chunk, not the maximum. It checks the checksum before decoding anything.

use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes before the payload: length (u32 LE) and crc32c (u32 LE).
pub const HEADER_LEN: usize = 8;

/// Most payload bytes requested from the stream (and added to the buffer) at once.
pub const READ_CHUNK: usize = 16 * 1024;

/// What paces a frame reader: a budget of bytes it may buffer (see
/// `Config::max_buffered_bytes`). `reserve` waits until `n` more bytes may be held;
/// `release` gives back what was reserved but not received.
pub trait Budget {
    /// Waits until `n` more payload bytes may be buffered, and counts them as held.
    fn reserve(&mut self, n: usize) -> impl Future<Output = ()> + Send;
    /// Gives back `n` reserved bytes that did not arrive.
    fn release(&mut self, n: usize);
}

/// No budget: every reservation is granted at once.
pub struct Unbounded;

impl Budget for Unbounded {
    async fn reserve(&mut self, _n: usize) {}
    fn release(&mut self, _n: usize) {}
}

/// Why a frame could not be produced or read.
#[derive(Debug)]
pub enum FrameError {
    /// The payload is longer than the allowed maximum (checked before allocating).
    TooLarge {
        /// Payload length announced by the header (or produced by the encoder).
        len: u64,
        /// The maximum in force.
        max: usize,
    },
    /// The payload's crc32c does not match the header.
    BadChecksum {
        /// Checksum carried by the header.
        expected: u32,
        /// Checksum of the payload as received.
        actual: u32,
    },
    /// The stream ended in the middle of a frame.
    Truncated {
        /// Bytes of the frame (header included) received before the end.
        got: usize,
        /// Bytes the frame needed.
        needed: usize,
    },
    /// The payload is not a valid encoding of the expected type.
    Decode(postcard::Error),
    /// The value could not be encoded.
    Encode(postcard::Error),
    /// The underlying stream failed.
    Io(io::Error),
    /// Nothing arrived for this long (the idle timeout of an inbound connection).
    Idle(Duration),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(
                    f,
                    "frame payload of {len} bytes exceeds the maximum of {max}"
                )
            }
            FrameError::BadChecksum { expected, actual } => write!(
                f,
                "frame checksum mismatch: header says {expected:08x}, payload has {actual:08x}"
            ),
            FrameError::Truncated { got, needed } => {
                write!(f, "stream ended inside a frame ({got} of {needed} bytes)")
            }
            FrameError::Decode(e) => write!(f, "undecodable frame payload: {e}"),
            FrameError::Encode(e) => write!(f, "cannot encode frame payload: {e}"),
            FrameError::Io(e) => write!(f, "i/o error: {e}"),
            FrameError::Idle(d) => write!(f, "nothing received for {d:?}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Decode(e) | FrameError::Encode(e) => Some(e),
            FrameError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Wraps `payload` in a frame (header + payload).
///
/// Fails with [`FrameError::TooLarge`] when the payload exceeds `max` bytes.
pub fn encode_payload(payload: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    check_len(payload.len() as u64, max)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(payload);
    fill_header(&mut out);
    debug_assert!(reads_back(&out, max));
    Ok(out)
}

/// Encodes `value` with postcard and wraps it in a frame.
///
/// Fails with [`FrameError::TooLarge`] when the encoding exceeds `max` bytes.
pub fn encode_value<T: Serialize + ?Sized>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(value, vec![0u8; HEADER_LEN]).map_err(FrameError::Encode)?;
    check_len((out.len() - HEADER_LEN) as u64, max)?;
    fill_header(&mut out);
    debug_assert!(reads_back(&out, max));
    Ok(out)
}

/// The pair of a reader's checks: an encoded frame is one whole frame to [`decode`].
fn reads_back(frame: &[u8], max: usize) -> bool {
    matches!(decode(frame, max), Ok(Some((_, used))) if used == frame.len())
}

/// Decodes a payload (as returned by [`decode`] or [`read_frame`]) as a `T`.
pub fn decode_value<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(payload).map_err(FrameError::Decode)
}

/// Decodes the first frame of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole frame (and the announced
/// length is within `max`), or `Ok(Some((payload, consumed)))` with the checked payload
/// and the number of bytes the frame took.
pub fn decode(buf: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let (len, crc) = parse_header(header);
    check_len(u64::from(len), max)?;
    let len = len as usize;
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    check_crc(crc, payload)?;
    Ok(Some((payload, HEADER_LEN + len)))
}

/// Reads one frame from `reader` and returns its checked payload.
///
/// Returns `Ok(None)` on a clean end of stream (before the first byte of a frame). The
/// announced length is checked against `max`; the payload buffer grows as bytes
/// arrive, never from the length alone.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    read_frame_paced(reader, max, None, &mut Unbounded).await
}

/// [`read_frame`] with an idle bound and a byte budget: waiting longer than `idle` for
/// a frame to start, or for a started frame to finish, fails with
/// [`FrameError::Idle`]; before each chunk of payload is requested, `budget` must
/// grant it (meanwhile the reader does not read: TCP back-pressure). On success the payload's bytes
/// stay reserved in `budget`; the caller releases them when it is done with the
/// message. On an error they are released here.
pub async fn read_frame_paced<R: AsyncRead + Unpin, B: Budget>(
    reader: &mut R,
    max: usize,
    idle: Option<Duration>,
    budget: &mut B,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match read_some(reader, &mut header[got..], idle).await? {
            0 => break,
            n => got += n,
        }
    }
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            got,
            needed: HEADER_LEN,
        });
    }
    let (len, crc) = parse_header(&header);
    check_len(u64::from(len), max)?;
    let len = len as usize;
    let mut payload = Vec::new();
    // Once a frame has started, all of it must arrive within `idle`, budget waits
    // included: a peer that trickles a large frame, or readers that wait on a budget
    // held by other unfinished frames, cannot hold bytes forever.
    let deadline = idle.map(|d| (d, sim_runtime::time::now() + d));
    let left = || deadline.map(|(_, at)| at.saturating_duration_since(sim_runtime::time::now()));
    let outcome = async {
        while payload.len() < len {
            let want = READ_CHUNK.min(len - payload.len());
            match left() {
                None => budget.reserve(want).await,
                Some(rest) => {
                    if sim_runtime::time::timeout(rest, budget.reserve(want))
                        .await
                        .is_err()
                    {
                        return Err(FrameError::Idle(deadline.map_or(rest, |(d, _)| d)));
                    }
                }
            }
            let start = payload.len();
            // Grows by at most one chunk beyond the bytes received.
            payload.resize(start + want, 0);
            let read = read_some(reader, &mut payload[start..], left()).await;
            let n = *read.as_ref().unwrap_or(&0);
            payload.truncate(start + n);
            budget.release(want - n);
            read?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    got: HEADER_LEN + start,
                    needed: HEADER_LEN + len,
                });
            }
        }
        check_crc(crc, &payload)
    }
    .await;
    match outcome {
        Ok(()) => {
            // Grown a chunk at a time, and never past the announced length.
            debug_assert_eq!(payload.len(), len);
            Ok(Some(payload))
        }
        Err(e) => {
            budget.release(payload.len());
            Err(e)
        }
    }
}

/// One read into `buf` (retrying interruptions), bounded by `idle`; 0 at end of stream.
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Option<Duration>,
) -> Result<usize, FrameError> {
    loop {
        let read = match idle {
            None => reader.read(buf).await,
            Some(d) => match sim_runtime::time::timeout(d, reader.read(buf)).await {
                Ok(r) => r,
                Err(_) => return Err(FrameError::Idle(d)),
            },
        };
        match read {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
}

fn parse_header(header: &[u8]) -> (u32, u32) {
    let mut len = [0u8; 4];
    let mut crc = [0u8; 4];
    len.copy_from_slice(&header[0..4]);
    crc.copy_from_slice(&header[4..8]);
    (u32::from_le_bytes(len), u32::from_le_bytes(crc))
}

fn fill_header(frame: &mut [u8]) {
    let (header, payload) = frame.split_at_mut(HEADER_LEN);
    // The length fits: callers check it against `max`, and `check_len` rejects > u32::MAX.
    assert!(
        u32::try_from(payload.len()).is_ok(),
        "frame of {} bytes",
        payload.len()
    );
    let len = payload.len() as u32;
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..8].copy_from_slice(&crc32c::crc32c(payload).to_le_bytes());
}

fn check_len(len: u64, max: usize) -> Result<(), FrameError> {
    if len > max as u64 || len > u64::from(u32::MAX) {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(())
}

fn check_crc(expected: u32, payload: &[u8]) -> Result<(), FrameError> {
    let actual = crc32c::crc32c(payload);
    if actual != expected {
        return Err(FrameError::BadChecksum { expected, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let frame = encode_value(&("hello", 42u64), 1024).expect("encode");
        let (payload, used) = decode(&frame, 1024).expect("valid").expect("whole frame");
        assert_eq!(used, frame.len());
        let v: (String, u64) = decode_value(payload).expect("decode");
        assert_eq!(v, ("hello".to_string(), 42));
        // Every strict prefix is "not yet a frame".
        for cut in 0..frame.len() {
            assert!(decode(&frame[..cut], 1024).expect("prefix ok").is_none());
        }
        // Flip each payload bit: the checksum must catch it.
        for i in HEADER_LEN..frame.len() {
            for bit in 0..8 {
                let mut bad = frame.clone();
                bad[i] ^= 1 << bit;
                assert!(matches!(
                    decode(&bad, 1024),
                    Err(FrameError::BadChecksum { .. })
                ));
            }
        }
    }

    #[test]
    fn length_is_checked_before_the_payload_arrives() {
        let mut header = Vec::new();
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        assert!(matches!(
            decode(&header, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            encode_payload(&[0u8; 17], 16),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
        assert!(encode_payload(&[0u8; 16], 16).is_ok());
    }

    /// A stream that yields its bytes and then stays open without sending more.
    struct Trickle(std::io::Cursor<Vec<u8>>);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            if self.0.position() as usize == self.0.get_ref().len() {
                return std::task::Poll::Pending;
            }
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    /// Counts the bytes a reader holds, and the most it ever held.
    #[derive(Default)]
    struct Counting {
        held: usize,
        peak: usize,
    }

    impl Budget for Counting {
        async fn reserve(&mut self, n: usize) {
            self.held += n;
            self.peak = self.peak.max(self.held);
        }
        fn release(&mut self, n: usize) {
            self.held -= n;
        }
    }

    /// Issue 19, finding 3 (D53): a header announcing a maximal frame followed by a
    /// few bytes makes the reader hold those bytes and one chunk, not the announced
    /// length. Fails
    /// before D53, which allocated `vec![0; len]` from the prefix.
    #[test]
    fn a_length_prefix_reserves_at_most_one_chunk() {
        let max = 16 << 20;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(max as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&[7u8; 100]);
        let mut budget = Counting::default();
        let mut stream = Trickle(std::io::Cursor::new(bytes));
        let read = futures_lite_poll(read_frame_paced(&mut stream, max, None, &mut budget));
        assert!(read.is_none(), "the frame cannot be complete");
        assert!(
            budget.peak <= 100 + READ_CHUNK,
            "held {} bytes for a 100-byte prefix",
            budget.peak
        );
    }

    use sim_runtime::task::poll_once as futures_lite_poll;

    /// A frame split over many reads arrives whole and releases nothing it holds.
    #[test]
    fn a_chunked_frame_arrives_whole_and_stays_reserved() {
        let payload = vec![42u8; 3 * READ_CHUNK + 5];
        let frame = encode_payload(&payload, 1 << 20).expect("encode");
        let mut budget = Counting::default();
        let mut stream = std::io::Cursor::new(frame);
        let got = futures_lite_poll(read_frame_paced(&mut stream, 1 << 20, None, &mut budget))
            .expect("a cursor never waits")
            .expect("valid")
            .expect("a frame");
        assert_eq!(got, payload);
        assert_eq!(budget.held, payload.len());
        // A bad checksum releases everything.
        let mut bad = encode_payload(&payload, 1 << 20).expect("encode");
        bad[HEADER_LEN] ^= 1;
        let mut budget = Counting::default();
        let mut stream = std::io::Cursor::new(bad);
        let got = futures_lite_poll(read_frame_paced(&mut stream, 1 << 20, None, &mut budget))
            .expect("a cursor never waits");
        assert!(
            matches!(got, Err(FrameError::BadChecksum { .. })),
            "{got:?}"
        );
        assert_eq!(budget.held, 0);
    }
}
