//! The service the binary serves: the two hot routes dispatched directly, every
//! other request through axum's [`Router`] ([`crate::app`]).
//!
//! `/oauth2/auth` sits in front of every request of every dashboard, and `/ping` is
//! polled by every load balancer. Through the router each paid for the route
//! lookup, two boxed route services cloned and driven per request (the route's and
//! the edge's copy of it), the matched-path extension and a boxed future per level.
//! Here they are one comparison of the path, and one future (the edge's, with the
//! handler's inside). Their behaviour is the router's: the same handlers, the same
//! [`crate::edge`] (shedding, request id, context, metrics and access line, with the
//! same route labels), and every method of `/oauth2/auth` (as `any`), `GET` of
//! `/ping` (`HEAD` and the others take the router, which answers them as before).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::Method;
use tower::Service;

use crate::edge::{EdgeLayer, RouteName};
use crate::handlers;
use crate::state::AppState;

/// The served service: one reference count to clone (hyper clones it per request).
#[derive(Clone)]
pub struct Hot(Arc<Inner>);

struct Inner {
    router: Router,
    /// `None` without the edge (the benchmark's `no-edge` and `no-hot` ablations):
    /// then everything takes the router.
    edge: Option<EdgeLayer>,
    state: Arc<AppState>,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot").finish_non_exhaustive()
    }
}

/// The service for `state`: [`crate::app`]'s router, and the hot routes beside it
/// sharing its edge (one in-flight count for all).
pub fn service(state: Arc<AppState>) -> Hot {
    let ablation = crate::ablation::ablation();
    let edge = (!ablation.no_edge).then(|| EdgeLayer::new(Arc::clone(&state)));
    let router = crate::app_with_edge(Arc::clone(&state), edge.clone());
    let edge = edge.filter(|_| !ablation.no_hot);
    Hot(Arc::new(Inner {
        router,
        edge,
        state,
    }))
}

/// The future of every answer.
type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl Service<Request> for Hot {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready (its `poll_ready` only answers `Ready`).
        let _ = cx;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Answer {
        let this = &*self.0;
        if let Some(edge) = &this.edge {
            let path = request.uri().path();
            if path == handlers::auth::PATH {
                let state = Arc::clone(&this.state);
                let route = Some(RouteName::Fixed(handlers::auth::PATH));
                let handled = edge.handle(request, route, move |request| {
                    handlers::auth::auth(State(state), request)
                });
                return Box::pin(handled);
            }
            if path == handlers::info::PING && request.method() == Method::GET {
                let route = Some(RouteName::Fixed(handlers::info::PING));
                let handled = edge.handle(request, route, |_| async {
                    handlers::info::ping().await.into_response()
                });
                return Box::pin(handled);
            }
        }
        // `Router::call` takes `&mut self` but reads only: a clone is a reference count.
        Box::pin(this.router.clone().call(request))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use tower::ServiceExt as _;

    use super::*;

    fn request(method: &Method, path: &str, cookie: Option<&str>) -> Request {
        let mut r = http::Request::builder().method(method).uri(path);
        if let Some(c) = cookie {
            r = r.header(http::header::COOKIE, c);
        }
        let mut r = r.body(Body::empty()).unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
        r
    }

    /// Status, header names and body of an answer (not the values of its request id).
    /// Without `Content-Length`: axum's router sets it from the body's exact length,
    /// and hyper writes the same header from the same length when it is missing.
    async fn summary(response: Response) -> (u16, Vec<String>, Vec<u8>) {
        let status = response.status().as_u16();
        let mut names: Vec<String> = response
            .headers()
            .keys()
            .filter(|n| *n != http::header::CONTENT_LENGTH)
            .map(|n| n.as_str().to_owned())
            .collect();
        names.sort();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap()
            .to_vec();
        (status, names, body)
    }

    #[tokio::test]
    async fn the_hot_routes_answer_as_the_router_does_and_are_counted_alike() {
        let cases = [
            (Method::GET, "/ping", None),
            (Method::HEAD, "/ping", None),
            (Method::POST, "/ping", None),
            (Method::GET, "/oauth2/auth", None),
            (Method::POST, "/oauth2/auth", None),
            (Method::GET, "/oauth2/auth", Some("_portcullis=tampered")),
            (Method::GET, "/oauth2/auth?allowed_groups=%ZZ", None),
            (Method::GET, "/ping/", None),
        ];
        let routed = crate::edge::tests::state(8);
        let direct = crate::edge::tests::state(8);
        let router = crate::app(Arc::clone(&routed));
        let hot = service(Arc::clone(&direct));
        for (method, path, cookie) in cases {
            let want = router
                .clone()
                .oneshot(request(&method, path, cookie))
                .await
                .unwrap();
            let got = hot
                .clone()
                .oneshot(request(&method, path, cookie))
                .await
                .unwrap();
            assert!(got.headers().contains_key(crate::request_id::HEADER));
            assert_eq!(
                summary(got).await,
                summary(want).await,
                "{method} {path} {cookie:?}"
            );
        }
        // The same requests, the same route labels and counts.
        let counts = |text: String| -> Vec<String> {
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| l.starts_with("portcullis_http_requests_total"))
                .map(str::to_owned)
                .collect();
            lines.sort();
            lines
        };
        let want = counts(routed.metrics.encode().unwrap());
        assert!(want.iter().any(|l| l.contains("/oauth2/auth")), "{want:#?}");
        assert_eq!(counts(direct.metrics.encode().unwrap()), want);
    }

    /// The hot path's future is allocated and moved once per request: it stays small
    /// (1.3 KB when written; 11.9 KB before the slow paths of a session lookup were
    /// boxed and the edge stopped holding the handler's future twice).
    #[test]
    fn the_hot_paths_future_stays_small() {
        let state = crate::edge::tests::state(8);
        let edge = EdgeLayer::new(Arc::clone(&state));
        let handled = edge.handle(request(&Method::GET, "/oauth2/auth", None), None, |r| {
            handlers::auth::auth(State(state), r)
        });
        let size = std::mem::size_of_val(&handled);
        assert!(size <= 4096, "the future of /oauth2/auth is {size} bytes");
    }
}
