//! A visitor of the dashboard without a browser: a client that does not follow redirects and
//! keeps the cookies it is given, posting forms the way a browser does (urlencoded, with the
//! site's `Origin`). For flows in a real browser, see `tests/integration/browser/`.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};

use super::TestApp;

pub struct Visitor<'a> {
    pub app: &'a TestApp,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Visitor {
            app,
            client,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let removed =
                value.is_empty() || parts.any(|p| p.trim().eq_ignore_ascii_case("max-age=0"));
            if removed {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// `GET path` with the visitor's cookies and any extra headers.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .get(self.app.url(path))
            .header(COOKIE, self.cookie_header());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        self.keep_cookies(&response);
        response
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// `GET path`, expecting a page: its HTML.
    pub async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.expect("body")
    }

    /// Posts `fields` as a browser submits a form (urlencoded, `Origin` of the site).
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_with(path, fields, &[]).await
    }

    /// [`Self::post_form`] with extra headers (`hx-request` for what htmx sends).
    pub async fn post_form_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .header(ORIGIN, self.app.address.as_str())
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request");
        self.keep_cookies(&response);
        response
    }

    /// Posts the sign-in form with `username`, `password` and, when given, `next`.
    pub async fn post_sign_in(
        &mut self,
        username: &str,
        password: &str,
        next: Option<&str>,
    ) -> reqwest::Response {
        let mut fields = vec![("username", username), ("password", password)];
        fields.extend(next.map(|n| ("next", n)));
        self.post_form("/sign-in", &fields).await
    }

    /// Signs in through the sign-in form (no MFA); panics unless it redirects.
    pub async fn sign_in(&mut self, username: &str, password: &str) {
        let response = self.post_sign_in(username, password, Some("/")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in");
        assert!(self.cookies.contains_key("guildhall_session"));
    }

    /// The CSRF token a signed-in page carries in its forms.
    pub async fn csrf(&mut self) -> String {
        let html = self.page("/").await;
        hidden_value(&html, "csrf_token").expect("a csrf_token field")
    }
}

/// The `Location` a redirect points to.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The value of the first `<input type="hidden" name="NAME" value="…">` in `html`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

/// A new admin with MFA enrolled through the API; returns (username, TOTP secret, recovery codes).
pub async fn enrol_mfa(app: &TestApp) -> (String, String, Vec<String>) {
    let (id, name) = super::auth::create_user(app, "pmfa", &[("admin", 0)]).await;
    let token = super::auth::access_token(app, id);
    let (_, enrol) = app
        .call("POST", "/api/v1/auth/mfa/enable", Some(&token), None)
        .await;
    let secret = enrol["secret"].as_str().expect("secret").to_owned();
    // An earlier step, so that a sign-in right after can use the current one.
    let now = jsonwebtoken::get_current_timestamp();
    let code = guildhall::auth::totp::code_at(&secret, now - 30).expect("code");
    let (status, done) = app
        .call(
            "POST",
            "/api/v1/auth/mfa/verify",
            Some(&token),
            Some(serde_json::json!({ "code": code })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let codes = done["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    (name, secret, codes)
}

/// The gateway's status label as `GET /api/v1/bot/status` reports it.
pub async fn bot_status_label(app: &TestApp) -> String {
    match app
        .state
        .gateway
        .send(guildhall::actors::gateway::GetBotStatus)
        .await
    {
        Ok(status) => status.status.label().to_owned(),
        Err(_) => String::new(),
    }
}
