#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn families_are_named_by_convention_and_start_at_zero() {
    let m = Metrics::new("redis");
    m.auth_decision(Decision::from_status(StatusCode::ACCEPTED));
    m.auth_decision(Decision::from_status(StatusCode::FORBIDDEN));
    m.auth_decision(Decision::from_status(StatusCode::SERVICE_UNAVAILABLE));
    m.login_failed(LoginFailure::StateMismatch);
    m.refresh(RefreshOutcome::Joined);
    Observer::audit(&m, AuditEvent::DeviceDecision, Outcome::Success);
    Observer::audit(&m, AuditEvent::DeviceDecision, Outcome::Success);
    Observer::audit(&m, AuditEvent::Revoke, Outcome::Failed);
    m.request(
        Some("/oauth2/auth"),
        &Method::GET,
        StatusCode::ACCEPTED,
        std::time::Duration::from_micros(250),
    );
    m.request(
        None,
        &Method::from_bytes(b"BREW").unwrap(),
        StatusCode::NOT_FOUND,
        std::time::Duration::from_micros(250),
    );
    let text = m.encode().unwrap();
    for line in [
        r#"portcullis_auth_decisions_total{decision="allowed"} 1"#,
        r#"portcullis_auth_decisions_total{decision="denied"} 1"#,
        r#"portcullis_auth_decisions_total{decision="error"} 1"#,
        r#"portcullis_auth_decisions_total{decision="unauthenticated"} 0"#,
        r#"portcullis_logins_total{outcome="failed",reason="state_mismatch"} 1"#,
        r#"portcullis_logins_total{outcome="started",reason="none"} 0"#,
        r#"portcullis_refreshes_total{outcome="joined"} 1"#,
        r#"portcullis_audit_events_total{event="device_decision",outcome="success"} 2"#,
        r#"portcullis_audit_events_total{event="revoke",outcome="failed"} 1"#,
        r#"portcullis_audit_events_total{event="sign_in",outcome="refused"} 0"#,
        r#"portcullis_http_requests_total{route="/oauth2/auth",method="GET",status="202"} 1"#,
        r#"portcullis_http_requests_total{route="unmatched",method="other",status="404"} 1"#,
        r#"portcullis_http_request_duration_seconds_count{route="/oauth2/auth"} 1"#,
        r#"portcullis_session_store_errors_total{store="redis",op="load"} 0"#,
        r#"portcullis_provider_errors_total{call="refresh"} 0"#,
        r#"portcullis_build_info{version=""#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn store_and_provider_timing_counts_errors_not_answers() {
    let m = Metrics::new("cookie");
    let _ = m
        .store(StoreOp::Load, async { Ok::<_, ()>(None::<u8>) })
        .await;
    let _ = m.store(StoreOp::Load, async { Err::<u8, _>(()) }).await;
    let _ = m
        .provider(ProviderCall::Refresh, async {
            Err::<(), _>(OidcError::Rejected {
                error: "invalid_grant".into(),
                status: 400,
            })
        })
        .await;
    let _ = m
        .provider(ProviderCall::Token, async {
            Err::<(), _>(OidcError::Unavailable("down".into()))
        })
        .await;
    let text = m.encode().unwrap();
    for line in [
        r#"portcullis_session_store_duration_seconds_count{store="cookie",op="load"} 2"#,
        r#"portcullis_session_store_errors_total{store="cookie",op="load"} 1"#,
        r#"portcullis_provider_request_duration_seconds_count{call="refresh"} 1"#,
        r#"portcullis_provider_errors_total{call="refresh"} 0"#,
        r#"portcullis_provider_errors_total{call="token"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}
