//! Fitting shards together, on records made by hand: every refusal, and the merged
//! report judging a promise no shard could.

use super::super::record::{report, Catalogue, Promises};
use super::*;
use sim_runtime::cover::must_reach;

fn bitrot(name: &str) -> Option<Promises> {
    (name == "bitrot").then(|| Promises {
        must_reach: vec![must_reach("fs.bitflip.read", 10)],
        universe: ["fs.bitflip.read"].into_iter().collect(),
    })
}

fn tagged(scenario: &str, seed: u64, shard: u64, shards: u64) -> RunRecord {
    let mut r = RunRecord::error(scenario, seed, "x", String::new());
    r.outcome = "pass".into();
    r.failed_check = None;
    r.sweep = Some(SweepTag {
        from: 0,
        to: 6,
        shard,
        shards,
        wall_s: shard as f64,
        explore: false,
    });
    r
}

fn shard(k: u64, n: u64, names: &[&str]) -> Shard {
    let records = (0..6)
        .filter(|s| s % n == k - 1)
        .flat_map(|s| names.iter().map(move |name| tagged(name, s, k, n)))
        .collect();
    Shard {
        file: format!("s{k}.jsonl"),
        tag: tagged("a", 0, k, n).sweep.expect("tagged"),
        records,
    }
}

fn three(names: &[&str]) -> Vec<Shard> {
    (1..=3).map(|k| shard(k, 3, names)).collect()
}

#[test]
fn shards_that_fit_make_one_sweep_with_the_slowest_wall_time() {
    let (records, tag) = fit(three(&["a", "b"])).expect("they fit");
    assert_eq!(records.len(), 12);
    let order: Vec<(u64, &str)> = records
        .iter()
        .map(|r| (r.seed, r.scenario.as_str()))
        .take(3)
        .collect();
    assert_eq!(
        order,
        [(0, "a"), (0, "b"), (1, "a")],
        "sorted as a sweep sorts"
    );
    assert_eq!((tag.from, tag.to, tag.shard, tag.shards), (0, 6, 1, 1));
    assert_eq!(tag.wall_s, 3.0);
}

#[test]
fn every_misfit_is_refused_with_its_seeds_named() {
    let mut s = three(&["a"]);
    s.remove(1);
    let e = fit(s).unwrap_err().to_string();
    assert_eq!(
        e,
        "a: seeds of 0..6 missing (gaps: 1, 4); no file for shard 2/3"
    );

    let mut s = three(&["a"]);
    s.push(shard(2, 3, &["a"]));
    assert_eq!(
        fit(s).unwrap_err().to_string(),
        "s2.jsonl and s2.jsonl are both shard 2/3"
    );

    let mut s = three(&["a"]);
    let again = s[0].records[1].clone();
    s[0].records.push(again);
    assert_eq!(
        fit(s).unwrap_err().to_string(),
        "a: seeds present more than once: 3"
    );

    let mut s = three(&["a"]);
    let stray = s[0].records[0].clone();
    s[1].records.push(stray);
    assert_eq!(
        fit(s).unwrap_err().to_string(),
        "s2.jsonl is shard 2/3 but holds a seed 0, which is not in it"
    );

    let mut s = three(&["a"]);
    s[2] = shard(1, 2, &["a"]);
    s[2].file = "other.jsonl".into();
    assert_eq!(
        fit(s).unwrap_err().to_string(),
        "the shards are of different sweeps: s1.jsonl is seeds 0..6 in 3 shards, other.jsonl is seeds 0..6 in 2 shards"
    );

    let mut s = three(&["a", "b"]);
    s[1] = shard(2, 3, &["a"]);
    assert_eq!(
        fit(s).unwrap_err().to_string(),
        "the shards ran different scenarios: s1.jsonl has a,b, s2.jsonl has a"
    );

    let mut s = three(&["a"]);
    let mut out = s[0].records[0].clone();
    out.seed = 9;
    s[0].records.push(out);
    assert!(fit(s)
        .unwrap_err()
        .to_string()
        .contains("seeds outside the range: 9"));
}

#[test]
fn a_tag_that_cannot_be_is_refused_and_a_huge_gap_is_counted_not_listed() {
    let dir = host::scratch_dir("merge-tag").expect("scratch");
    for (shard, shards, from, to) in [(0, 3, 0, 6), (4, 3, 0, 6), (1, 0, 0, 6), (1, 1, 6, 6)] {
        let mut r = tagged("a", 0, shard, shards);
        if let Some(t) = r.sweep.as_mut() {
            (t.from, t.to) = (from, to);
        }
        let p = dir.join("bad-tag.jsonl");
        host::write_text(&p, &serde_json::to_string(&r).expect("json")).expect("write");
        assert!(
            matches!(merge(&[p]), Err(MergeError::BadTag { line: 1, .. })),
            "{shard}/{shards} {from}..{to}"
        );
    }
    let mut s = shard(1, 1, &["a"]);
    s.tag.to = u64::MAX;
    let e = fit(vec![s]).unwrap_err().to_string();
    assert!(
        e.contains(&format!("6..=205; {} seeds in all", u64::MAX - 6)),
        "{e}"
    );
}

#[test]
fn long_seed_lists_are_shortened_to_ranges() {
    assert_eq!(seed_list(&[1, 2, 3, 5, 7, 8]), "1..=3, 5, 7..=8");
    let many: Vec<u64> = (0..100).map(|s| s * 2).collect();
    let l = seed_list(&many);
    assert!(l.ends_with("… (80 more)"), "{l}");
}

#[test]
fn a_promise_no_shard_can_judge_is_judged_over_the_merged_runs() {
    let cat = Catalogue {
        replay: "cargo sim replay".into(),
        promises: &bitrot,
    };
    let sc = bitrot("bitrot").expect("stated above");
    let m = sc.must_reach[0];
    // Each shard of 0..3S holds S runs, as many as the promise's bound: counting runs
    // would judge (and fail) it; its seeds are not all of 0..S, so it must not.
    let (from, to) = (0, 3 * m.within);
    let part = |k: u64| -> Vec<RunRecord> {
        (from..to)
            .filter(|s| s % 3 == k - 1)
            .map(|s| {
                let mut r = tagged("bitrot", s, k, 3);
                r.sweep = None;
                r
            })
            .collect()
    };
    for k in 1..=3 {
        let (text, clean) = report(&part(k), 1.0, &cat);
        assert!(clean, "a shard does not judge the promise:\n{text}");
        assert!(
            text.contains(&format!("must-reach {} not judged", m.mark)),
            "{text}"
        );
    }
    let all: Vec<RunRecord> = (1..=3).flat_map(part).collect();
    let (text, clean) = report(&all, 1.0, &cat);
    assert!(!clean, "{text}");
    assert!(
        text.contains(&format!(
            "MUST-REACH MISSED {}: no seed reached coverage mark {}",
            "bitrot", m.mark
        )),
        "{text}"
    );
}

#[test]
fn unreadable_untagged_and_explore_files_are_refused() {
    let dir = host::scratch_dir("merge-test").expect("scratch");
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        host::write_text(&p, text).expect("write");
        p
    };
    let bad = file("bad.jsonl", "{not json\n");
    assert!(matches!(
        merge(&[bad]),
        Err(MergeError::Unreadable { line: 1, .. })
    ));
    let mut r = tagged("a", 0, 1, 1);
    r.sweep = None;
    let untagged = file(
        "untagged.jsonl",
        &format!("\n{}\n", serde_json::to_string(&r).expect("json")),
    );
    assert!(matches!(
        merge(&[untagged]),
        Err(MergeError::Untagged { line: 2, .. })
    ));
    let mut r = tagged("a", 0, 1, 1);
    if let Some(t) = r.sweep.as_mut() {
        t.explore = true;
    }
    let explored = file("explore.jsonl", &serde_json::to_string(&r).expect("json"));
    assert!(matches!(
        merge(&[explored]),
        Err(MergeError::Explore { .. })
    ));
    let empty = file("empty.jsonl", "");
    assert!(matches!(merge(&[empty]), Err(MergeError::Empty(_))));
}
