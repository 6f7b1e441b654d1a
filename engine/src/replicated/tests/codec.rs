//! The command codec and the reserved key namespace.

use rand::{Rng, SeedableRng};

use crate::replicated::command::{
    self, check_user_key, client_key, decode, encode, last_write_key, last_write_span, Command,
    CommitCmd, DecodeError, KeySpan, APPLIED_KEY, FIRST_USER_KEY,
};

fn sample() -> Command {
    Command::Commit(CommitCmd {
        client: 1 << 40,
        seq: 7,
        snapshot: 12,
        reads: vec![b"a".to_vec(), b"b".to_vec()],
        ranges: vec![
            KeySpan {
                start: b"c".to_vec(),
                end: Some(b"d".to_vec()),
            },
            KeySpan {
                start: b"x".to_vec(),
                end: None,
            },
        ],
        writes: vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"e".to_vec(), None)],
    })
}

#[test]
fn commands_round_trip() {
    let cmd = sample();
    let bytes = encode(&cmd);
    assert_eq!(bytes[0], command::COMMAND_VERSION);
    assert_eq!(decode(&bytes), Ok(cmd));
}

#[test]
fn bad_bytes_are_errors_not_panics() {
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
    assert_eq!(decode(&[9, 1, 2]), Err(DecodeError::Version(9)));
    let bytes = encode(&sample());
    for cut in 1..bytes.len() {
        assert!(
            matches!(decode(&bytes[..cut]), Err(DecodeError::Malformed(_))),
            "a command cut at {cut} bytes decoded"
        );
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut decoded = 0;
    for _ in 0..2000 {
        let len = rng.gen_range(0..64);
        let mut junk: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) && !junk.is_empty() {
            junk[0] = command::COMMAND_VERSION;
        }
        decoded += usize::from(decode(&junk).is_ok());
    }
    assert!(decoded < 2000, "junk must mostly fail to decode");
}

#[test]
fn reserved_keys_are_refused_and_spans_cover_only_last_writes() {
    assert!(check_user_key(b"\0sys/applied").is_err());
    assert!(check_user_key(b"").is_ok());
    assert!(check_user_key(b"a").is_ok());
    assert!(APPLIED_KEY < FIRST_USER_KEY && client_key(5).as_slice() < FIRST_USER_KEY);
    let all = last_write_span(&KeySpan {
        start: Vec::new(),
        end: None,
    });
    let inside = |k: &[u8]| k >= all.0.as_slice() && k < all.1.as_slice();
    assert!(inside(&last_write_key(b"zzz")));
    assert!(inside(&last_write_key(&[0xff, 0xff])));
    assert!(!inside(&client_key(1)));
    assert!(!inside(APPLIED_KEY));
    let some = last_write_span(&KeySpan {
        start: b"b".to_vec(),
        end: Some(b"d".to_vec()),
    });
    let within = |k: &[u8]| k >= some.0.as_slice() && k < some.1.as_slice();
    assert!(within(&last_write_key(b"b")) && within(&last_write_key(b"c9")));
    assert!(!within(&last_write_key(b"d")) && !within(&last_write_key(b"a")));
}
