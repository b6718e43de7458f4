//! One conformance suite for every `Cache` backend: moka in process, and Redis when
//! `BEEHIVE_TEST_REDIS_URL` is set. Each Redis run uses keys under its own random prefix.

use std::sync::Arc;
use std::time::Duration;

use beehive_runtime::cache::{Cache, CacheError, DEFAULT_KEY_PREFIX, MokaCache, RedisCache};
use beehive_runtime::config::CacheConfig;
use beehive_runtime::testing::{REDIS_URL_VAR, backend_url};

const LONG: Duration = Duration::from_secs(600);
const SHORT: Duration = Duration::from_millis(300);
/// Long enough for an entry with TTL `SHORT` to be gone.
const PAST_SHORT: Duration = Duration::from_millis(700);

struct Suite {
    cache: Arc<dyn Cache>,
    prefix: String,
}

impl Suite {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

fn moka() -> Suite {
    Suite {
        cache: Arc::new(MokaCache::default()),
        prefix: String::new(),
    }
}

async fn redis() -> Option<Suite> {
    let url = backend_url(REDIS_URL_VAR)?;
    let cache = RedisCache::connect(&url).await.unwrap();
    Some(Suite {
        cache: Arc::new(cache),
        prefix: format!("test:conformance:{}:", uuid::Uuid::new_v4().simple()),
    })
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_moka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(&super::moka()).await;
                }
            )*
        }

        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(suite) = super::redis().await else { return };
                    super::$name(&suite).await;
                }
            )*
        }
    };
}

conformance!(
    get_set_roundtrip,
    set_replaces_value_and_ttl,
    entries_expire,
    get_many_keeps_order,
    delete_removes_many,
    set_if_absent_stores_once,
    set_if_absent_after_expiry,
    incr_counts_from_zero,
    incr_keeps_first_ttl,
    incr_rejects_non_integer,
    concurrent_incr_is_atomic,
    concurrent_set_if_absent_has_one_winner,
);

async fn get_set_roundtrip(s: &Suite) {
    let key = s.key("roundtrip");
    assert_eq!(s.cache.get(&key).await.unwrap(), None);
    let value = r#"{"name":"还有可能是定期检修","n":1}"#;
    s.cache.set(&key, value, LONG).await.unwrap();
    assert_eq!(s.cache.get(&key).await.unwrap().as_deref(), Some(value));
}

async fn set_replaces_value_and_ttl(s: &Suite) {
    let key = s.key("replace");
    s.cache.set(&key, "one", SHORT).await.unwrap();
    s.cache.set(&key, "two", LONG).await.unwrap();
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(s.cache.get(&key).await.unwrap().as_deref(), Some("two"));
}

async fn entries_expire(s: &Suite) {
    let key = s.key("expire");
    s.cache.set(&key, "soon gone", SHORT).await.unwrap();
    assert_eq!(
        s.cache.get(&key).await.unwrap().as_deref(),
        Some("soon gone")
    );
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(s.cache.get(&key).await.unwrap(), None);
    assert_eq!(s.cache.get_many(&[key]).await.unwrap(), vec![None]);
}

async fn get_many_keeps_order(s: &Suite) {
    let (a, b, missing) = (s.key("many:a"), s.key("many:b"), s.key("many:missing"));
    s.cache.set(&a, "A", LONG).await.unwrap();
    s.cache.set(&b, "B", LONG).await.unwrap();
    let values = s
        .cache
        .get_many(&[b.clone(), missing, a.clone()])
        .await
        .unwrap();
    assert_eq!(
        values,
        vec![Some("B".to_owned()), None, Some("A".to_owned())]
    );
    assert_eq!(
        s.cache.get_many(&[]).await.unwrap(),
        Vec::<Option<String>>::new()
    );
}

async fn delete_removes_many(s: &Suite) {
    let (a, b, c) = (s.key("del:a"), s.key("del:b"), s.key("del:c"));
    for key in [&a, &b, &c] {
        s.cache.set(key, "x", LONG).await.unwrap();
    }
    s.cache
        .delete(&[a.clone(), b.clone(), s.key("del:missing")])
        .await
        .unwrap();
    assert_eq!(s.cache.get(&a).await.unwrap(), None);
    assert_eq!(s.cache.get(&b).await.unwrap(), None);
    assert_eq!(s.cache.get(&c).await.unwrap().as_deref(), Some("x"));
    s.cache.delete(&[]).await.unwrap();
}

async fn set_if_absent_stores_once(s: &Suite) {
    let key = s.key("nx");
    assert!(s.cache.set_if_absent(&key, "first", LONG).await.unwrap());
    assert!(!s.cache.set_if_absent(&key, "second", LONG).await.unwrap());
    assert_eq!(s.cache.get(&key).await.unwrap().as_deref(), Some("first"));
}

async fn set_if_absent_after_expiry(s: &Suite) {
    let key = s.key("nx:expiry");
    assert!(s.cache.set_if_absent(&key, "first", SHORT).await.unwrap());
    tokio::time::sleep(PAST_SHORT).await;
    assert!(s.cache.set_if_absent(&key, "second", LONG).await.unwrap());
    assert_eq!(s.cache.get(&key).await.unwrap().as_deref(), Some("second"));
}

async fn incr_counts_from_zero(s: &Suite) {
    let key = s.key("incr");
    assert_eq!(s.cache.incr(&key, 1, LONG).await.unwrap(), 1);
    assert_eq!(s.cache.incr(&key, 5, LONG).await.unwrap(), 6);
    assert_eq!(s.cache.incr(&key, -10, LONG).await.unwrap(), -4);
    assert_eq!(s.cache.get(&key).await.unwrap().as_deref(), Some("-4"));
}

async fn incr_keeps_first_ttl(s: &Suite) {
    let key = s.key("incr:ttl");
    assert_eq!(s.cache.incr(&key, 1, SHORT).await.unwrap(), 1);
    assert_eq!(s.cache.incr(&key, 1, LONG).await.unwrap(), 2);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(s.cache.get(&key).await.unwrap(), None);
    assert_eq!(s.cache.incr(&key, 1, LONG).await.unwrap(), 1);
}

async fn incr_rejects_non_integer(s: &Suite) {
    let key = s.key("incr:text");
    s.cache.set(&key, "not a number", LONG).await.unwrap();
    let error = s.cache.incr(&key, 1, LONG).await.unwrap_err();
    assert!(
        matches!(error, CacheError::NotAnInteger { .. }),
        "{error:?}"
    );
    assert_eq!(
        s.cache.get(&key).await.unwrap().as_deref(),
        Some("not a number")
    );
}

async fn concurrent_incr_is_atomic(s: &Suite) {
    let key = s.key("incr:concurrent");
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let cache = s.cache.clone();
            let key = key.clone();
            tokio::spawn(async move { cache.incr(&key, 1, LONG).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=200).collect::<Vec<i64>>());
}

async fn concurrent_set_if_absent_has_one_winner(s: &Suite) {
    let key = s.key("nx:concurrent");
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let cache = s.cache.clone();
            let key = key.clone();
            tokio::spawn(async move {
                cache
                    .set_if_absent(&key, &i.to_string(), LONG)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

/// Two deployments with different `cache.key_prefix` values on one Redis server: neither sees
/// the other's keys, and each key is stored under its own prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_key_prefixes_keep_deployments_apart() {
    let Some(url) = backend_url(REDIS_URL_VAR) else {
        return;
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let first_prefix = format!("test:prefix:{run}:first:");
    let second_prefix = format!("test:prefix:{run}:second:");
    let config = |key_prefix: &str| CacheConfig {
        redis_url: Some(url.clone()),
        default_ttl_secs: 600,
        key_prefix: key_prefix.to_owned(),
    };
    let first = beehive_runtime::cache::from_config(&config(&first_prefix))
        .await
        .unwrap();
    let second = beehive_runtime::cache::from_config(&config(&second_prefix))
        .await
        .unwrap();
    let raw = RedisCache::connect(&url).await.unwrap().with_key_prefix("");

    let online = "user:online:7".to_owned();
    first.set(&online, "first", LONG).await.unwrap();
    assert_eq!(second.get(&online).await.unwrap(), None);
    second.set(&online, "second", LONG).await.unwrap();
    assert_eq!(first.get(&online).await.unwrap().as_deref(), Some("first"));
    assert_eq!(
        second.get(&online).await.unwrap().as_deref(),
        Some("second")
    );
    assert_eq!(
        raw.get(&format!("{first_prefix}{online}"))
            .await
            .unwrap()
            .as_deref(),
        Some("first"),
        "stored under the first prefix"
    );
    assert_eq!(
        raw.get(&format!("{second_prefix}{online}"))
            .await
            .unwrap()
            .as_deref(),
        Some("second"),
        "stored under the second prefix"
    );

    let missing = "user:online:8".to_owned();
    assert_eq!(
        first
            .get_many(&[online.clone(), missing.clone()])
            .await
            .unwrap(),
        vec![Some("first".to_owned()), None]
    );

    let rate = "rate:login:127.0.0.1".to_owned();
    assert_eq!(first.incr(&rate, 1, LONG).await.unwrap(), 1);
    assert_eq!(first.incr(&rate, 1, LONG).await.unwrap(), 2);
    assert_eq!(second.incr(&rate, 1, LONG).await.unwrap(), 1);

    let code = "code:resend:a@example.com".to_owned();
    assert!(first.set_if_absent(&code, "1", LONG).await.unwrap());
    assert!(second.set_if_absent(&code, "1", LONG).await.unwrap());
    assert!(!first.set_if_absent(&code, "2", LONG).await.unwrap());

    second.delete(std::slice::from_ref(&online)).await.unwrap();
    assert_eq!(second.get(&online).await.unwrap(), None);
    assert_eq!(
        first.get(&online).await.unwrap().as_deref(),
        Some("first"),
        "a delete under one prefix leaves the other"
    );

    let all = [online, rate, code];
    first.delete(&all).await.unwrap();
    second.delete(&all).await.unwrap();
    for key in &all {
        for prefix in [&first_prefix, &second_prefix] {
            assert_eq!(raw.get(&format!("{prefix}{key}")).await.unwrap(), None);
        }
    }
}

#[tokio::test]
async fn redis_cache_uses_default_key_prefix() {
    let Some(url) = backend_url(REDIS_URL_VAR) else {
        return;
    };
    let cache = RedisCache::connect(&url).await.unwrap();
    assert_eq!(cache.key_prefix(), "beehive:");
    assert_eq!(DEFAULT_KEY_PREFIX, "beehive:");

    let key = format!("test:default-prefix:{}", uuid::Uuid::new_v4().simple());
    cache.set(&key, "value", LONG).await.unwrap();
    let raw = RedisCache::connect(&url).await.unwrap().with_key_prefix("");
    assert_eq!(
        raw.get(&format!("beehive:{key}")).await.unwrap().as_deref(),
        Some("value")
    );
    assert_eq!(raw.get(&key).await.unwrap(), None);
    cache.delete(&[key]).await.unwrap();
}
