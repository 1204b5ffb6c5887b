//! In a real headless Chromium: log in on cluster c1's dashboard, open cluster c2's
//! without logging in again (one parent-domain session), sign out, and both ask for a
//! login again.

#![allow(clippy::unwrap_used)]

use portcullis_e2e::browser::Browser;
use portcullis_e2e::stack::Clusters;

#[tokio::test]
async fn browser_single_sign_on_across_clusters() {
    let Some(s) = Clusters::start("").await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let issuer = &s.idp.issuer;
    let shots = std::env::temp_dir();

    // c1: the dashboard URL leads to the provider's login form.
    let c1_url = s.url("c1", "/workloads?namespace=default#/pods");
    browser.goto(&c1_url).await;
    browser.find("#login").await;
    assert!(
        browser.url().await.starts_with(issuer),
        "at the provider: {}",
        browser.url().await
    );
    browser
        .screenshot(&shots.join("portcullis-login-form.png"))
        .await;
    browser.type_into("#login", "alice@example.test").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("#submit").await;

    // Back on c1 as alice, with a token the dashboard verified. Browsers never send
    // the `#fragment` to servers, so no proxy can return to it; path and query are kept.
    browser.find("#user").await;
    let c1_no_fragment = c1_url.split('#').next().unwrap().to_owned();
    assert_eq!(
        browser.url().await,
        c1_no_fragment,
        "returned to the original URL"
    );
    assert_eq!(browser.text("#user").await, "alice@example.test");
    assert_eq!(browser.text("#verified").await, "yes");
    browser
        .screenshot(&shots.join("portcullis-dashboard-c1.png"))
        .await;

    // c2: no login form, straight to the dashboard.
    let c2_url = s.url("c2", "/");
    browser.goto(&c2_url).await;
    browser.find("#user").await;
    assert_eq!(browser.url().await, c2_url);
    assert_eq!(browser.text("#user").await, "alice@example.test");
    assert!(browser.source().await.contains("cluster c2"));

    // Sign out from c2's page; both clusters now need a login.
    browser.click("a[href*='/oauth2/sign_out']").await;
    for url in [&c1_url, &c2_url] {
        browser.goto(url).await;
        browser.find("#login").await;
        assert!(
            browser.url().await.starts_with(issuer),
            "{url} asks for a login"
        );
    }
    browser.quit().await;
}
