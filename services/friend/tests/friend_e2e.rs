//! The friend service end to end over gRPC (with the user service it calls), on SQLite and on
//! PostgreSQL + Redis.

#[path = "../../user/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use beehive_generated::entity::friend_requests as requests;
use beehive_generated::pb::friend::{
    DeleteFriendRequest, GetFriendRequestsRequest, GetFriendsRequest, HandleFriendRequestRequest,
    IsFriendRequest, SendFriendRequestRequest, UpdateFriendRemarkRequest,
};
use beehive_runtime::bus::{
    Bus, Event, EventHandler, HandlerError, Subscription, TOPIC_FRIEND_EVENT,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use support::{Backend, Stack, expect_code};
use tokio::sync::mpsc;
use tonic::Code;

struct Forward(mpsc::UnboundedSender<Event>);

#[async_trait]
impl EventHandler for Forward {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.0.send(event.clone()).ok();
        Ok(())
    }
}

/// A registered user and their token.
struct Member {
    id: i64,
    token: String,
}

async fn member(stack: &Stack, name: &str) -> Member {
    let (id, token) = stack.register(name).await;
    Member { id, token }
}

async fn send(stack: &Stack, from: &Member, to: i64) -> Result<i64, beehive_runtime::ServiceError> {
    let request = SendFriendRequestRequest {
        from_user_id: from.id,
        to_user_id: to,
        message: format!("hi from {}", from.id),
    };
    stack
        .friends
        .send_friend_request(stack.with_token(&from.token, request))
        .await
        .map(|response| response.request_id)
}

async fn handle(
    stack: &Stack,
    by: &Member,
    request_id: i64,
    accept: bool,
) -> Result<(), beehive_runtime::ServiceError> {
    let request = HandleFriendRequestRequest {
        request_id,
        user_id: by.id,
        accept,
    };
    stack
        .friends
        .handle_friend_request(stack.with_token(&by.token, request))
        .await
        .map(|_| ())
}

async fn friend_ids(stack: &Stack, of: &Member) -> Vec<i64> {
    let response = stack
        .friends
        .get_friends(stack.with_token(&of.token, GetFriendsRequest { user_id: of.id }))
        .await
        .expect("get friends");
    response
        .friends
        .iter()
        .map(|friend| friend.friend_id)
        .collect()
}

async fn is_friend(stack: &Stack, of: &Member, other: i64) -> bool {
    let request = IsFriendRequest {
        user_id: of.id,
        friend_id: other,
    };
    stack
        .friends
        .is_friend(stack.with_token(&of.token, request))
        .await
        .expect("is friend")
        .is_friend
}

async fn request_rows(stack: &Stack) -> i64 {
    stack
        .count("SELECT COUNT(*) AS n FROM friend_requests")
        .await
}

async fn friend_rows(stack: &Stack) -> i64 {
    stack.count("SELECT COUNT(*) AS n FROM friends").await
}

async fn outbox_rows(stack: &Stack) -> i64 {
    stack.count("SELECT COUNT(*) AS n FROM friend_outbox").await
}

async fn accept_makes_friends(stack: &Stack) {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let _subscription = stack
        .bus
        .subscribe(
            Subscription::fan_out("friend-test", &[TOPIC_FRIEND_EVENT]),
            Arc::new(Forward(events_tx)),
        )
        .await
        .expect("subscribe");
    let amy = member(stack, "amy").await;
    let ben = member(stack, "ben").await;
    // Cache both empty lists first, so the checks below see invalidation.
    assert!(friend_ids(stack, &amy).await.is_empty());
    assert!(friend_ids(stack, &ben).await.is_empty());

    let request_id = send(stack, &amy, ben.id).await.expect("send");
    handle(stack, &ben, request_id, true).await.expect("accept");

    assert_eq!(friend_rows(stack).await, 2);
    assert_eq!(friend_ids(stack, &amy).await, vec![ben.id]);
    assert_eq!(friend_ids(stack, &ben).await, vec![amy.id]);
    assert!(is_friend(stack, &amy, ben.id).await);
    assert!(is_friend(stack, &ben, amy.id).await);
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("friend event within 5 s")
        .expect("event");
    assert_eq!(event.topic, "friend.event");
    assert_eq!(event.payload["type"], "accepted");
    assert_eq!(event.payload["request_id"], request_id);
    assert_eq!(event.payload["from_user_id"], amy.id);
    assert_eq!(event.payload["to_user_id"], ben.id);

    let again = handle(stack, &ben, request_id, true).await;
    expect_code(again, Code::FailedPrecondition);
    let reject_after = handle(stack, &ben, request_id, false).await;
    expect_code(reject_after, Code::FailedPrecondition);
    let already = send(stack, &amy, ben.id).await;
    let message = expect_code(already, Code::FailedPrecondition);
    assert!(message.contains("already your friend"), "{message}");
    assert_eq!(request_rows(stack).await, 1);
    assert_eq!(friend_rows(stack).await, 2);

    let requests = stack
        .friends
        .get_friend_requests(
            stack.with_token(&ben.token, GetFriendRequestsRequest { user_id: ben.id }),
        )
        .await
        .expect("requests");
    assert_eq!(requests.requests.len(), 1);
    assert_eq!(requests.requests[0].status, 1);
    assert_eq!(requests.requests[0].from_user_id, amy.id);
}
on_both_backends!(accept_makes_friends);

async fn refused_requests_write_nothing(stack: &Stack) {
    let cy = member(stack, "cy").await;
    let di = member(stack, "di").await;

    let to_self = send(stack, &cy, cy.id).await;
    let message = expect_code(to_self, Code::InvalidArgument);
    assert!(message.contains("`to_user_id`"), "{message}");
    let unknown = send(stack, &cy, 987_654).await;
    expect_code(unknown, Code::NotFound);
    let as_other = stack
        .friends
        .send_friend_request(stack.with_token(
            &cy.token,
            SendFriendRequestRequest {
                from_user_id: di.id,
                to_user_id: cy.id,
                message: String::new(),
            },
        ))
        .await;
    expect_code(as_other, Code::PermissionDenied);
    let long_message = stack
        .friends
        .send_friend_request(stack.with_token(
            &cy.token,
            SendFriendRequestRequest {
                from_user_id: cy.id,
                to_user_id: di.id,
                message: "m".repeat(201),
            },
        ))
        .await;
    expect_code(long_message, Code::InvalidArgument);
    let anonymous = stack
        .friends
        .send_friend_request(tonic::Request::new(SendFriendRequestRequest {
            from_user_id: cy.id,
            to_user_id: di.id,
            message: String::new(),
        }))
        .await;
    expect_code(anonymous, Code::Unauthenticated);
    assert_eq!(request_rows(stack).await, 0);

    let first = send(stack, &cy, di.id).await.expect("send");
    let duplicate = send(stack, &cy, di.id).await;
    let message = expect_code(duplicate, Code::FailedPrecondition);
    assert!(message.contains(&first.to_string()), "{message}");
    let reverse = send(stack, &di, cy.id).await;
    let message = expect_code(reverse, Code::FailedPrecondition);
    assert!(
        message.contains(&format!("friend request {first}")),
        "{message}"
    );
    assert_eq!(request_rows(stack).await, 1);

    let by_sender = handle(stack, &cy, first, true).await;
    expect_code(by_sender, Code::PermissionDenied);
    let for_other = stack
        .friends
        .handle_friend_request(stack.with_token(
            &cy.token,
            HandleFriendRequestRequest {
                request_id: first,
                user_id: di.id,
                accept: true,
            },
        ))
        .await;
    expect_code(for_other, Code::PermissionDenied);
    let missing = handle(stack, &di, first + 1000, true).await;
    expect_code(missing, Code::NotFound);
    let pending = stack
        .count("SELECT COUNT(*) AS n FROM friend_requests WHERE status = 0")
        .await;
    assert_eq!(pending, 1);
    assert_eq!(friend_rows(stack).await, 0);
    assert_eq!(outbox_rows(stack).await, 0);
}
on_both_backends!(refused_requests_write_nothing);

async fn rejection_blocks_a_day(stack: &Stack) {
    let ed = member(stack, "ed").await;
    let flo = member(stack, "flo").await;

    let first = send(stack, &ed, flo.id).await.expect("send");
    handle(stack, &flo, first, false).await.expect("reject");
    assert_eq!(friend_rows(stack).await, 0);

    let again = send(stack, &ed, flo.id).await;
    let message = expect_code(again, Code::FailedPrecondition);
    assert!(message.contains("rejected or expired"), "{message}");
    assert_eq!(request_rows(stack).await, 1);

    // The 24-hour rule binds only the rejected sender.
    let reverse = send(stack, &flo, ed.id).await.expect("reverse request");
    assert!(reverse > first);

    // A day later the rejected sender may ask again.
    let day_ago = chrono::Utc::now() - chrono::Duration::hours(25);
    set_times(stack, first, day_ago, Some(day_ago)).await;
    handle(stack, &ed, reverse, false)
        .await
        .expect("ed rejects flo");
    let later = send(stack, &ed, flo.id).await.expect("request after a day");
    assert!(later > reverse);
}
on_both_backends!(rejection_blocks_a_day);

async fn later_friendship_lifts_block(stack: &Stack) {
    let alice = member(stack, "alice").await;
    let carol = member(stack, "carol").await;

    let rejected = send(stack, &alice, carol.id).await.expect("send");
    handle(stack, &carol, rejected, false)
        .await
        .expect("carol rejects");
    let accepted = send(stack, &carol, alice.id).await.expect("carol asks");
    handle(stack, &alice, accepted, true)
        .await
        .expect("alice accepts");
    stack
        .friends
        .delete_friend(stack.with_token(
            &alice.token,
            DeleteFriendRequest {
                user_id: alice.id,
                friend_id: carol.id,
            },
        ))
        .await
        .expect("alice deletes carol");
    assert_eq!(friend_rows(stack).await, 0);

    // The rejection is older than the friendship that followed, so it no longer blocks.
    let again = send(stack, &alice, carol.id)
        .await
        .expect("request after the deleted friendship");
    assert!(again > accepted);
    assert_eq!(status_of(stack, again).await, 0);
    assert_eq!(request_rows(stack).await, 3);
}
on_both_backends!(later_friendship_lifts_block);

/// Moves a request's `created_at` and `handled_at`.
async fn set_times(
    stack: &Stack,
    request_id: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    handled_at: Option<chrono::DateTime<chrono::Utc>>,
) {
    requests::Entity::update_many()
        .col_expr(requests::Column::CreatedAt, Expr::value(created_at))
        .col_expr(requests::Column::HandledAt, Expr::value(handled_at))
        .filter(requests::Column::Id.eq(request_id))
        .exec(&stack.db.connection)
        .await
        .expect("move request times");
}

async fn status_of(stack: &Stack, request_id: i64) -> i16 {
    requests::Entity::find_by_id(request_id)
        .one(&stack.db.connection)
        .await
        .expect("query")
        .expect("request row")
        .status
}

async fn old_requests_expire(stack: &Stack) {
    let gus = member(stack, "gus").await;
    let hal = member(stack, "hal").await;
    let ida = member(stack, "ida").await;

    // Pending 7 days and 1 hour: expired an hour ago, so gus is blocked for 23 more hours.
    let recent = send(stack, &gus, hal.id).await.expect("send");
    set_times(
        stack,
        recent,
        chrono::Utc::now() - chrono::Duration::hours(7 * 24 + 1),
        None,
    )
    .await;
    // Pending 9 days: expired 2 days ago, so ida may ask again.
    let old = send(stack, &ida, hal.id).await.expect("send");
    set_times(
        stack,
        old,
        chrono::Utc::now() - chrono::Duration::days(9),
        None,
    )
    .await;
    let fresh = send(stack, &gus, ida.id).await.expect("send");

    let listed = stack
        .friends
        .get_friend_requests(
            stack.with_token(&hal.token, GetFriendRequestsRequest { user_id: hal.id }),
        )
        .await
        .expect("requests");
    let statuses: Vec<(i64, i32)> = listed
        .requests
        .iter()
        .map(|request| (request.request_id, request.status))
        .collect();
    assert_eq!(statuses, vec![(recent, 3), (old, 3)]);

    let accept_expired = handle(stack, &hal, recent, true).await;
    let message = expect_code(accept_expired, Code::FailedPrecondition);
    assert!(message.contains("expired"), "{message}");
    assert_eq!(status_of(stack, recent).await, 3);
    assert_eq!(friend_rows(stack).await, 0);
    assert_eq!(outbox_rows(stack).await, 0);

    let blocked = send(stack, &gus, hal.id).await;
    expect_code(blocked, Code::FailedPrecondition);
    let renewed = send(stack, &ida, hal.id)
        .await
        .expect("request after expiry and a day");
    assert_eq!(status_of(stack, old).await, 3);
    assert_eq!(status_of(stack, renewed).await, 0);
    assert_eq!(status_of(stack, fresh).await, 0);
    assert_eq!(request_rows(stack).await, 4);
}
on_both_backends!(old_requests_expire);

async fn concurrent_requests_make_one_row(stack: &Stack) {
    let jo = member(stack, "jo").await;
    let kai = member(stack, "kai").await;

    let (first, second, third) = tokio::join!(
        send(stack, &jo, kai.id),
        send(stack, &jo, kai.id),
        send(stack, &jo, kai.id)
    );

    let outcomes = [first, second, third];
    let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(accepted, 1, "{outcomes:?}");
    for outcome in outcomes {
        if let Err(err) = outcome {
            assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
        }
    }
    assert_eq!(request_rows(stack).await, 1);

    let lea = member(stack, "lea").await;
    let mo = member(stack, "mo").await;
    let (forward, backward) = tokio::join!(send(stack, &lea, mo.id), send(stack, &mo, lea.id));
    assert_eq!(
        usize::from(forward.is_ok()) + usize::from(backward.is_ok()),
        1,
        "{forward:?} {backward:?}"
    );
    assert_eq!(request_rows(stack).await, 2);
}
on_both_backends!(concurrent_requests_make_one_row);

async fn delete_ends_friendship(stack: &Stack) {
    let lu = member(stack, "lu").await;
    let max = member(stack, "max").await;
    let request_id = send(stack, &lu, max.id).await.expect("send");
    handle(stack, &max, request_id, true).await.expect("accept");
    assert_eq!(friend_ids(stack, &max).await, vec![lu.id]);

    let delete = |by: &Member, friend_id: i64| {
        stack.friends.delete_friend(stack.with_token(
            &by.token,
            DeleteFriendRequest {
                user_id: by.id,
                friend_id,
            },
        ))
    };
    delete(&lu, max.id).await.expect("delete");
    assert_eq!(friend_rows(stack).await, 0);
    assert!(friend_ids(stack, &lu).await.is_empty());
    assert!(friend_ids(stack, &max).await.is_empty());
    assert!(!is_friend(stack, &max, lu.id).await);

    let again = delete(&lu, max.id).await;
    expect_code(again, Code::FailedPrecondition);
    let as_other = stack
        .friends
        .delete_friend(stack.with_token(
            &lu.token,
            DeleteFriendRequest {
                user_id: max.id,
                friend_id: lu.id,
            },
        ))
        .await;
    expect_code(as_other, Code::PermissionDenied);

    // Deletion does not block a new request.
    send(stack, &max, lu.id)
        .await
        .expect("new request after deletion");
}
on_both_backends!(delete_ends_friendship);

async fn remark_is_one_sided(stack: &Stack) {
    let ned = member(stack, "ned").await;
    let ola = member(stack, "ola").await;
    let pia = member(stack, "pia").await;
    let request_id = send(stack, &ned, ola.id).await.expect("send");
    handle(stack, &ola, request_id, true).await.expect("accept");
    let remarks = |of: &Member| {
        let of_id = of.id;
        let token = of.token.clone();
        async move {
            let response = stack
                .friends
                .get_friends(stack.with_token(&token, GetFriendsRequest { user_id: of_id }))
                .await
                .expect("get friends");
            response
                .friends
                .into_iter()
                .map(|friend| friend.remark)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(remarks(&ned).await, vec![String::new()]);

    let update = |by: &Member, friend_id: i64, remark: String| {
        stack.friends.update_friend_remark(stack.with_token(
            &by.token,
            UpdateFriendRemarkRequest {
                user_id: by.id,
                friend_id,
                remark,
            },
        ))
    };
    update(&ned, ola.id, "Ola from work".to_owned())
        .await
        .expect("remark");
    assert_eq!(remarks(&ned).await, vec!["Ola from work".to_owned()]);
    assert_eq!(remarks(&ola).await, vec![String::new()]);

    let limit = "界".repeat(50);
    update(&ned, ola.id, limit.clone())
        .await
        .expect("50-character remark");
    assert_eq!(remarks(&ned).await, vec![limit.clone()]);
    let too_long = update(&ned, ola.id, "界".repeat(51)).await;
    let message = expect_code(too_long, Code::InvalidArgument);
    assert!(message.contains("`remark`"), "{message}");
    let not_friend = update(&ned, pia.id, "Pia".to_owned()).await;
    expect_code(not_friend, Code::FailedPrecondition);
    assert_eq!(remarks(&ned).await, vec![limit]);
    let other_side = stack
        .count("SELECT COUNT(*) AS n FROM friends WHERE remark IS NOT NULL")
        .await;
    assert_eq!(other_side, 1);
}
on_both_backends!(remark_is_one_sided);

async fn requests_listed_newest_first(stack: &Stack) {
    let quin = member(stack, "quin").await;
    let senders = [
        member(stack, "rae").await,
        member(stack, "sol").await,
        member(stack, "tia").await,
    ];
    let mut ids = Vec::new();
    for (offset, sender) in senders.iter().enumerate() {
        let id = send(stack, sender, quin.id).await.expect("send");
        let minutes = i64::try_from(10 - offset).unwrap_or(0);
        set_times(
            stack,
            id,
            chrono::Utc::now() - chrono::Duration::minutes(minutes),
            None,
        )
        .await;
        ids.push(id);
    }
    handle(stack, &quin, ids[0], false).await.expect("reject");
    handle(stack, &quin, ids[1], true).await.expect("accept");

    let listed = stack
        .friends
        .get_friend_requests(
            stack.with_token(&quin.token, GetFriendRequestsRequest { user_id: quin.id }),
        )
        .await
        .expect("requests");
    let seen: Vec<(i64, i32)> = listed
        .requests
        .iter()
        .map(|request| (request.request_id, request.status))
        .collect();
    assert_eq!(seen, vec![(ids[2], 0), (ids[1], 1), (ids[0], 2)]);
    assert_eq!(
        listed.requests[2].message,
        format!("hi from {}", senders[0].id)
    );
    let as_other = stack
        .friends
        .get_friend_requests(stack.with_token(
            &senders[0].token,
            GetFriendRequestsRequest { user_id: quin.id },
        ))
        .await;
    expect_code(as_other, Code::PermissionDenied);
}
on_both_backends!(requests_listed_newest_first);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_stores_expiry() {
    let stack = Stack::start(Backend::Sqlite).await.expect("stack");
    let uma = member(&stack, "uma").await;
    let vic = member(&stack, "vic").await;
    let id = send(&stack, &uma, vic.id).await.expect("send");
    let eight_days_ago = (chrono::Utc::now() - chrono::Duration::days(8)).timestamp();
    let created = chrono::DateTime::from_timestamp(eight_days_ago, 0).expect("time");
    set_times(&stack, id, created, None).await;

    let expired =
        beehive_friend::sweep_expired_once(&stack.db.connection, chrono::Duration::days(7))
            .await
            .expect("sweep");
    assert_eq!(expired, 1);
    let row = requests::Entity::find_by_id(id)
        .one(&stack.db.connection)
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.status, 3);
    assert_eq!(row.pending_key, None);
    assert_eq!(row.handled_at, Some(created + chrono::Duration::days(7)));
    stack.stop().await;
}
