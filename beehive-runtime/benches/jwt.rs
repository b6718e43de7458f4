//! Cost of the per-call token check: verifying a user token, and issuing one.

use std::hint::black_box;
use std::time::Duration;

use beehive_runtime::auth::Authenticator;
use criterion::{Criterion, criterion_group, criterion_main};

const SECRET: &[u8] = b"bench-secret-0123456789abcdef0123";
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

fn jwt(c: &mut Criterion) {
    let auth = match Authenticator::new(SECRET, WEEK) {
        Ok(auth) => auth,
        Err(err) => panic!("bench secret rejected: {err}"),
    };
    let token = match auth.issue_user_token(1_234_567) {
        Ok(token) => token,
        Err(err) => panic!("cannot issue a token: {err}"),
    };

    c.bench_function("jwt_verify_user_token", |b| {
        b.iter(|| auth.verify(black_box(&token)))
    });
    c.bench_function("jwt_issue_user_token", |b| {
        b.iter(|| auth.issue_user_token(black_box(42)))
    });
}

criterion_group!(benches, jwt);
criterion_main!(benches);
