use async_trait::async_trait;
use bytes::Bytes;
use components_core::Component;
use components_core::bindings::BindingError;

use super::*;

struct Echo;

#[async_trait]
impl Component for Echo {}

#[async_trait]
impl Binding for Echo {
    fn operations(&self) -> Vec<String> {
        vec!["create".into(), "get".into()]
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, BindingError> {
        if req.operation == "get" {
            return Err(BindingError::Backend("nothing there".into()));
        }
        Ok(InvokeResponse {
            data: req.data,
            ..Default::default()
        })
    }
}

fn block() -> BindingsBlock {
    let b = BindingsBlock::default();
    b.upsert(
        "echo",
        BindingEntry {
            api: Arc::new(Echo),
            route: "echo".into(),
            direction: Vec::new(),
        },
    );
    b
}

fn req(op: &str) -> InvokeRequest {
    InvokeRequest {
        operation: op.into(),
        data: Bytes::from_static(b"x"),
        ..Default::default()
    }
}

#[tokio::test]
async fn operations_run_and_refusals_are_daprs() {
    let b = block();
    assert_eq!(
        b.invoke("echo", req("create")).await.unwrap().data,
        &b"x"[..]
    );
    let e = b.invoke("echo", req("")).await.unwrap_err();
    assert_eq!(e.code, "ERR_INVOKE_OUTPUT_BINDING");
    assert_eq!(
        e.message,
        "error invoking output binding echo: operation field is missing from request"
    );
    let e = b.invoke("nope", req("create")).await.unwrap_err();
    assert_eq!(
        e.message,
        "error invoking output binding nope: couldn't find output binding nope"
    );
    let e = b.invoke("echo", req("delete")).await.unwrap_err();
    assert!(
        e.message
            .ends_with("does not support operation delete. supported operations:create get")
    );
    let e = b.invoke("echo", req("get")).await.unwrap_err();
    assert_eq!(e.http, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(e.message.ends_with("nothing there"));
}
