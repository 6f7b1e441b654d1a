//! `replay … --timeline FILE.html`: the framework's timeline page
//! ([`chaos::report::timeline`], D94) of one of Seedbank's own runs — its trace, client
//! history, plan, verdict and the keys and operations the failed check names.

use super::run::RunOutput;

/// The page of `out`.
pub fn render(out: &RunOutput) -> String {
    let (plan, repro) = texts(out);
    chaos::report::timeline::render(&view(out, &plan, &repro))
}

fn texts(out: &RunOutput) -> (String, String) {
    use super::record::Reproduce;
    (out.plan.to_string(), out.record.reproduce())
}

fn view<'a>(
    out: &'a RunOutput,
    plan: &'a str,
    repro: &'a str,
) -> chaos::report::timeline::RunView<'a> {
    chaos::report::timeline::RunView {
        record: &out.record,
        plan,
        history: &out.history,
        trace: &out.trace,
        involved: &out.involved,
        reproduce: repro,
    }
}

/// What the page draws (the framework's model), of `out`.
pub mod model {
    pub use chaos::report::timeline::model::*;

    /// The model of `out`.
    pub fn build(out: &super::RunOutput) -> Model {
        let (plan, repro) = super::texts(out);
        chaos::report::timeline::model::build(&super::view(out, &plan, &repro))
    }
}
