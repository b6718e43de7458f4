//! `beehive replay` of the first 200 chitchat conversations against `beehive up` in this
//! process, run twice: counts checked against the corpus, and nothing created the second time.

use std::sync::Arc;

use beehive::clients::{Clients, with_token};
use beehive::corpus::Corpus;
use beehive::replay::plan::ReplayPlan;
use beehive::replay::replay_against;
use beehive::replay::run::{ReplayOptions, ReplaySummary};
use beehive_generated::pb::message::GetMessagesRequest;
use beehive_tests::corpus::{dataset_text, expected};
use beehive_tests::deploy::Deployment;

const CONVERSATIONS: usize = 200;

/// Counts the stored messages of `conversations` by paging their history.
async fn stored_messages(deployment: &Deployment, conversations: &[Option<i64>]) -> usize {
    let clients = Clients::connect(&deployment.endpoints, 1).await.unwrap();
    let token = deployment
        .stack
        .authenticator()
        .issue_service_token()
        .unwrap();
    let mut total = 0;
    for conversation in conversations.iter().flatten() {
        let mut before_id = 0;
        loop {
            let request = GetMessagesRequest {
                conversation_id: *conversation,
                before_id,
                limit: 100,
            };
            let page = clients
                .message(0)
                .get_messages(with_token(request, &token))
                .await
                .unwrap()
                .into_inner();
            total += page.messages.len();
            match page.messages.last() {
                Some(last) if page.has_more => before_id = last.message_id,
                _ => break,
            }
        }
    }
    total
}

fn assert_no_failures(summary: &ReplaySummary) {
    assert_eq!(summary.users.failed, Default::default(), "users");
    assert_eq!(
        summary.friendships.failed,
        Default::default(),
        "friendships"
    );
    assert_eq!(
        summary.conversations.failed,
        Default::default(),
        "conversations"
    );
    assert_eq!(summary.messages.failed, Default::default(), "messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_200_conversations_twice() {
    let Some(text) = dataset_text() else { return };
    let want = expected(&text, CONVERSATIONS).unwrap();
    let mut corpus = Corpus::parse(text.as_bytes()).unwrap();
    corpus.truncate(CONVERSATIONS);
    let plan = Arc::new(ReplayPlan::build(&corpus));
    let options = ReplayOptions {
        concurrency: 16,
        progress: false,
    };
    let deployment = Deployment::embedded().await.unwrap();

    let first = replay_against(
        &deployment.endpoints,
        deployment.outbox(),
        Arc::clone(&plan),
        &options,
    )
    .await
    .unwrap();
    assert_no_failures(&first);
    assert_eq!(first.users.created, want.users as u64);
    assert_eq!(first.users.existing, 0);
    assert_eq!(first.friendships.created, want.friendships as u64);
    assert_eq!(first.conversations.created, want.friendships as u64);
    assert_eq!(first.messages.sent, want.sendable as u64);
    assert_eq!(first.messages.skipped_count(), want.blank as u64);
    let distinct: std::collections::BTreeSet<i64> =
        first.conversation_ids.iter().flatten().copied().collect();
    assert_eq!(distinct.len(), want.friendships);
    assert_eq!(
        stored_messages(&deployment, &first.conversation_ids).await,
        want.sendable
    );

    let second = replay_against(&deployment.endpoints, deployment.outbox(), plan, &options)
        .await
        .unwrap();
    assert_no_failures(&second);
    assert_eq!(second.users.created, 0);
    assert_eq!(second.users.existing, want.users as u64);
    assert_eq!(second.friendships.created, 0);
    assert_eq!(second.friendships.existing, want.friendships as u64);
    assert_eq!(second.user_ids, first.user_ids);
    assert_eq!(second.conversation_ids, first.conversation_ids);
    assert_eq!(second.message_ids, first.message_ids);
    assert_eq!(
        stored_messages(&deployment, &second.conversation_ids).await,
        want.sendable
    );

    deployment.stop().await;
}
