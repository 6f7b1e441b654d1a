//! `seedbank merge`: the `--json` outputs of a sweep's shards become one sweep's report
//! — the summary `sweep` prints ([`super::record::report`]), and optionally a JUnit XML
//! file and the merged JSON lines. The fitting, the JUnit writer and its strict reader
//! are the framework's ([`chaos::report::merge`], D94); what is Seedbank's own is the
//! catalogue ([`super::record::catalogue`]: `cargo sim replay`, the must-reach
//! promises, judged over the merged runs, D74).

pub use chaos::report::merge::{merge, seed_list, MergeError};
use std::process::ExitCode;

pub use chaos::cli::args::MergeArgs;

/// `seedbank merge`: exit 0 clean, 1 a run failed or a promise was missed (as `sweep`),
/// 2 the shards do not fit together or a file cannot be read or written.
pub fn main(args: MergeArgs) -> ExitCode {
    let (records, tag) = match merge(&args.files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("seedbank merge: {e}");
            return ExitCode::from(2);
        }
    };
    let (summary, clean) = super::record::report(&records, tag.wall_s);
    print!("{summary}");
    let cat = super::record::catalogue();
    let written = chaos::report::merge::write_outputs(
        &records,
        &tag,
        args.junit.as_deref(),
        args.json.as_deref(),
        &cat,
    );
    if let Err(e) = written {
        eprintln!("seedbank merge: {e}");
        return ExitCode::from(2);
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
