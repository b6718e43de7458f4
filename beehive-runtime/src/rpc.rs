//! The contract between generated adapters and hand-written logic.
//!
//! For every RPC the generator emits a marker type implementing [`Rpc`]; a service implements
//! [`Handle<Marker>`] once per RPC in `services/<svc>/src/logic/<rpc>.rs`. A missing `impl` is a
//! compile error that names the RPC.

use std::future::Future;
use std::sync::Arc;

use crate::context::CallContext;
use crate::error::ServiceError;
use crate::token_users::TokenUsers;

/// Who may call an RPC when `auth.mode` is `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (SendVerificationCode, VerifyCode, Register, Login).
    Public,
    /// Any valid user or service token.
    Authenticated,
    /// Only a service token (`role: service`).
    Service,
}

/// Static description of one RPC, implemented by generated marker types.
pub trait Rpc: Send + Sync + 'static {
    type Request: Send + 'static;
    type Response: Send + 'static;
    /// Fully qualified service name, e.g. `user.UserService`.
    const SERVICE: &'static str;
    /// Method name as in the proto, e.g. `Register`.
    const METHOD: &'static str;
    /// gRPC path, e.g. `/user.UserService/Register`.
    const PATH: &'static str;
    const ACCESS: Access;
}

/// Hand-written logic of one RPC.
pub trait Handle<R: Rpc>: Send + Sync + 'static {
    fn handle(
        &self,
        ctx: CallContext,
        request: R::Request,
    ) -> impl Future<Output = Result<R::Response, ServiceError>> + Send;
}

/// Input rules declared in the proto, checked by the adapter before logic runs.
pub trait Validate {
    /// Returns the first violated rule as INVALID_ARGUMENT naming the field path.
    fn validate(&self) -> Result<(), ServiceError>;
}

/// Stream of items returned by a server-streaming RPC's logic.
pub type ServiceStream<T> =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, ServiceError>> + Send + 'static>>;

/// Stream type the generated tonic trait impls return for server-streaming RPCs.
pub type StatusStream<T> =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, tonic::Status>> + Send + 'static>>;

/// Takes the call context the serving layers put into the request, or builds an anonymous one.
///
/// Also tells [`crate::decode_error::DecodeErrorLayer`] that the request was decoded, so it
/// leaves this call's status alone.
pub fn call_context<T>(request: &tonic::Request<T>) -> CallContext {
    if let Some(reached) = request
        .extensions()
        .get::<crate::decode_error::AdapterReached>()
    {
        reached.set();
    }
    if let Some(ctx) = request.extensions().get::<CallContext>() {
        return ctx.clone();
    }
    CallContext::internal(
        crate::context::Caller::Anonymous,
        crate::context::DEFAULT_DEADLINE,
    )
}

/// Checks the RPC's access rule against the caller.
pub fn check_access<R: Rpc>(ctx: &CallContext) -> Result<(), ServiceError> {
    match R::ACCESS {
        Access::Public => Ok(()),
        Access::Authenticated => ctx.require_authenticated(),
        Access::Service => ctx.require_service(),
    }
}

/// Checks the access rule. For an RPC with [`Access::Authenticated`], it then checks that a
/// user token's user exists, when the serving layers put a [`TokenUsers`] into the request.
async fn check_caller<R: Rpc>(
    ctx: &CallContext,
    token_users: Option<&TokenUsers>,
) -> Result<(), ServiceError> {
    check_access::<R>(ctx)?;
    match token_users {
        Some(token_users) if R::ACCESS == Access::Authenticated => token_users.check(ctx).await,
        _ => Ok(()),
    }
}

fn token_users<T>(request: &tonic::Request<T>) -> Option<Arc<TokenUsers>> {
    request.extensions().get::<Arc<TokenUsers>>().cloned()
}

/// Runs a unary RPC: context, access rule, validation, logic, error mapping, logs and metrics.
///
/// Generated adapters call this from each tonic trait method, so the behaviour of every RPC of
/// every service is defined in one place.
pub async fn run_unary<R, S>(
    service: &S,
    request: tonic::Request<R::Request>,
) -> Result<tonic::Response<R::Response>, tonic::Status>
where
    R: Rpc,
    R::Request: Validate,
    S: Handle<R>,
{
    let ctx = call_context(&request);
    let token_users = token_users(&request);
    let started = std::time::Instant::now();
    let outcome = invoke::<R, S>(
        service,
        ctx.clone(),
        token_users.as_deref(),
        request.into_inner(),
    )
    .await;
    let code = match &outcome {
        Ok(_) => tonic::Code::Ok,
        Err(err) => err.code(),
    };
    crate::observe::record_server_call(
        R::PATH,
        &ctx,
        code,
        started.elapsed(),
        outcome.as_ref().err(),
    );
    outcome
        .map(tonic::Response::new)
        .map_err(tonic::Status::from)
}

async fn invoke<R, S>(
    service: &S,
    ctx: CallContext,
    token_users: Option<&TokenUsers>,
    request: R::Request,
) -> Result<R::Response, ServiceError>
where
    R: Rpc,
    R::Request: Validate,
    S: Handle<R>,
{
    check_caller::<R>(&ctx, token_users).await?;
    request.validate()?;
    let remaining = ctx.remaining();
    if remaining.is_zero() {
        return Err(ServiceError::DeadlineExceeded(format!(
            "deadline passed before {} started",
            R::PATH
        )));
    }
    match tokio::time::timeout(remaining, service.handle(ctx, request)).await {
        Ok(result) => result,
        Err(_) => Err(ServiceError::DeadlineExceeded(format!(
            "{} did not finish before the deadline",
            R::PATH
        ))),
    }
}

/// Runs a server-streaming RPC; `R::Response` is the [`ServiceStream`] the logic returns.
pub async fn run_server_streaming<R, S, T>(
    service: &S,
    request: tonic::Request<R::Request>,
) -> Result<tonic::Response<StatusStream<T>>, tonic::Status>
where
    R: Rpc<Response = ServiceStream<T>>,
    R::Request: Validate,
    S: Handle<R>,
    T: Send + 'static,
{
    use futures::StreamExt;

    let ctx = call_context(&request);
    let token_users = token_users(&request);
    let started = std::time::Instant::now();
    let request = request.into_inner();
    let outcome = async {
        check_caller::<R>(&ctx, token_users.as_deref()).await?;
        request.validate()?;
        service.handle(ctx.clone(), request).await
    }
    .await;
    let code = match &outcome {
        Ok(_) => tonic::Code::Ok,
        Err(err) => err.code(),
    };
    crate::observe::record_server_call(
        R::PATH,
        &ctx,
        code,
        started.elapsed(),
        outcome.as_ref().err(),
    );
    let stream = outcome.map_err(tonic::Status::from)?;
    let mapped: StatusStream<T> = Box::pin(stream.map(|item| item.map_err(tonic::Status::from)));
    Ok(tonic::Response::new(mapped))
}
