//! A message's name for the trace: the variant path of a serde value
//! (`Raft(AppendEntries)`, `Request(Commit)`), read without encoding the value.
//!
//! A trace that says only `net 1->2 84B` makes a reader decode the run in their head;
//! the message's kind is what they need. sim-net's messages are serde types, so the
//! kind is read the way serde would write it: a serializer that notes enum variant and
//! struct names, follows newtype variants a few levels down, and stops (with an error it
//! swallows) at the first field — so the cost is a few calls, not an encoding. Nothing
//! here reaches the digest unless a caller puts it in an event's detail.

use serde::ser::{self, Impossible, Serialize};
use std::fmt;

/// How deep newtype variants are followed (`A(B(C(…)))`).
const MAX_DEPTH: usize = 3;

/// The variant path of `value`: `Outer(Inner)` for nested newtype variants, the
/// variant or struct name otherwise, or `""` for a plain value (a number, a string).
pub fn summary<T: Serialize + ?Sized>(value: &T) -> String {
    let mut names = Vec::new();
    let _ = value.serialize(Names {
        out: &mut names,
        depth: 0,
    });
    let mut out = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push('(');
        }
        out.push_str(n);
    }
    for _ in 1..names.len() {
        out.push(')');
    }
    out
}

/// Stops the serializer: the name is known (or there is none).
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("summary complete")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Stop
    }
}

struct Names<'a> {
    out: &'a mut Vec<&'static str>,
    depth: usize,
}

type Done = Result<(), Stop>;

impl<'a> ser::Serializer for Names<'a> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Impossible<(), Stop>;
    type SerializeTuple = Impossible<(), Stop>;
    type SerializeTupleStruct = Impossible<(), Stop>;
    type SerializeTupleVariant = Impossible<(), Stop>;
    type SerializeMap = Impossible<(), Stop>;
    type SerializeStruct = Impossible<(), Stop>;
    type SerializeStructVariant = Impossible<(), Stop>;

    fn serialize_bool(self, _: bool) -> Done {
        Err(Stop)
    }
    fn serialize_i8(self, _: i8) -> Done {
        Err(Stop)
    }
    fn serialize_i16(self, _: i16) -> Done {
        Err(Stop)
    }
    fn serialize_i32(self, _: i32) -> Done {
        Err(Stop)
    }
    fn serialize_i64(self, _: i64) -> Done {
        Err(Stop)
    }
    fn serialize_u8(self, _: u8) -> Done {
        Err(Stop)
    }
    fn serialize_u16(self, _: u16) -> Done {
        Err(Stop)
    }
    fn serialize_u32(self, _: u32) -> Done {
        Err(Stop)
    }
    fn serialize_u64(self, _: u64) -> Done {
        Err(Stop)
    }
    fn serialize_f32(self, _: f32) -> Done {
        Err(Stop)
    }
    fn serialize_f64(self, _: f64) -> Done {
        Err(Stop)
    }
    fn serialize_char(self, _: char) -> Done {
        Err(Stop)
    }
    fn serialize_str(self, _: &str) -> Done {
        Err(Stop)
    }
    fn serialize_bytes(self, _: &[u8]) -> Done {
        Err(Stop)
    }
    fn serialize_none(self) -> Done {
        Err(Stop)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        Err(Stop)
    }
    fn serialize_unit_struct(self, name: &'static str) -> Done {
        self.out.push(name);
        Err(Stop)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Done {
        self.out.push(variant);
        Err(Stop)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _value: &T,
    ) -> Done {
        self.out.push(name);
        Err(Stop)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        self.out.push(variant);
        if self.depth + 1 >= MAX_DEPTH {
            return Err(Stop);
        }
        value.serialize(Names {
            out: self.out,
            depth: self.depth + 1,
        })
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Stop> {
        Err(Stop)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Stop> {
        Err(Stop)
    }
    fn serialize_tuple_struct(
        self,
        name: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Stop> {
        self.out.push(name);
        Err(Stop)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Stop> {
        self.out.push(variant);
        Err(Stop)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Stop> {
        Err(Stop)
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Self::SerializeStruct, Stop> {
        self.out.push(name);
        Err(Stop)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Stop> {
        self.out.push(variant);
        Err(Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::summary;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Append {
        term: u64,
    }

    #[derive(Serialize)]
    enum Raft {
        AppendEntries(Append),
        Vote { term: u64 },
        Heartbeat,
    }

    #[derive(Serialize)]
    enum Wire {
        Raft(Raft),
        Ping(u64),
    }

    #[test]
    fn names_nested_variants_and_structs_without_the_fields() {
        assert_eq!(
            summary(&Wire::Raft(Raft::AppendEntries(Append { term: 3 }))),
            "Raft(AppendEntries(Append))"
        );
        assert_eq!(summary(&Wire::Raft(Raft::Vote { term: 1 })), "Raft(Vote)");
        assert_eq!(summary(&Wire::Raft(Raft::Heartbeat)), "Raft(Heartbeat)");
        assert_eq!(summary(&Wire::Ping(7)), "Ping");
        assert_eq!(summary(&Append { term: 1 }), "Append");
        assert_eq!(summary(&5u64), "");
        assert_eq!(summary("text"), "");
    }
}
