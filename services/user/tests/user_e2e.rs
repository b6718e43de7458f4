//! The user service end to end over gRPC, on SQLite and on PostgreSQL + Redis.

mod support;

use beehive_generated::model::users::UsersModel;
use beehive_generated::pb::user::{
    GetUserInfoRequest, GetUsersByIdsRequest, LoginRequest, RegisterRequest, SendCodeRequest,
    UpdateOnlineStatusRequest, UpdateUserInfoRequest, VerifyCodeRequest, VerifyPasswordRequest,
};
use beehive_runtime::Caller;
use beehive_runtime::cache::CacheAside;
use std::net::IpAddr;

use beehive_user::{OnlineState, login_failures_key, online_key};
use support::{Backend, PASSWORD, Stack, expect_code};
use tonic::{Code, Request};

fn send_code_request(email: &str, purpose: &str) -> SendCodeRequest {
    SendCodeRequest {
        email: email.to_owned(),
        purpose: purpose.to_owned(),
    }
}

fn register_request(username: &str, email: &str, code: &str) -> RegisterRequest {
    RegisterRequest {
        username: username.to_owned(),
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        code: code.to_owned(),
    }
}

fn login_request(account: &str, password: &str) -> LoginRequest {
    LoginRequest {
        account: account.to_owned(),
        password: password.to_owned(),
    }
}

async fn code_rows(stack: &Stack) -> i64 {
    stack
        .count("SELECT COUNT(*) AS n FROM email_verification_codes")
        .await
}

async fn user_rows(stack: &Stack) -> i64 {
    stack.count("SELECT COUNT(*) AS n FROM users").await
}

async fn register_flow(stack: &Stack) {
    let email = "alice@example.com";
    let code = stack.send_code(email).await;
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");

    let again = stack
        .users
        .send_verification_code(Request::new(send_code_request(email, "register")))
        .await;
    expect_code(again, Code::ResourceExhausted);
    let other_purpose = stack
        .users
        .send_verification_code(Request::new(send_code_request(email, "bind_email")))
        .await;
    expect_code(other_purpose, Code::ResourceExhausted);
    assert_eq!(stack.mail_count(), 1);
    assert_eq!(code_rows(stack).await, 1);

    let verify = VerifyCodeRequest {
        email: email.to_owned(),
        code: code.clone(),
        purpose: "register".to_owned(),
    };
    let checked = stack.users.verify_code(Request::new(verify.clone())).await;
    assert!(checked.expect("verify code").success);
    let checked_again = stack.users.verify_code(Request::new(verify.clone())).await;
    assert!(checked_again.expect("verify code twice").success);
    let wrong_purpose = VerifyCodeRequest {
        purpose: "reset_password".to_owned(),
        ..verify.clone()
    };
    expect_code(
        stack.users.verify_code(Request::new(wrong_purpose)).await,
        Code::InvalidArgument,
    );

    let registered = stack
        .users
        .register(Request::new(register_request(
            "alice",
            "Alice@Example.com",
            &code,
        )))
        .await
        .expect("register");
    assert!(registered.user_id > 0);
    let claims = stack
        .authenticator
        .verify_claims(&registered.token)
        .expect("token verifies");
    assert_eq!(claims.sub, registered.user_id.to_string());
    assert_eq!(claims.exp - claims.iat, 7 * 24 * 3600);
    let used = stack
        .count("SELECT COUNT(*) AS n FROM email_verification_codes WHERE used = TRUE")
        .await;
    assert_eq!(used, 1);

    let reused = stack
        .users
        .register(Request::new(register_request("alice2", email, &code)))
        .await;
    let message = expect_code(reused, Code::InvalidArgument);
    assert!(message.contains("`code`"), "{message}");
    expect_code(
        stack.users.verify_code(Request::new(verify)).await,
        Code::InvalidArgument,
    );
    assert_eq!(user_rows(stack).await, 1);

    let by_name = stack
        .users
        .login(Request::new(login_request("alice", PASSWORD)))
        .await
        .expect("login by username");
    assert_eq!(by_name.user_id, registered.user_id);
    assert_eq!(by_name.username, "alice");
    assert_eq!(by_name.nickname, "alice");
    let by_email = stack
        .users
        .login(Request::new(login_request("ALICE@example.com", PASSWORD)))
        .await
        .expect("login by email");
    assert_eq!(by_email.user_id, registered.user_id);
    assert_eq!(
        stack.authenticator.verify(&by_email.token).ok(),
        Some(Caller::User(registered.user_id))
    );

    let info = stack
        .users
        .get_user_info(stack.with_token(
            &by_email.token,
            GetUserInfoRequest {
                user_id: registered.user_id,
            },
        ))
        .await
        .expect("own info");
    assert_eq!(info.email, "alice@example.com");
    assert!(info.online);
    assert!(info.last_login_at > 0);
    assert!(info.created_at > 0);
    assert_eq!(info.status, 1);
}
on_both_backends!(register_flow);

async fn invalid_purpose_writes_nothing(stack: &Stack) {
    let refused = stack
        .users
        .send_verification_code(Request::new(send_code_request("bob@example.com", "login")))
        .await;
    let message = expect_code(refused, Code::InvalidArgument);
    assert!(message.contains("`purpose`"), "{message}");
    let bad_email = stack
        .users
        .send_verification_code(Request::new(send_code_request("not-an-email", "register")))
        .await;
    expect_code(bad_email, Code::InvalidArgument);
    assert_eq!(code_rows(stack).await, 0);
    assert_eq!(stack.mail_count(), 0);

    // The refused calls did not claim the resend interval.
    stack.send_code("bob@example.com").await;
    assert_eq!(code_rows(stack).await, 1);
}
on_both_backends!(invalid_purpose_writes_nothing);

async fn wrong_guesses_burn_code(stack: &Stack) {
    let email = "carol@example.com";
    let code = stack.send_code(email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let guess = VerifyCodeRequest {
            email: email.to_owned(),
            code: wrong.to_owned(),
            purpose: "register".to_owned(),
        };
        expect_code(
            stack.users.verify_code(Request::new(guess)).await,
            Code::InvalidArgument,
        );
    }
    let attempts = stack
        .count("SELECT CAST(MAX(attempts) AS BIGINT) AS n FROM email_verification_codes")
        .await;
    assert_eq!(attempts, 5);

    let right = VerifyCodeRequest {
        email: email.to_owned(),
        code: code.clone(),
        purpose: "register".to_owned(),
    };
    expect_code(
        stack.users.verify_code(Request::new(right)).await,
        Code::InvalidArgument,
    );
    let register = stack
        .users
        .register(Request::new(register_request("carol", email, &code)))
        .await;
    expect_code(register, Code::InvalidArgument);
    assert_eq!(user_rows(stack).await, 0);
    let attempts = stack
        .count("SELECT CAST(MAX(attempts) AS BIGINT) AS n FROM email_verification_codes")
        .await;
    assert_eq!(attempts, 5);
}
on_both_backends!(wrong_guesses_burn_code);

async fn expired_code_rejected(stack: &Stack) {
    let email = "erin@example.com";
    let code = stack.send_code(email).await;
    stack
        .execute("UPDATE email_verification_codes SET expired_at = created_at")
        .await;

    let register = stack
        .users
        .register(Request::new(register_request("erin", email, &code)))
        .await;
    expect_code(register, Code::InvalidArgument);
    assert_eq!(user_rows(stack).await, 0);
}
on_both_backends!(expired_code_rejected);

async fn taken_names_rejected(stack: &Stack) {
    stack.register("dave").await;
    let code = stack.send_code("other@example.com").await;

    let same_name = stack
        .users
        .register(Request::new(register_request(
            "dave",
            "other@example.com",
            &code,
        )))
        .await;
    let message = expect_code(same_name, Code::AlreadyExists);
    assert!(message.contains("username"), "{message}");

    let code_dave = stack.send_code("dave2@example.com").await;
    stack
        .execute("UPDATE users SET email = 'dave2@example.com' WHERE username = 'dave'")
        .await;
    // The cached row still has the old email; a fresh lookup by the new one goes to the table.
    let same_email = stack
        .users
        .register(Request::new(register_request(
            "dave2",
            "dave2@example.com",
            &code_dave,
        )))
        .await;
    let message = expect_code(same_email, Code::AlreadyExists);
    assert!(message.contains("email"), "{message}");
    assert_eq!(user_rows(stack).await, 1);
    let used = stack
        .count("SELECT COUNT(*) AS n FROM email_verification_codes WHERE used = TRUE")
        .await;
    assert_eq!(used, 1, "only dave's own registration used a code");

    // The refused registration left its code usable.
    let registered = stack
        .users
        .register(Request::new(register_request(
            "frank",
            "other@example.com",
            &code,
        )))
        .await;
    assert!(registered.is_ok(), "{registered:?}");
}
on_both_backends!(taken_names_rejected);

async fn usernames_ignore_case(stack: &Stack) {
    let (alice_id, _) = stack.register("Alice").await;
    let code = stack.send_code("other@example.com").await;

    let upper = stack
        .users
        .register(Request::new(register_request(
            "ALICE",
            "other@example.com",
            &code,
        )))
        .await;
    let message = expect_code(upper, Code::AlreadyExists);
    assert_eq!(
        message,
        "`username` already exists: this username is already taken"
    );
    assert_eq!(user_rows(stack).await, 1);
    let used = stack
        .count("SELECT COUNT(*) AS n FROM email_verification_codes WHERE used = TRUE")
        .await;
    assert_eq!(used, 1, "the refused registration used its code");

    for account in ["alice", "ALICE", "Alice", " aLiCe "] {
        let login = stack
            .users
            .login(Request::new(login_request(account, PASSWORD)))
            .await;
        let login = login.unwrap_or_else(|err| panic!("login as `{account}`: {err}"));
        assert_eq!(login.user_id, alice_id, "{account}");
        assert_eq!(login.username, "Alice", "{account}");
    }

    // Two registrations that differ only in case race on the unique lowercase key.
    let first_code = stack.send_code("h1@example.com").await;
    let second_code = stack.send_code("h2@example.com").await;
    let first = stack.users.register(Request::new(register_request(
        "Hank",
        "h1@example.com",
        &first_code,
    )));
    let second = stack.users.register(Request::new(register_request(
        "hank",
        "h2@example.com",
        &second_code,
    )));
    let (first, second) = tokio::join!(first, second);
    let successes = [first.is_ok(), second.is_ok()];
    assert_eq!(
        successes.iter().filter(|ok| **ok).count(),
        1,
        "{first:?} {second:?}"
    );
    let failure = if first.is_ok() { second } else { first };
    let message = expect_code(failure, Code::AlreadyExists);
    assert!(message.contains("username"), "{message}");
    assert_eq!(user_rows(stack).await, 2);
}
on_both_backends!(usernames_ignore_case);

async fn concurrent_registrations_make_one_user(stack: &Stack) {
    let first_code = stack.send_code("g1@example.com").await;
    let second_code = stack.send_code("g2@example.com").await;

    let first = stack.users.register(Request::new(register_request(
        "grace",
        "g1@example.com",
        &first_code,
    )));
    let second = stack.users.register(Request::new(register_request(
        "grace",
        "g2@example.com",
        &second_code,
    )));
    let (first, second) = tokio::join!(first, second);

    let successes = [first.is_ok(), second.is_ok()];
    assert_eq!(
        successes.iter().filter(|ok| **ok).count(),
        1,
        "{first:?} {second:?}"
    );
    let failure = if first.is_ok() { second } else { first };
    let message = expect_code(failure, Code::AlreadyExists);
    assert!(message.contains("username"), "{message}");
    assert_eq!(user_rows(stack).await, 1);
    let used = stack
        .count("SELECT COUNT(*) AS n FROM email_verification_codes WHERE used = TRUE")
        .await;
    assert_eq!(used, 1);
}
on_both_backends!(concurrent_registrations_make_one_user);

async fn login_failures_lock_account(stack: &Stack) {
    let (id, _) = stack.register("heidi").await;

    let unknown = stack
        .users
        .login(Request::new(login_request("nobody", PASSWORD)))
        .await;
    let unknown_message = expect_code(unknown, Code::Unauthenticated);
    let wrong = stack
        .users
        .login(Request::new(login_request("heidi", "wrong password")))
        .await;
    let wrong_message = expect_code(wrong, Code::Unauthenticated);
    assert_eq!(unknown_message, wrong_message);

    for _ in 1..5 {
        let wrong = stack
            .users
            .login(Request::new(login_request("heidi", "wrong password")))
            .await;
        expect_code(wrong, Code::Unauthenticated);
    }
    let locked = stack
        .users
        .login(Request::new(login_request("heidi", PASSWORD)))
        .await;
    let locked_message = expect_code(locked, Code::ResourceExhausted);
    assert_eq!(
        locked_message,
        "resource exhausted: too many failed logins to this account from this address, retry in 60 seconds"
    );
    let logged_in = stack
        .count(&format!(
            "SELECT COUNT(*) AS n FROM users WHERE id = {id} AND last_login_at IS NOT NULL"
        ))
        .await;
    assert_eq!(logged_in, 0);
    let online = stack.cache.get(&online_key(id)).await.expect("cache");
    assert_eq!(online, None);

    // An unknown account fails and locks exactly like a known one.
    for _ in 1..5 {
        let unknown = stack
            .users
            .login(Request::new(login_request("nobody", PASSWORD)))
            .await;
        let message = expect_code(unknown, Code::Unauthenticated);
        assert_eq!(message, wrong_message);
    }
    let unknown_locked = stack
        .users
        .login(Request::new(login_request("nobody", PASSWORD)))
        .await;
    let unknown_locked_message = expect_code(unknown_locked, Code::ResourceExhausted);
    assert_eq!(unknown_locked_message, locked_message);

    // Failures from another address neither count here nor lock the owner out.
    let here = Some(IpAddr::from([127, 0, 0, 1]));
    let elsewhere = Some(IpAddr::from([192, 0, 2, 7]));
    let here_count = stack
        .cache
        .get(&login_failures_key("heidi", here))
        .await
        .expect("cache");
    assert_eq!(here_count.as_deref(), Some("5"));
    stack
        .cache
        .delete(&[login_failures_key("heidi", here)])
        .await
        .expect("cache");
    stack
        .cache
        .set(
            &login_failures_key("heidi", elsewhere),
            "5",
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("cache");
    let unlocked = stack
        .users
        .login(Request::new(login_request("heidi", PASSWORD)))
        .await;
    assert!(unlocked.is_ok(), "{unlocked:?}");
    let reset = stack
        .cache
        .get(&login_failures_key("heidi", here))
        .await
        .expect("cache");
    assert_eq!(reset, None);
}
on_both_backends!(login_failures_lock_account);

async fn stale_token_ignored_by_login(stack: &Stack) {
    let (id, _) = stack.register("ivan").await;
    let stale = "expired.garbage.token";

    let login = stack
        .users
        .login(stack.with_token(stale, login_request("ivan", PASSWORD)))
        .await;
    let login = login.unwrap_or_else(|err| panic!("login with a stale token: {err}"));
    assert_eq!(login.user_id, id);
    let code = stack
        .users
        .send_verification_code(
            stack.with_token(stale, send_code_request("ivan2@example.com", "register")),
        )
        .await;
    assert!(code.is_ok(), "{code:?}");

    let info = stack
        .users
        .get_user_info(stack.with_token(stale, GetUserInfoRequest { user_id: id }))
        .await;
    let message = expect_code(info, Code::Unauthenticated);
    assert_eq!(message, "unauthenticated: invalid token");
    let fresh = stack
        .users
        .get_user_info(stack.with_token(&login.token, GetUserInfoRequest { user_id: id }))
        .await;
    assert!(fresh.is_ok(), "{fresh:?}");
}
on_both_backends!(stale_token_ignored_by_login);

async fn user_info_hides_email(stack: &Stack) {
    let (ivan, ivan_token) = stack.register("ivan").await;
    let (judy, judy_token) = stack.register("judy").await;

    let seen_by_other = stack
        .users
        .get_user_info(stack.with_token(&judy_token, GetUserInfoRequest { user_id: ivan }))
        .await
        .expect("other's info");
    assert_eq!(seen_by_other.username, "ivan");
    assert_eq!(seen_by_other.email, "");
    assert!(!seen_by_other.online);
    let seen_by_service = stack
        .users
        .get_user_info(
            stack.with_token(&stack.service_token(), GetUserInfoRequest { user_id: ivan }),
        )
        .await
        .expect("service reads info");
    assert_eq!(seen_by_service.email, "ivan@example.com");

    let missing = stack
        .users
        .get_user_info(stack.with_token(&ivan_token, GetUserInfoRequest { user_id: 999_999 }))
        .await;
    expect_code(missing, Code::NotFound);
    let anonymous = stack
        .users
        .get_user_info(Request::new(GetUserInfoRequest { user_id: ivan }))
        .await;
    expect_code(anonymous, Code::Unauthenticated);

    let batch = stack
        .users
        .get_users_by_ids(stack.with_token(
            &ivan_token,
            GetUsersByIdsRequest {
                user_ids: vec![judy, 999_999, ivan, judy],
            },
        ))
        .await
        .expect("batch");
    let ids: Vec<i64> = batch.users.iter().map(|user| user.user_id).collect();
    assert_eq!(ids, vec![judy, ivan]);
    assert_eq!(batch.users[0].email, "");
    assert_eq!(batch.users[1].email, "ivan@example.com");

    let too_many = stack
        .users
        .get_users_by_ids(stack.with_token(
            &ivan_token,
            GetUsersByIdsRequest {
                user_ids: (1..=101).collect(),
            },
        ))
        .await;
    let message = expect_code(too_many, Code::InvalidArgument);
    assert!(message.contains("`user_ids`"), "{message}");
}
on_both_backends!(user_info_hides_email);

async fn update_user_info_partial(stack: &Stack) {
    let (kim, kim_token) = stack.register("kim").await;
    let (_, lee_token) = stack.register("lee").await;
    let info = |token: &str| {
        stack
            .users
            .get_user_info(stack.with_token(token, GetUserInfoRequest { user_id: kim }))
    };
    // Warm the cache so the checks below see invalidation, not a first read.
    assert_eq!(info(&kim_token).await.expect("info").nickname, "kim");

    let update = UpdateUserInfoRequest {
        user_id: kim,
        nickname: "Kimberly".to_owned(),
        avatar_url: "https://img.example.com/k.png".to_owned(),
    };
    stack
        .users
        .update_user_info(stack.with_token(&kim_token, update))
        .await
        .expect("update both");
    let after = info(&kim_token).await.expect("info");
    assert_eq!(after.nickname, "Kimberly");
    assert_eq!(after.avatar, "https://img.example.com/k.png");

    let nickname_only = UpdateUserInfoRequest {
        user_id: kim,
        nickname: "Kim".to_owned(),
        avatar_url: String::new(),
    };
    stack
        .users
        .update_user_info(stack.with_token(&kim_token, nickname_only))
        .await
        .expect("update nickname");
    let after = info(&lee_token).await.expect("info");
    assert_eq!(after.nickname, "Kim");
    assert_eq!(after.avatar, "https://img.example.com/k.png");

    let for_other = UpdateUserInfoRequest {
        user_id: kim,
        nickname: "Hacked".to_owned(),
        avatar_url: String::new(),
    };
    expect_code(
        stack
            .users
            .update_user_info(stack.with_token(&lee_token, for_other))
            .await,
        Code::PermissionDenied,
    );
    let bad_url = UpdateUserInfoRequest {
        user_id: kim,
        nickname: String::new(),
        avatar_url: "ftp://img.example.com/k.png".to_owned(),
    };
    let message = expect_code(
        stack
            .users
            .update_user_info(stack.with_token(&kim_token, bad_url))
            .await,
        Code::InvalidArgument,
    );
    assert!(message.contains("`avatar_url`"), "{message}");
    let long_nickname = UpdateUserInfoRequest {
        user_id: kim,
        nickname: "n".repeat(51),
        avatar_url: String::new(),
    };
    let message = expect_code(
        stack
            .users
            .update_user_info(stack.with_token(&kim_token, long_nickname))
            .await,
        Code::InvalidArgument,
    );
    assert!(message.contains("`nickname`"), "{message}");
    let stored = stack
        .count("SELECT COUNT(*) AS n FROM users WHERE nickname = 'Kim' AND avatar_url = 'https://img.example.com/k.png'")
        .await;
    assert_eq!(stored, 1);
}
on_both_backends!(update_user_info_partial);

async fn online_status_in_cache(stack: &Stack) {
    let (mia, mia_token) = stack.register("mia").await;
    let (ned, ned_token) = stack.register("ned").await;

    let before = chrono::Utc::now().timestamp();
    stack
        .users
        .update_online_status(stack.with_token(
            &mia_token,
            UpdateOnlineStatusRequest {
                user_id: mia,
                online: true,
            },
        ))
        .await
        .expect("own status");
    let stored = stack
        .cache
        .get(&online_key(mia))
        .await
        .expect("cache")
        .expect("online key");
    let state: OnlineState = serde_json::from_str(&stored).expect("json");
    assert!(state.online);
    assert!(state.last_active >= before, "{state:?}");
    assert!(state.last_active <= before + 5, "{state:?}");
    let value: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(value["online"], serde_json::Value::Bool(true));

    let for_other = stack
        .users
        .update_online_status(stack.with_token(
            &ned_token,
            UpdateOnlineStatusRequest {
                user_id: mia,
                online: false,
            },
        ))
        .await;
    expect_code(for_other, Code::PermissionDenied);
    assert!(
        stack
            .cache
            .get(&online_key(mia))
            .await
            .expect("cache")
            .is_some()
    );

    stack
        .users
        .update_online_status(stack.with_token(
            &stack.service_token(),
            UpdateOnlineStatusRequest {
                user_id: ned,
                online: true,
            },
        ))
        .await
        .expect("service sets another's status");
    let ned_info = stack
        .users
        .get_user_info(stack.with_token(&mia_token, GetUserInfoRequest { user_id: ned }))
        .await
        .expect("info");
    assert!(ned_info.online);

    stack
        .users
        .update_online_status(stack.with_token(
            &mia_token,
            UpdateOnlineStatusRequest {
                user_id: mia,
                online: false,
            },
        ))
        .await
        .expect("offline");
    let mia_info = stack
        .users
        .get_user_info(stack.with_token(&ned_token, GetUserInfoRequest { user_id: mia }))
        .await
        .expect("info");
    assert!(!mia_info.online);
}
on_both_backends!(online_status_in_cache);

async fn verify_password_checks(stack: &Stack) {
    let (olga, olga_token) = stack.register("olga").await;
    let (_, pat_token) = stack.register("pat").await;
    let request = |password: &str| VerifyPasswordRequest {
        user_id: olga,
        password: password.to_owned(),
    };

    let right = stack
        .users
        .verify_password(stack.with_token(&olga_token, request(PASSWORD)))
        .await
        .expect("verify");
    assert!(right.valid);
    let wrong = stack
        .users
        .verify_password(stack.with_token(&olga_token, request("not the password")))
        .await
        .expect("verify");
    assert!(!wrong.valid);
    expect_code(
        stack
            .users
            .verify_password(stack.with_token(&pat_token, request(PASSWORD)))
            .await,
        Code::PermissionDenied,
    );
}
on_both_backends!(verify_password_checks);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_limited_per_address() {
    let stack = Stack::start_with(Backend::Sqlite, |config| {
        config.rate_limit.logins_per_sec = 3;
    })
    .await
    .expect("stack");
    stack.register("quinn").await;

    let mut codes = Vec::new();
    for _ in 0..6 {
        let outcome = stack
            .users
            .login(Request::new(login_request("quinn", PASSWORD)))
            .await;
        codes.push(outcome.map(|_| ()).map_err(|err| err.code()));
    }
    let limited = codes
        .iter()
        .filter(|code| **code == Err(Code::ResourceExhausted))
        .count();
    assert!(limited >= 2, "{codes:?}");
    assert!(codes[0].is_ok(), "{codes:?}");
    stack.stop().await;
}

async fn token_of_missing_user_rejected(stack: &Stack) {
    let (rae, rae_token) = stack.register("rae").await;
    let ghost = 999_999;
    let ghost_token = stack
        .authenticator
        .issue_user_token(ghost)
        .expect("ghost token");
    let expected =
        format!("unauthenticated: the token's user {ghost} does not exist; log in again");

    let info = stack
        .users
        .get_user_info(stack.with_token(&ghost_token, GetUserInfoRequest { user_id: rae }))
        .await;
    assert_eq!(expect_code(info, Code::Unauthenticated), expected);
    let own_info = stack
        .users
        .get_user_info(stack.with_token(&ghost_token, GetUserInfoRequest { user_id: ghost }))
        .await;
    assert_eq!(expect_code(own_info, Code::Unauthenticated), expected);
    let batch = stack
        .users
        .get_users_by_ids(stack.with_token(
            &ghost_token,
            GetUsersByIdsRequest {
                user_ids: vec![rae],
            },
        ))
        .await;
    assert_eq!(expect_code(batch, Code::Unauthenticated), expected);
    let update = stack
        .users
        .update_user_info(stack.with_token(
            &ghost_token,
            UpdateUserInfoRequest {
                user_id: ghost,
                nickname: "Ghost".to_owned(),
                avatar_url: String::new(),
            },
        ))
        .await;
    assert_eq!(expect_code(update, Code::Unauthenticated), expected);
    let online = stack
        .users
        .update_online_status(stack.with_token(
            &ghost_token,
            UpdateOnlineStatusRequest {
                user_id: ghost,
                online: true,
            },
        ))
        .await;
    assert_eq!(expect_code(online, Code::Unauthenticated), expected);
    let password = stack
        .users
        .verify_password(stack.with_token(
            &ghost_token,
            VerifyPasswordRequest {
                user_id: ghost,
                password: PASSWORD.to_owned(),
            },
        ))
        .await;
    assert_eq!(expect_code(password, Code::Unauthenticated), expected);

    // The rejected calls wrote nothing.
    assert_eq!(stack.count("SELECT COUNT(*) AS n FROM users").await, 1);
    let ghost_online = stack.cache.get(&online_key(ghost)).await.expect("cache");
    assert_eq!(ghost_online, None);

    // A service asking about a missing user still gets NOT_FOUND.
    let by_service = stack
        .users
        .get_user_info(stack.with_token(
            &stack.service_token(),
            GetUserInfoRequest { user_id: ghost },
        ))
        .await;
    expect_code(by_service, Code::NotFound);

    // The token of a user deleted through the users model stops working too.
    let fine = stack
        .users
        .get_user_info(stack.with_token(&rae_token, GetUserInfoRequest { user_id: rae }))
        .await;
    assert!(fine.is_ok(), "{fine:?}");
    let model = UsersModel::new(
        stack.db.connection.clone(),
        CacheAside::new(stack.cache.clone(), stack.db.name.clone()),
    );
    let row = model.find_one(rae).await.expect("find").expect("rae's row");
    assert!(model.delete(&row).await.expect("delete"));
    let deleted = stack
        .users
        .get_user_info(stack.with_token(&rae_token, GetUserInfoRequest { user_id: rae }))
        .await;
    assert_eq!(
        expect_code(deleted, Code::Unauthenticated),
        format!("unauthenticated: the token's user {rae} does not exist; log in again")
    );
}
on_both_backends!(token_of_missing_user_rejected);
