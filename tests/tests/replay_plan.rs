//! The replay plan's counts against counts derived independently from the corpus JSON.

use beehive::corpus::Corpus;
use beehive::replay::plan::ReplayPlan;
use beehive_tests::corpus::{dataset_text, expected};

fn check_limit(text: &str, limit: usize) {
    let want = expected(text, limit).unwrap();
    let mut corpus = Corpus::parse(text.as_bytes()).unwrap();
    corpus.truncate(limit);
    let counts = ReplayPlan::build(&corpus).counts();

    assert_eq!(
        counts.corpus_conversations, want.conversations,
        "limit {limit}"
    );
    assert_eq!(counts.corpus_messages, want.messages, "limit {limit}");
    assert_eq!(counts.users, want.users, "limit {limit}");
    assert_eq!(counts.friendships, want.friendships, "limit {limit}");
    assert_eq!(counts.conversations, want.friendships, "limit {limit}");
    assert_eq!(counts.messages, want.sendable, "limit {limit}");
    assert_eq!(counts.skipped, want.blank, "limit {limit}");
}

#[test]
fn plan_matches_corpus_counts() {
    let Some(text) = dataset_text() else { return };
    for limit in [1, 200, usize::MAX] {
        check_limit(&text, limit);
    }
}

#[test]
fn full_corpus_expected_numbers() {
    let Some(text) = dataset_text() else { return };
    let want = expected(&text, usize::MAX).unwrap();
    assert_eq!(want.conversations, 7_168);
    assert_eq!(want.messages, 258_145);
    assert_eq!(want.blank, 33);
}
