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
        prop_assert_eq!(&render(&parse(&text).unwrap()), &text);
        // A read of keys only is the full read without what it leaves out.
        let mut hollow = l.clone();
        for s in hollow.cells.values_mut().flat_map(|c| c.stages.values_mut()) {
            (s.metrics, s.inputs, s.started, s.finished) = Default::default();
        }
        let keys = format::parse_to(&text, Depth::Keys).ok();
        prop_assert_eq!(keys.as_ref(), Some(&hollow));
        // The binary cache of those keys gives them back exactly.
        prop_assert_eq!(keycache::round_trip(&hollow), Some(hollow));
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

    /// Folding a cell at a time writes exactly what loading everything
    /// writes, and says the same about whether the file changed.
    #[test]
    fn fold_writes_what_compact_writes(
        l in lockfile(),
        present in any::<bool>(),
        records in prop::collection::vec((any::<prop::sample::Index>(), text(), prop::sample::select(vec!["agent", "judge", "eval"]), cell(), stage()), 0..5),
        drop_some in any::<bool>(),
        new_name in any::<bool>(),
    ) {
        let ids: Vec<String> = l.cells.keys().cloned().collect();
        let mut journal = journal::MAGIC.to_vec();
        for (pick, fresh, stage, header, rec) in &records {
            // Records of cells the lockfile has, and of new ones.
            let id = if ids.is_empty() || fresh.len() % 2 == 0 { fresh.clone() } else { pick.get(&ids).clone() };
            journal.extend(frame(&id, header, stage, rec));
        }
        let keep = |id: &str| !drop_some || id.len() % 3 != 1;
        let header = |h: &mut Lockfile| if new_name { h.experiment = "renamed".into() };
        let mut out = Vec::new();
        for streamed in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.lock");
            if present {
                std::fs::write(&path, render(&l)).unwrap();
            }
            if !records.is_empty() {
                std::fs::write(journal_path(&path), &journal).unwrap();
            }
            let (written, replay) = if streamed {
                // Rendered lockfiles and whole journals never need the fallback.
                fold::stream(&path, &header, &keep).unwrap().expect("streamed")
            } else {
                compact(&path, |l| { header(l); l.cells.retain(|id, _| keep(id)); }).unwrap()
            };
            prop_assert!(!journal_path(&path).exists());
            out.push((written, replay.records, std::fs::read(&path).ok()));
        }
        prop_assert_eq!(&out[0], &out[1]);
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

/// A successful record with no metrics or inputs, for the tests below.
fn succeeded(key: &str) -> StageRecord {
    StageRecord {
        key: key.into(),
        status: StageStatus::Success,
        path: "v1/x".into(),
        started: "s".into(),
        finished: "f".into(),
        duration_s: 1.0,
        exit_code: Some(0),
        metrics: BTreeMap::new(),
        inputs: BTreeMap::new(),
    }
}

/// What the cell-at-a-time fold does not expect, it leaves to `compact`:
/// a torn journal (its whole records kept), a hand-edited lockfile.
#[test]
fn fold_hands_unexpected_files_to_compact() {
    let rec = |key: &str| StageRecord { inputs: [("schema".to_string(), "3".to_string())].into(), ..succeeded(key) };
    let c = CellRecord { model: "m".into(), benchmark: "b".into(), agent: "a".into(), seed: 1, stages: BTreeMap::new() };
    let mut l = Lockfile { experiment: "x".into(), ..Lockfile::default() };
    l.cells.insert("c1".into(), CellRecord { stages: [("agent".to_string(), rec("k0"))].into(), ..c.clone() });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.lock");
    // Reformatted by hand: still a lockfile, no longer the canonical text.
    std::fs::write(&path, render(&l).replace("version 1\n", "version 1\n\n")).unwrap();
    let (a, b) = (frame("c1", &c, "judge", &rec("k1")), frame("c2", &c, "agent", &rec("k2")));
    let mut j = journal::MAGIC.to_vec();
    j.extend(&a);
    j.extend(&b[..b.len() / 2]);
    std::fs::write(journal_path(&path), &j).unwrap();
    let (written, replay) = fold(&path, |_| {}, |_| true).unwrap();
    assert!(written);
    assert_eq!((replay.records, replay.ignored_bytes), (1, b.len() / 2));
    let back = Lockfile::load(&path).unwrap();
    assert_eq!(back.stage("c1", "judge"), Some(&rec("k1")));
    assert_eq!(back.stage("c1", "agent"), Some(&rec("k0")));
    assert!(!back.cells.contains_key("c2"));
    // Now canonical, and nothing to fold: not written again.
    let before = std::fs::metadata(&path).unwrap();
    assert!(!fold(&path, |_| {}, |_| true).unwrap().0);
    assert_eq!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()), std::os::unix::fs::MetadataExt::ino(&before));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
}

#[test]
fn a_large_lockfile_split_inside_a_multibyte_character_reads_back() {
    // Found by an attacker: one long multi-byte metric put the middle of a
    // large lockfile inside a character, and every command panicked.
    let rec = StageRecord { metrics: [("note".to_string(), MetricValue::Text("é".repeat(200_000)))].into(), ..succeeded("k") };
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
