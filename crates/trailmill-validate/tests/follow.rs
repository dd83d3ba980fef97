//! The monitor (`Follower`) against a one-shot `validate` on the same damaged
//! trail: catching up in polls of two digests per chain, wherever those
//! polls cut the chains, it finds exactly what one run over the whole range
//! finds; and once caught up, a poll costs one listing per chain and one per
//! log folder.

use std::collections::BTreeSet;

use trailmill_synth::SynthConfig;
use trailmill_validate::{
    AlertKind, Event, FollowConfig, Follower, LocalMirror, PublicKeys, Timestamp, ValidateConfig,
    validate,
};

mod common;
use common::*;

fn damaged() -> Trail {
    let t = Trail::new(SynthConfig {
        accounts: 1,
        regions: 2,
        hours: 10,
        logs_per_hour: 2,
        records: 3,
        seed: 5,
        ..SynthConfig::default()
    });
    let (a, b) = (t.report.regions[0].clone(), t.report.regions[1].clone());
    let chain_a = t.chain(t.account(), &a);
    let chain_b = t.chain(t.account(), &b);
    // A log file edited after delivery.
    let log = t.logs_of(&chain_a[2])[0].clone();
    let text = String::from_utf8(gunzip(&std::fs::read(t.path(&log)).unwrap())).unwrap();
    std::fs::write(
        t.path(&log),
        gzip(
            text.replacen("eventName\":\"", "eventName\":\"X", 1)
                .as_bytes(),
        ),
    )
    .unwrap();
    // One deleted digest, and two consecutive ones (the older inferred).
    for key in [&chain_a[5], &chain_b[3], &chain_b[4]] {
        std::fs::remove_file(t.path(key)).unwrap();
        std::fs::remove_file(t.path(&format!("{key}.sig"))).unwrap();
    }
    // A log file no digest lists.
    let model = t.logs_of(&chain_b[7])[0].clone();
    let planted = format!(
        "{}_PLANTEDPLANTED00.json.gz",
        model.rsplit_once('_').unwrap().0
    );
    std::fs::copy(t.path(&model), t.path(&planted)).unwrap();
    t
}

/// What a verdict says, without the run it came from: subject, key, and
/// `valid` or the problem's code.
fn verdict_of(v: &trailmill_validate::Verdict) -> (String, String, String) {
    let status = v.problem().map_or("valid", |p| p.code());
    (
        v.subject.as_str().to_owned(),
        v.key.clone(),
        status.to_owned(),
    )
}

fn config(t: &Trail) -> ValidateConfig {
    let mut c = ValidateConfig::all(Timestamp::from_second(t.report.start).unwrap());
    c.bucket = Some(t.report.bucket.clone());
    c
}

#[test]
fn catching_up_in_small_polls_finds_what_one_run_finds() {
    let t = damaged();
    let store = LocalMirror::new(&t.root).unwrap();
    let keys = PublicKeys::load(&t.root.join("keys.json")).unwrap();

    let mut one_shot = config(&t);
    one_shot.end = Some(Timestamp::from_second(t.report.end).unwrap());
    let mut expected = BTreeSet::new();
    let mut verdicts = Vec::new();
    validate(&store, &one_shot, &keys, &mut |e| {
        if let Event::Verdict(v) = e {
            verdicts.push(verdict_of(v));
            if let Some(kind) = AlertKind::of(v) {
                expected.insert((kind, v.key.clone()));
            }
        }
    })
    .unwrap();
    // The edited log, the three missing digests, the planted log, and the
    // six log files the deleted digests listed, which no digest lists now.
    assert_eq!(expected.len(), 11, "{expected:?}");
    verdicts.sort();

    let state = tempfile::tempdir().unwrap();
    let mut cfg = FollowConfig::new(config(&t));
    cfg.max_digests_per_poll = 2;
    cfg.max_logs_per_poll = 3;
    cfg.unattested_grace_secs = 0;
    // The trail is from 2024: its chains are not this test's concern.
    cfg.overdue_grace_secs = 20 * 365 * 86_400;
    let path = state.path().join("follow.db");
    let mut follower = Follower::open(&store, &keys, cfg, &path).unwrap();
    let mut found = BTreeSet::new();
    let mut followed = Vec::new();
    let mut polls = 0;
    loop {
        let poll = follower.poll(Timestamp::now(), &mut |_| None).unwrap();
        follower.delivered(&poll.alerts).unwrap();
        for e in &poll.events {
            if let Event::Verdict(v) = e {
                followed.push(verdict_of(v));
            }
        }
        for a in poll.alerts {
            assert!(
                found.insert((a.kind, a.key.clone())),
                "alerted twice: {a:?}"
            );
        }
        polls += 1;
        if !poll.backlog {
            break;
        }
        assert!(polls < 100, "the catch-up does not end");
    }
    assert!(
        polls >= 5,
        "two digests per poll over ten hours: {polls} polls"
    );
    assert_eq!(found, expected);
    // Not only the findings: every verdict, valid ones included, each once.
    followed.sort();
    assert_eq!(followed, verdicts);

    // Caught up: a poll with nothing new lists each chain and each log
    // folder once, and alerts nothing.
    let poll = follower.poll(Timestamp::now(), &mut |_| None).unwrap();
    assert!(poll.alerts.is_empty(), "{:?}", poll.alerts);
    assert_eq!((poll.chains, poll.requests), (2, 4));

    // Reopened, the state resumes where it was: nothing again.
    drop(follower);
    let mut cfg = FollowConfig::new(config(&t));
    cfg.overdue_grace_secs = 20 * 365 * 86_400;
    let mut follower = Follower::open(&store, &keys, cfg, &path).unwrap();
    assert!(follower.undelivered().unwrap().is_empty());
    let poll = follower.poll(Timestamp::now(), &mut |_| None).unwrap();
    assert!(poll.alerts.is_empty(), "{:?}", poll.alerts);
    assert_eq!(poll.digests, 0);
}

/// Collects the monitor's findings until it has caught up.
fn follow_all(
    store: &LocalMirror,
    keys: &PublicKeys,
    cfg: FollowConfig,
) -> BTreeSet<(AlertKind, String)> {
    let state = tempfile::tempdir().unwrap();
    let mut follower = Follower::open(store, keys, cfg, &state.path().join("follow.db")).unwrap();
    let mut found = BTreeSet::new();
    for _ in 0..100 {
        let poll = follower.poll(Timestamp::now(), &mut |_| None).unwrap();
        follower.delivered(&poll.alerts).unwrap();
        found.extend(poll.alerts.into_iter().map(|a| (a.kind, a.key)));
        if !poll.backlog {
            return found;
        }
    }
    panic!("the catch-up does not end");
}

#[test]
fn without_sidecars_the_newest_digest_waits_for_its_successor() {
    let t = damaged();
    // A mirror made by `aws s3 sync`: no signatures at all.
    let mut sigs = Vec::new();
    let mut stack = vec![t.root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "sig") {
                sigs.push(p);
            }
        }
    }
    assert!(!sigs.is_empty());
    for p in sigs {
        std::fs::remove_file(p).unwrap();
    }
    let store = LocalMirror::new(&t.root).unwrap();
    let keys = PublicKeys::load(&t.root.join("keys.json")).unwrap();

    // A one-shot run cannot verify offline a digest no newer digest links
    // to: each chain's newest, and those before a deleted digest.
    let newest: BTreeSet<String> = t
        .report
        .regions
        .iter()
        .map(|r| t.chain(t.account(), r).pop().unwrap())
        .collect();
    let mut one_shot = config(&t);
    one_shot.end = Some(Timestamp::from_second(t.report.end).unwrap());
    let mut expected = BTreeSet::new();
    let mut unverifiable = 0;
    validate(&store, &one_shot, &keys, &mut |e| {
        if let Event::Verdict(v) = e
            && let Some(kind) = AlertKind::of(v)
        {
            let offline = v
                .problem()
                .is_some_and(|p| p.code() == "signature_not_available_offline");
            unverifiable += usize::from(offline);
            if !(offline && newest.contains(&v.key)) {
                expected.insert((kind, v.key.clone()));
            }
        }
    })
    .unwrap();
    assert_eq!(unverifiable, 4, "{expected:?}");

    // The monitor waits for the successor that will vouch for a chain's
    // newest digest instead of alerting; everything else is the same.
    let mut cfg = FollowConfig::new(config(&t));
    cfg.max_digests_per_poll = 3;
    cfg.unattested_grace_secs = 0;
    cfg.overdue_grace_secs = 20 * 365 * 86_400;
    assert_eq!(follow_all(&store, &keys, cfg), expected);
}

#[test]
fn following_one_trail_in_one_region_finds_what_one_run_finds() {
    let t = damaged();
    let store = LocalMirror::new(&t.root).unwrap();
    let keys = PublicKeys::load(&t.root.join("keys.json")).unwrap();
    for region in &t.report.regions {
        let trail = |start: Timestamp| {
            let arn = trailmill_validate::TrailArn::parse(&t.report.trail_arn).unwrap();
            let mut c = ValidateConfig::trail(arn, start);
            c.bucket = Some(t.report.bucket.clone());
            c.region = Some(region.clone());
            c
        };
        let start = Timestamp::from_second(t.report.start).unwrap();
        let mut one_shot = trail(start);
        one_shot.end = Some(Timestamp::from_second(t.report.end).unwrap());
        let mut expected = BTreeSet::new();
        validate(&store, &one_shot, &keys, &mut |e| {
            if let Event::Verdict(v) = e
                && let Some(kind) = AlertKind::of(v)
            {
                expected.insert((kind, v.key.clone()));
            }
        })
        .unwrap();
        assert!(!expected.is_empty(), "{region}: both regions are damaged");
        let mut cfg = FollowConfig::new(trail(start));
        cfg.max_digests_per_poll = 4;
        cfg.unattested_grace_secs = 0;
        cfg.overdue_grace_secs = 20 * 365 * 86_400;
        assert_eq!(follow_all(&store, &keys, cfg), expected, "{region}");
    }
}
