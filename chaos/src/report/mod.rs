//! The reports of a run and of a sweep, for any system (D94): one record type for a
//! sweep's lines ([`record::RunRecord`]), the summary table, merging a sharded sweep's
//! `--json` parts ([`merge`]), JUnit XML for CI dashboards ([`junit`], read back by the
//! strict reader [`xml`]) and the HTML timeline of one run ([`timeline`]). Seedbank's
//! own `seedbank` CLI and a user crate's [`crate::cli`] both report through here; what
//! differs between them — the command that replays a run, the coverage promises a
//! scenario states — is a [`record::Catalogue`].
//!
//! ## Invariants
//! - Pure functions of their input (files aside: [`merge`] reads and writes through
//!   [`crate::host`]), in both worlds; no report reads an engine type.
//! - Every reproduce line a report prints is `{Catalogue::replay} NAME --seed S
//!   [--plan P]`: the user's own command in a user's crate, never a Seedbank alias.

pub mod junit;
pub mod merge;
pub mod record;
pub mod timeline;
pub mod xml;
