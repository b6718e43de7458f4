//! The user story against `beehive up` in this process.

use beehive_tests::deploy::Deployment;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_embedded_backends() {
    let deployment = Deployment::embedded().await.unwrap();
    let outcome =
        beehive_tests::story::run(&deployment.endpoints, &deployment.outbox(), &deployment.tag)
            .await;
    deployment.stop().await;
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_on_postgres_redis_rabbitmq() {
    let Some(deployment) = Deployment::real_backends().await.unwrap() else {
        return;
    };
    let outcome =
        beehive_tests::story::run(&deployment.endpoints, &deployment.outbox(), &deployment.tag)
            .await;
    deployment.stop().await;
    outcome.unwrap();
}
