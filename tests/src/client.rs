//! An HTTP client for flows: `*.example.test` resolves to 127.0.0.1, redirects are
//! not followed (tests look at each hop), cookies live in jars tests can inspect.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Response, StatusCode};

/// Resolves every name to 127.0.0.1 (the port comes from the URL).
#[derive(Debug)]
struct Loopback;

impl Resolve for Loopback {
    fn resolve(&self, _name: Name) -> Resolving {
        Box::pin(async {
            let addrs: Addrs = Box::new(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0))));
            Ok(addrs)
        })
    }
}

/// The flow client.
pub fn http() -> reqwest::Client {
    // reqwest is built without a TLS provider; install ring as the binary does.
    portcullis_oidc::http_client::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Loopback))
        .no_proxy()
        .build()
        .unwrap()
}

/// A client for a test server's `/_test` counters over its self-signed certificate
/// (which rustls will not take as a root: it is its own CA and end entity).
pub fn http_insecure() -> reqwest::Client {
    portcullis_oidc::http_client::install_crypto_provider();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .build()
        .unwrap()
}

/// A cookie jar that ignores domains (one site family per jar) but honours `Path`
/// (the provider scopes its interaction cookies by path): enough for tests, and lets
/// them read and tamper with values.
#[derive(Debug, Default, Clone)]
pub struct Jar {
    /// (name, path, value)
    cookies: Vec<(String, String, String)>,
}

impl Jar {
    /// Applies a response's `Set-Cookie` headers (a `Max-Age=0` deletes).
    pub fn absorb(&mut self, response: &Response) {
        for v in response.headers().get_all("set-cookie") {
            let Ok(text) = v.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let mut removal = false;
            let mut path = "/".to_owned();
            for a in parts {
                let a = a.trim();
                if a.eq_ignore_ascii_case("max-age=0") {
                    removal = true;
                }
                if a.len() > 5 && a[..5].eq_ignore_ascii_case("path=") {
                    path = a[5..].to_owned();
                }
            }
            self.cookies.retain(|(n, p, _)| !(n == name && *p == path));
            if !removal {
                self.cookies.push((name.to_owned(), path, value.to_owned()));
            }
        }
    }

    /// The `Cookie` header value for every path (empty when no cookies).
    pub fn header(&self) -> String {
        self.header_for("/")
    }

    /// The `Cookie` header value for a request to `url` (or a bare path).
    pub fn header_for(&self, url: &str) -> String {
        let path = url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| url.to_owned());
        self.cookies
            .iter()
            .filter(|(_, p, _)| {
                p == "/" || path == *p || path.starts_with(&format!("{}/", p.trim_end_matches('/')))
            })
            .map(|(n, _, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A cookie's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| v.as_str())
    }

    /// Sets (or replaces) a cookie at path `/`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _, _)| n != name);
        self.cookies
            .push((name.to_owned(), "/".to_owned(), value.to_owned()));
    }

    /// Removes every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// Names of all cookies.
    pub fn names(&self) -> Vec<String> {
        self.cookies.iter().map(|(n, _, _)| n.clone()).collect()
    }
}

/// A browser-like session: one jar for the protected site family, one for the provider.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The HTTP client.
    pub http: reqwest::Client,
    /// Cookies for `*.example.test` (Portcullis and dashboards).
    pub site: Jar,
    /// Cookies for the provider.
    pub idp: Jar,
}

impl Default for Agent {
    fn default() -> Self {
        Self::new()
    }
}

/// The final answer of a login flow.
#[derive(Debug)]
pub struct Landing {
    /// Status of the callback response.
    pub status: StatusCode,
    /// Its `Location`, if a redirect.
    pub location: Option<String>,
    /// Its body (error pages).
    pub body: String,
}

fn location(r: &Response) -> Option<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A form value, URL-encoded.
/// Behind a forward-auth proxy (Caddy, Traefik) whose app has a `skip_auth` rule for
/// `/public`: the skipped path is open, and a client's own `X-Original-URL` naming it
/// (which these proxies pass on) opens no other path. Portcullis decides on the
/// proxy's `X-Forwarded-Uri`.
pub async fn assert_original_url_opens_nothing(client: &reqwest::Client, app: &str) {
    let r = client.get(format!("{app}/public")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "skip_auth path");
    let r = client
        .get(format!("{app}/private"))
        .header("accept", "application/json")
        .header("x-original-url", format!("{app}/public"))
        .header("x-original-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Agent {
    /// POSTs an URL-encoded form `body`, with the site cookies when `cookie` (not
    /// stored back: one request's view).
    pub async fn post_form(&self, url: &str, body: &str, cookie: bool) -> Response {
        let mut r = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if cookie {
            r = r.header("cookie", self.site.header());
        }
        r.send().await.expect("test step")
    }

    /// A fresh agent with empty jars.
    pub fn new() -> Self {
        Self {
            http: http(),
            site: Jar::default(),
            idp: Jar::default(),
        }
    }

    /// GET with the site jar; absorbs cookies.
    pub async fn get(&mut self, url: &str) -> Response {
        let r = self
            .http
            .get(url)
            .header("cookie", self.site.header())
            .send()
            .await
            .unwrap();
        self.site.absorb(&r);
        r
    }

    /// GET with extra headers.
    pub async fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = self.http.get(url).header("cookie", self.site.header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        self.site.absorb(&r);
        r
    }

    /// Starts a login at `start_url` (an `/oauth2/start…` URL) and returns the
    /// provider's login-form URL, having followed the redirects there.
    pub async fn begin_login(&mut self, start_url: &str) -> String {
        let r = self.get(start_url).await;
        assert_eq!(
            r.status(),
            StatusCode::FOUND,
            "start redirects to the provider"
        );
        self.follow_to_form(location(&r).expect("start has a Location"))
            .await
    }

    /// GET on the provider, with the provider jar.
    pub async fn idp_get(&mut self, url: &str) -> Response {
        let r = self
            .http
            .get(url)
            .header("cookie", self.idp.header_for(url))
            .send()
            .await
            .unwrap();
        self.idp.absorb(&r);
        r
    }

    /// Signs in as one of the test provider's users (`alice` → `alice@example.test`
    /// with `alice-password`) through `base`'s `/oauth2/start`.
    pub async fn sign_in(&mut self, base: &str, user: &str) -> Landing {
        let start = format!("{base}/oauth2/start");
        self.login(
            &start,
            &format!("{user}@example.test"),
            &format!("{user}-password"),
        )
        .await
    }

    /// Follows provider redirects (with the provider jar) until the login form.
    pub async fn follow_to_form(&mut self, mut url: String) -> String {
        for _ in 0..10 {
            let r = self.idp_get(&url).await;
            match r.status() {
                StatusCode::OK => return url,
                s if s.is_redirection() => url = absolute(&url, &location(&r).unwrap()),
                s => panic!(
                    "unexpected {s} from the provider at {url}: {}",
                    r.text().await.unwrap_or_default()
                ),
            }
        }
        panic!("too many redirects before the login form");
    }

    /// Submits the login form at `form_url`; follows the provider's redirects and
    /// returns the callback URL on Portcullis (not yet visited). Panics if the
    /// credentials are refused.
    pub async fn submit_login(&mut self, form_url: &str, login: &str, password: &str) -> String {
        let action = format!("{}/login", form_url.trim_end_matches('/'));
        let r = self
            .http
            .post(&action)
            .header("cookie", self.idp.header_for(&action))
            .form(&[("login", login), ("password", password)])
            .send()
            .await
            .unwrap();
        self.idp.absorb(&r);
        assert!(
            r.status().is_redirection(),
            "login accepted for {login}: got {}",
            r.status()
        );
        let mut url = absolute(&action, &location(&r).unwrap());
        for _ in 0..10 {
            if url.contains("/oauth2/callback") {
                return url;
            }
            let r = self.idp_get(&url).await;
            assert!(
                r.status().is_redirection(),
                "provider redirects after login, got {} at {url}",
                r.status()
            );
            url = absolute(&url, &location(&r).unwrap());
        }
        panic!("never reached the callback");
    }

    /// Visits the callback and reports where it sends the user.
    pub async fn finish_login(&mut self, callback_url: &str) -> Landing {
        let r = self.get(callback_url).await;
        let status = r.status();
        let location = location(&r);
        Landing {
            status,
            location,
            body: r.text().await.unwrap_or_default(),
        }
    }

    /// The whole login: start → form → credentials → callback.
    pub async fn login(&mut self, start_url: &str, login: &str, password: &str) -> Landing {
        let form = self.begin_login(start_url).await;
        let callback = self.submit_login(&form, login, password).await;
        self.finish_login(&callback).await
    }
}

/// Resolves a possibly relative `Location` against the URL it came from.
pub fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}
