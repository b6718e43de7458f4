//! Hand-written logic of the friend service (port 8002): friend requests, friendships and
//! remarks.
//!
//! Build it with [`FriendService::new`] from a [`FriendDeps`], serve it with
//! `beehive_generated::friend::server(Arc::new(service), limits)`, and start its background
//! tasks with [`FriendService::spawn_background`]: the relay that publishes `friend.event`
//! rows of `friend_outbox` to the bus, and the sweep that marks old pending requests expired.
//!
//! Decisions where the contracts are silent:
//! - A friendship is two `friends` rows, one per direction, written in one transaction with a
//!   `friend.event` outbox row (`{"type":"accepted","request_id","from_user_id","to_user_id"}`)
//!   that push consumers deliver. Deleting writes a `{"type":"deleted",…}` event the same way.
//! - A second request while one is pending between the same two users is FAILED_PRECONDITION
//!   naming the pending request, in either direction. Concurrent requests between two users,
//!   either way, meet the unique `pending_key` (`"low:high"` user ids, cleared once handled),
//!   so exactly one pending row is made.
//! - A request pending for more than `friend.request_expiry_days` (7) is expired: it is listed
//!   with status 3, cannot be handled, and no longer blocks a new request. The sweep and every
//!   write that meets one store status 3 with `handled_at` = creation + 7 days.
//! - After a request from A to B is rejected or expires, A may not ask B again for
//!   `friend.retry_block_hours` (24) counted from `handled_at`; B may ask A at once. The block
//!   holds only while that refusal is the latest closed request between the two: once B asked
//!   A and A accepted (or rejected), a friendship later deleted leaves A free to ask again.
//! - GetFriendRequests lists the requests the user received, newest first, every status.
//! - UpdateFriendRemark with an empty remark clears it.

beehive_generated::friend_logic_modules!();

mod events;
mod lists;
mod requests;

use std::sync::Arc;
use std::time::Duration;

use beehive_generated::user::UserClient;
use beehive_runtime::bus::{Bus, Outbox, OutboxRelay, RelayConfig, RelayHandle};
use beehive_runtime::cache::Cache;
use beehive_runtime::config::Config;
use beehive_runtime::rate_limit::RateLimiter;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// Name of the friend service's outbox table.
pub const OUTBOX_TABLE: &str = "friend_outbox";
/// Pause between two sweeps for expired requests.
const EXPIRY_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Dependencies of [`FriendService::new`].
#[derive(Clone)]
pub struct FriendDeps {
    pub config: Arc<Config>,
    /// Connection to the database holding `friends`, `friend_requests` and `friend_outbox`,
    /// migrated with `FriendMigrator`.
    pub db: DatabaseConnection,
    /// Database name, which qualifies the friend-list cache keys.
    pub db_name: String,
    pub cache: Arc<dyn Cache>,
    /// Client of the user service, used to check that a request's target exists.
    pub users: UserClient,
}

/// Logic of `FriendService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct FriendService {
    config: Arc<Config>,
    db: DatabaseConnection,
    lists: lists::FriendLists,
    users: UserClient,
    outbox: Outbox,
    request_limiter: RateLimiter,
}

/// Background tasks of the friend service; [`FriendTasks::stop`] ends them.
pub struct FriendTasks {
    relay: RelayHandle,
    sweep: tokio::task::JoinHandle<()>,
    cancel: CancellationToken,
}

impl FriendTasks {
    /// Stops the relay and the sweep and waits for both.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.relay.stop().await;
        if let Err(err) = self.sweep.await {
            tracing::error!(error = %err, "the friend request sweep task failed");
        }
    }
}

/// Marks up to one batch of pending requests older than `expiry` expired (status 3, handled
/// at creation + `expiry`); returns how many. The background sweep runs this every minute.
pub async fn sweep_expired_once(
    db: &DatabaseConnection,
    expiry: chrono::Duration,
) -> Result<usize, beehive_runtime::ServiceError> {
    requests::sweep_once(db, expiry).await
}

impl FriendService {
    pub fn new(deps: FriendDeps) -> Self {
        let outbox = match Outbox::new(OUTBOX_TABLE) {
            Ok(outbox) => outbox,
            // The name is a valid constant, so this branch never runs.
            Err(_) => unreachable!("`friend_outbox` is a valid outbox table name"),
        };
        Self {
            request_limiter: RateLimiter::new(
                "friend requests",
                deps.config.rate_limit.friend_requests_per_sec,
            ),
            lists: lists::FriendLists::new(deps.db.clone(), deps.db_name, deps.cache),
            config: deps.config,
            db: deps.db,
            users: deps.users,
            outbox,
        }
    }

    /// Starts the outbox relay (publishing `friend.event` to `bus`) and the expiry sweep.
    pub fn spawn_background(&self, bus: Arc<dyn Bus>) -> FriendTasks {
        let relay = OutboxRelay::new(
            self.db.clone(),
            self.outbox.clone(),
            bus,
            RelayConfig::default(),
        )
        .spawn();
        let cancel = CancellationToken::new();
        let sweep = tokio::spawn(requests::sweep_expired(
            self.db.clone(),
            self.expiry(),
            EXPIRY_SWEEP_INTERVAL,
            cancel.clone(),
        ));
        FriendTasks {
            relay,
            sweep,
            cancel,
        }
    }

    /// Age after which a pending request is expired.
    fn expiry(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.config.friend.request_expiry_days))
    }

    /// Time after a rejected or expired request before its sender may ask again.
    fn retry_block(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.config.friend.retry_block_hours))
    }
}
