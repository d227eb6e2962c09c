//! OTLP trace export: the gateway binary with `--otlp-endpoint` sends its call spans to a collector
//! (a real OTLP/gRPC TraceService here), as children of the caller's W3C `traceparent`.

use crate::common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use cloudtrail_gateway::pb;
use common::procs::GatewayProcess;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_under_the_callers_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut gw = GatewayProcess::start(&["--otlp-endpoint", &endpoint], "info").await;
    let mut client = gw.client().await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let mut request = Request::new(pb::DescribeTrailsRequest::default());
    let traceparent = format!("00-{trace_id}-{parent}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("value"));
    client.describe_trails(request).await.expect("describe");
    drop(client);
    // Exit flushes the spans still batched.
    gw.terminate(Duration::from_secs(10)).await.expect("exits");

    let exports = collector
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let spans: Vec<_> = exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let call = spans
        .iter()
        .find(|s| hex(&s.trace_id) == trace_id)
        .unwrap_or_else(|| panic!("no span of the caller's trace among {} spans", spans.len()));
    assert_eq!(call.name, "rpc");
    assert_eq!(
        hex(&call.parent_span_id),
        parent,
        "the caller's span is the parent"
    );
    let method = call
        .attributes
        .iter()
        .find(|a| a.key == "method")
        .and_then(|a| a.value.as_ref());
    assert!(
        format!("{method:?}").contains("DescribeTrails"),
        "{method:?}"
    );
    let service = exports[0].resource_spans[0]
        .resource
        .as_ref()
        .expect("resource");
    assert!(format!("{:?}", service.attributes).contains("cloudtrail-gateway"));
    server.abort();
}
