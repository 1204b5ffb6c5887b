//! `portcullis login --device`: device authorization (RFC 8628) for machines with no
//! browser (an SSH box). Prints a URL and a short code to enter in a signed-in
//! browser anywhere, then polls Portcullis at the interval it asks for.

use std::time::{Duration, Instant};

use crate::server::{Failure, Server, Tokens};

/// Signs in through a device code; every prompt on stderr.
pub async fn sign_in(server: &Server, client_host: &str) -> Result<Tokens, String> {
    let started = server
        .start_device(client_host)
        .await
        .map_err(|e| format!("cannot start a device sign-in: {e}"))?;
    eprintln!(
        "To sign in, open {} in a browser where you are signed in, and enter the code\n\n    {}\n",
        started.verification_uri, started.user_code
    );
    if !started.verification_uri_complete.is_empty() {
        eprintln!("(or open {})", started.verification_uri_complete);
    }
    let deadline = Instant::now() + Duration::from_secs(started.expires_in);
    let mut interval = Duration::from_secs(started.interval.clamp(1, 60));
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            return Err("the code expired before it was approved; run the command again".into());
        }
        match server.poll_device(&started.device_code).await {
            Ok(tokens) => return Ok(tokens),
            Err(Failure::Wait { slow_down: true }) => interval += Duration::from_secs(5),
            Err(Failure::Wait { slow_down: false }) => {}
            Err(Failure::Refused(why)) => return Err(format!("sign-in refused: {why}")),
            // A blip (network, a 503) is retried until the code expires.
            Err(Failure::Other(why)) => eprintln!("portcullis: {why}; retrying"),
        }
    }
}
