//! The floor of our HTTP stack, for `bench/run.sh`: a bare hyper 1.x HTTP/1.1
//! server on a current-thread Tokio runtime, no layers, no timers, answering
//! `/ping` with 200 `OK` and anything else with an empty 401. Not shipped: it is
//! what Portcullis's own serving costs are measured against.
//!
//!   cargo run --release -p portcullis --example floor -- 127.0.0.1:9999

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

async fn answer(request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    let (status, body) = if request.uri().path() == "/ping" {
        (StatusCode::OK, "OK")
    } else {
        (StatusCode::UNAUTHORIZED, "")
    };
    let mut response = Response::new(body.to_owned());
    *response.status_mut() = status;
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9999".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    })
}
