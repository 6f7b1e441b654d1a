//! JUnit XML for CI dashboards (`merge --junit FILE`): the shape GitHub Actions test
//! reporters, GitLab's `artifacts:reports:junit` and Jenkins' `junit` step read.
//!
//! `<testsuites>` holds one `<testsuite>` per scenario (in name order), each with
//! `tests`, `failures`, `errors`, `skipped` and `time` (seconds) attributes, its
//! coverage summary as `<properties>`, then one `<testcase name="seed N"
//! classname="SCENARIO">` per run in seed order: a failed check is a `<failure>` (type:
//! the check; message: its first line; body: the whole message and the reproduce
//! command), a run that could not be made an `<error>`. A scenario that states
//! must-reach promises gets one more case, `must-reach promises`: a `<failure>` naming
//! each missed one, `<skipped>` when the seeds run cannot judge any.
//!
//! Text is escaped for XML 1.0: `& < > " '` as entities (and tab, newline, carriage
//! return as character references inside attributes, so parsers keep them), and every
//! character XML 1.0 cannot carry at all (other control characters — a panic message
//! may hold a terminal's escape codes — and U+FFFE/U+FFFF) as U+FFFD.

use super::record::{summarize, Catalogue, RunRecord, Summary};
use std::fmt::Write;

/// The name of the extra test case that judges a scenario's must-reach promises.
pub const PROMISES_CASE: &str = "must-reach promises";

/// Escapes `s` for an attribute value in double quotes (white space as character
/// references: a parser would turn a literal newline into a space).
pub fn escape(s: &str) -> String {
    escape_as(s, true)
}

/// Escapes `s` for element text (newlines and tabs kept as they are).
pub fn escape_text(s: &str) -> String {
    escape_as(s, false)
}

fn escape_as(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            c if allowed_in_xml(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// XML 1.0's `Char` production (a Rust `char` is never a surrogate).
pub(crate) fn allowed_in_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Seconds, as JUnit's `time` attributes want them.
fn secs(ms: f64) -> String {
    format!("{:.3}", ms.max(0.0) / 1000.0)
}

/// The promises case of one scenario: `(failures, skipped, xml)`; `None` when the
/// scenario states no promise.
fn promises_case(name: &str, s: &Summary, cat: &Catalogue) -> Option<(u64, u64, String)> {
    let sc = (cat.promises)(name)?;
    if sc.must_reach.is_empty() {
        return None;
    }
    let head = format!(
        "    <testcase name=\"{}\" classname=\"{}\" time=\"0.000\"",
        PROMISES_CASE,
        escape(name)
    );
    let missed: Vec<String> = sc
        .must_reach
        .iter()
        .filter(|m| s.judges(m) && !s.coverage.reached.contains_key(m.mark))
        .map(|m| format!("{} (within {} seeds)", m.mark, m.within))
        .collect();
    if !missed.is_empty() {
        let text = format!(
            "no run reached: {}\nwhile every seed up to each promise's bound ran",
            missed.join(", ")
        );
        return Some((
            1,
            0,
            format!(
                "{head}>\n      <failure type=\"must-reach\" message=\"{} of {} promises missed\">{}</failure>\n    </testcase>\n",
                missed.len(),
                sc.must_reach.len(),
                escape_text(&text)
            ),
        ));
    }
    if !sc.must_reach.iter().any(|m| s.judges(m)) {
        let why = format!(
            "no promise judged: the smallest bound is {} seeds from 0",
            sc.must_reach.iter().map(|m| m.within).min().unwrap_or(0)
        );
        return Some((
            0,
            1,
            format!(
                "{head}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                escape(&why)
            ),
        ));
    }
    Some((0, 0, format!("{head}/>\n")))
}

/// The coverage summary of one scenario as `<properties>`.
fn properties(name: &str, s: &Summary, cat: &Catalogue) -> String {
    let mut props: Vec<(String, String)> = Vec::new();
    let (from, to) = (
        s.seeds.first().copied().unwrap_or(0),
        s.seeds.last().map_or(0, |l| l + 1),
    );
    props.push(("seeds".into(), format!("{from}..{to}")));
    props.push(("operations".into(), s.operations.to_string()));
    props.push((
        "virtual_s".into(),
        format!("{:.1}", s.virtual_time_ms / 1000.0),
    ));
    for (k, n) in &s.faults {
        props.push((format!("fault.{k}"), n.to_string()));
    }
    if let Some(sc) = (cat.promises)(name) {
        let universe = sc.universe;
        props.push((
            "marks_reached".into(),
            format!(
                "{} of {}",
                s.coverage.reached.len(),
                universe.len().max(s.coverage.reached.len())
            ),
        ));
        let never = s.coverage.unreached(universe.iter().copied());
        if !never.is_empty() {
            props.push(("marks_never_reached".into(), never.join(" ")));
        }
    }
    for (mark, r) in &s.coverage.reached {
        props.push((
            format!("mark.{mark}"),
            format!(
                "{} of {} runs, first seed {}",
                r.runs, s.coverage.runs, r.first_seed
            ),
        ));
    }
    let mut out = String::from("    <properties>\n");
    for (k, v) in props {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape(&k),
            escape(&v)
        );
    }
    out.push_str("    </properties>\n");
    out
}

/// One run as a `<testcase>`.
fn case(r: &RunRecord, cat: &Catalogue) -> String {
    let head = format!(
        "    <testcase name=\"seed {}\" classname=\"{}\" time=\"{}\"",
        r.seed,
        escape(&r.scenario),
        secs(r.wall_time_ms)
    );
    if !r.failed() {
        return format!("{head}/>\n");
    }
    let check = r.failed_check.as_deref().unwrap_or("?");
    let message = r.message.as_deref().unwrap_or("");
    let first = message.lines().next().unwrap_or("");
    let element = if r.outcome == "fail" {
        "failure"
    } else {
        "error"
    };
    format!(
        "{head}>\n      <{element} type=\"{}\" message=\"{}\">{}</{element}>\n    </testcase>\n",
        escape(check),
        escape(&format!("{check}: {first}")),
        escape_text(&format!(
            "{message}\nreproduce: {}",
            r.reproduce_with(&cat.replay)
        ))
    )
}

/// The JUnit XML document of `records` (sorted by scenario, then seed); `cat` names
/// the reproduce command and each scenario's promises.
pub fn render(records: &[RunRecord], cat: &Catalogue) -> String {
    let sums = summarize(records);
    let mut suites = String::new();
    let (mut tests, mut failures, mut errors, mut skipped, mut time_ms) = (0, 0, 0, 0, 0.0);
    for (name, s) in &sums {
        let mut runs: Vec<&RunRecord> = records.iter().filter(|r| &r.scenario == name).collect();
        runs.sort_by_key(|r| r.seed);
        let mut body: String = runs.iter().map(|r| case(r, cat)).collect();
        let mut t = runs.len() as u64;
        let mut f = runs.iter().filter(|r| r.outcome == "fail").count() as u64;
        let e = runs
            .iter()
            .filter(|r| r.failed() && r.outcome != "fail")
            .count() as u64;
        let mut sk = 0;
        if let Some((pf, ps, xml)) = promises_case(name, s, cat) {
            t += 1;
            f += pf;
            sk += ps;
            body.push_str(&xml);
        }
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"{e}\" skipped=\"{sk}\" time=\"{}\">\n{}{}  </testsuite>\n",
            escape(name),
            secs(s.wall_time_ms),
            properties(name, s, cat),
            body
        );
        tests += t;
        failures += f;
        errors += e;
        skipped += sk;
        time_ms += s.wall_time_ms;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"seedbank sweep\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\">\n{suites}</testsuites>\n",
        secs(time_ms)
    )
}

#[cfg(test)]
#[path = "junit_tests.rs"]
mod tests;
