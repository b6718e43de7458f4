//! `beehive token --service`: prints a service token for operators.

use anyhow::Context as _;
use beehive_runtime::auth::Authenticator;
use beehive_runtime::config::Config;

/// Issues a service token (`role: service`) signed with `auth.jwt_secret`.
pub fn service_token(config: &Config) -> anyhow::Result<String> {
    let authenticator = Authenticator::from_config(&config.auth)
        .context("invalid configuration key `auth.jwt_secret`")?;
    authenticator
        .issue_service_token()
        .context("failed to sign the service token")
}

#[cfg(test)]
mod tests {
    use beehive_runtime::Caller;

    use super::*;

    #[test]
    fn service_token_verifies_as_service() {
        let config = Config::default();
        let token = service_token(&config).unwrap();
        let authenticator = Authenticator::from_config(&config.auth).unwrap();
        assert_eq!(authenticator.verify(&token).unwrap(), Caller::Service);
    }
}
