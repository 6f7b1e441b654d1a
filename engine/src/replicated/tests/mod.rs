//! Unit tests of the replicated layer: the command codec, the state machine's apply
//! and validation logic, and the Raft log and hard-state files. The file tests run in
//! both worlds (a temp directory on the real disk, or a simulated disk under madsim).

mod apply;
mod codec;
mod logfile;
