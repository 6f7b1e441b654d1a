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
//! checks `len` against its maximum *before* allocating the payload buffer, so a peer
//! cannot make it allocate more than the maximum; it then checks the checksum before
//! decoding anything.

use serde::{de::DeserializeOwned, Serialize};
use std::fmt;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes before the payload: length (u32 LE) and crc32c (u32 LE).
pub const HEADER_LEN: usize = 8;

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
    Ok(out)
}

/// Encodes `value` with postcard and wraps it in a frame.
///
/// Fails with [`FrameError::TooLarge`] when the encoding exceeds `max` bytes.
pub fn encode_value<T: Serialize + ?Sized>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(value, vec![0u8; HEADER_LEN]).map_err(FrameError::Encode)?;
    check_len((out.len() - HEADER_LEN) as u64, max)?;
    fill_header(&mut out);
    Ok(out)
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
/// announced length is checked against `max` before the payload buffer is allocated.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(reader, &mut header).await?;
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
    let mut payload = vec![0u8; len];
    let got = read_full(reader, &mut payload).await?;
    if got < len {
        return Err(FrameError::Truncated {
            got: HEADER_LEN + got,
            needed: HEADER_LEN + len,
        });
    }
    check_crc(crc, &payload)?;
    Ok(Some(payload))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(filled)
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
}
