//! The operator's healthz (ready once every watch has its first list) and Prometheus
//! metrics, on their own ports as in Dapr.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

use crate::api::Caches;
use crate::services::ServiceMetrics;

pub fn healthz(caches: Caches) -> Router {
    Router::new().route(
        "/healthz",
        get(move || {
            let ready = caches.all().iter().all(|c| c.is_synced());
            async move {
                if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }
        }),
    )
}

pub fn metrics(services: Arc<ServiceMetrics>, leader: watch::Receiver<bool>) -> Router {
    let render = move || {
        let leader = u8::from(*leader.borrow());
        let body = format!(
            "# HELP dapr_operator_service_created_total Dapr services created by the operator.\n\
             # TYPE dapr_operator_service_created_total counter\n\
             dapr_operator_service_created_total {}\n\
             # HELP dapr_operator_service_deleted_total Dapr services deleted by the operator.\n\
             # TYPE dapr_operator_service_deleted_total counter\n\
             dapr_operator_service_deleted_total {}\n\
             # HELP dapr_operator_service_reconcile_errors_total Failed service reconciles.\n\
             # TYPE dapr_operator_service_reconcile_errors_total counter\n\
             dapr_operator_service_reconcile_errors_total {}\n\
             # HELP dapr_operator_is_leader Whether this replica holds the leader Lease.\n\
             # TYPE dapr_operator_is_leader gauge\n\
             dapr_operator_is_leader {leader}\n",
            services.created.load(Ordering::Relaxed),
            services.deleted.load(Ordering::Relaxed),
            services.reconcile_errors.load(Ordering::Relaxed),
        );
        async move {
            (
                [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                body,
            )
        }
    };
    Router::new()
        .route("/", get(render.clone()))
        .route("/metrics", get(render))
}
