//! Whatever a stage or a spec can put into a lockfile reads back exactly,
//! through both readers and through the journal; and no text at all makes
//! a reader panic. A metric is the stage's data: an adversary chooses it.

use super::*;
use crate::status::StageStatus;
use proptest::prelude::*;

/// Any string, with the characters KDL treats specially well represented.
fn text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"', '\\', '\n', '\r', '\t', '\u{0}', '\u{b}', '\u{c}', '\u{7f}', '\u{85}', '\u{200e}', '\u{2028}', '\u{2029}', '\u{202e}', '\u{2067}', '\u{feff}',
        '{', '}', ';', '=', '#', ' ', '/', 'é', '日', '😀',
    ]);
    prop::collection::vec(prop_oneof![3 => any::<char>(), 2 => special, 2 => prop::char::range('a', 'z')], 0..24).prop_map(|v| v.into_iter().collect())
}

fn metric() -> impl Strategy<Value = MetricValue> {
    prop_oneof![
        any::<bool>().prop_map(MetricValue::Bool),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(MetricValue::Number),
        text().prop_map(MetricValue::Text),
    ]
}

fn stage() -> impl Strategy<Value = StageRecord> {
    (
        text(),
        prop::sample::select(StageStatus::ALL.to_vec()),
        text(),
        (text(), text()),
        0u64..10_000_000_000,
        any::<Option<i32>>(),
        prop::collection::btree_map(text(), metric(), 0..4),
        prop::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(|(key, status, path, (started, finished), ms, exit_code, metrics, inputs)| StageRecord {
            key,
            status,
            path,
            started,
            finished,
            duration_s: ms as f64 / 1000.0,
            exit_code,
            metrics,
            inputs,
        })
}

fn cell() -> impl Strategy<Value = CellRecord> {
    (text(), text(), text(), any::<u64>(), prop::collection::btree_map(prop::sample::select(vec!["agent", "judge", "eval", "x"]), stage(), 0..3)).prop_map(
        |(model, benchmark, agent, seed, stages)| CellRecord {
            model,
            benchmark,
            agent,
            seed,
            stages: stages.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        },
    )
}

fn lockfile() -> impl Strategy<Value = Lockfile> {
    (
        text(),
        text(),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec((text(), prop::option::of(0.0f64..10.0)), 0..3),
        prop::collection::vec((text(), text()), 0..2),
        prop::collection::btree_map(text(), text(), 0..2),
        prop::collection::btree_map(text(), cell(), 0..4),
        prop::collection::vec((text(), any::<bool>(), text()), 0..2),
        prop::collection::btree_map(text(), (text(), text(), text(), text()), 0..3),
    )
        .prop_map(|(experiment, ptb_version, models, benchmarks, agents, pins, cells, reviews, hub)| Lockfile {
            experiment,
            ptb_version,
            models,
            benchmarks: benchmarks.into_iter().map(|(name, weight)| BenchmarkInfo { name, weight }).collect(),
            agents: agents.into_iter().map(|(name, kind)| AgentInfo { name, kind }).collect(),
            pins,
            reviews: reviews
                .into_iter()
                .map(|(cell, pass, reason)| crate::judge::Review {
                    cell,
                    verdict: if pass { crate::judge::Verdict::Pass } else { crate::judge::Verdict::Flagged },
                    reason,
                })
                .collect(),
            hub: hub.into_iter().map(|(k, (repo, revision, commit, sha256))| (k, HubPin { repo, revision, commit, sha256 })).collect(),
            cells,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rendered_lockfiles_read_back_exactly(l in lockfile()) {
        let text = render(&l);
        // The fast reader must read what the writer writes: the journal has
        // no other reader, so a record it declined would be lost.
        let fast = fast::parse_canonical(&text);
        prop_assert_eq!(fast.as_ref(), Some(&l), "fast reader");
        prop_assert_eq!(&format::parse_kdl_for_tests(&text).map_err(|e| e.message), &Ok(l.clone()), "KDL parser");
        prop_assert_eq!(render(&parse(&text).unwrap()), text);
    }

    #[test]
    fn journal_records_replay_exactly(id in text(), c in cell(), st in stage()) {
        let mut bytes = b"ptb-journal 1\n".to_vec();
        bytes.extend(frame(&id, &c, "eval", &st));
        let mut l = Lockfile::default();
        let r = journal::replay(&mut l, &bytes);
        prop_assert_eq!(r.records, 1);
        prop_assert_eq!(r.ignored_bytes, 0);
        prop_assert_eq!(l.cells[&id].stages.get("eval"), Some(&st));
    }

    #[test]
    fn no_text_makes_a_reader_panic(s in text(), cut in 0usize..4000, l in lockfile()) {
        let _ = parse(&s);
        // Damaged lockfiles: truncated anywhere, even mid-character.
        let full = render(&l);
        let bytes = full.as_bytes();
        let cut = cut.min(bytes.len());
        let _ = parse(&String::from_utf8_lossy(&bytes[..cut]));
        let mut j = b"ptb-journal 1\n".to_vec();
        j.extend(&bytes[..cut]);
        let _ = journal::replay(&mut Lockfile::default(), &j);
    }
}

#[test]
fn a_large_lockfile_split_inside_a_multibyte_character_reads_back() {
    // Found by an attacker: one long multi-byte metric put the middle of a
    // large lockfile inside a character, and every command panicked.
    let rec = StageRecord {
        key: "k".into(),
        status: StageStatus::Success,
        path: "v1/x".into(),
        started: "s".into(),
        finished: "f".into(),
        duration_s: 1.0,
        exit_code: Some(0),
        metrics: [("note".to_string(), MetricValue::Text("é".repeat(200_000)))].into(),
        inputs: BTreeMap::new(),
    };
    let c = CellRecord { model: "m".into(), benchmark: "b".into(), agent: "a".into(), seed: 1, stages: [("eval".to_string(), rec)].into() };
    for shift in 0..4 {
        let mut l = Lockfile { experiment: "x".repeat(shift), ..Lockfile::default() };
        l.cells.insert("m/b/a/seed=1".into(), c.clone());
        l.cells.insert("m/b/a/seed=2".into(), c.clone());
        let text = render(&l);
        assert!(text.len() > 256 << 10);
        assert_eq!(parse(&text).unwrap(), l);
    }
}
