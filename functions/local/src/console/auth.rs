//! Who may read the console and the case routes.
//!
//! On a loopback address (127.0.0.0/8, ::1) every request may: only this machine can reach it.
//! On any other bind address (0.0.0.0 included, whichever interface a request comes in on),
//! `/console*`, `GET /v1/cases` and `GET /v1/cases/{id}` need the token of env
//! `FOLLOWUP_CONSOLE_TOKEN`, given as `Authorization: Bearer <token>` (scripts, the case API) or
//! as the `followup_console` cookie (browsers). A browser gets the cookie by opening any console
//! page once with `?token=<token>`: the answer sets it (HttpOnly, SameSite=Strict) and redirects
//! to the same page without the token, so it stays out of history and logs. Without the variable
//! on such an address those routes answer 401, saying so, and the server logs it at start; the
//! webhooks and `/local/*` are served as before.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The cookie a browser carries the token in.
pub const COOKIE: &str = "followup_console";

/// The env variable the token comes from.
pub const TOKEN_ENV: &str = "FOLLOWUP_CONSOLE_TOKEN";

/// The access rule of one server, fixed at start from its bind address and the environment.
#[derive(Debug, Clone)]
pub struct Gate {
    /// `None`: no token is needed (a loopback bind).
    rule: Option<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Token(Arc<str>),
    /// Not loopback and no token configured: the guarded routes are closed.
    Closed,
}

impl Gate {
    /// The rule for a server bound to `addr` with `token` (the env variable, if set and not empty).
    pub fn new(addr: SocketAddr, token: Option<String>) -> Gate {
        if addr.ip().is_loopback() {
            return Gate { rule: None };
        }
        match token.filter(|t| !t.is_empty()) {
            Some(t) => Gate { rule: Some(Rule::Token(t.into())) },
            None => Gate { rule: Some(Rule::Closed) },
        }
    }

    /// The rule from the environment.
    pub fn from_env(addr: SocketAddr) -> Gate {
        Gate::new(addr, std::env::var(TOKEN_ENV).ok())
    }

    /// Said once at start, so an operator sees why the console answers 401.
    pub fn describe(&self) -> &'static str {
        match self.rule {
            None => "loopback address: the console and case routes need no token",
            Some(Rule::Token(_)) => "the console and case routes need the FOLLOWUP_CONSOLE_TOKEN token",
            Some(Rule::Closed) => "not a loopback address and FOLLOWUP_CONSOLE_TOKEN is not set: the console and case routes answer 401",
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.rule, Some(Rule::Closed))
    }
}

/// Whether a path is one the gate guards.
pub fn guarded(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/") || path == "/v1/cases" || path.starts_with("/v1/cases/")
}

/// Compares without an early exit, so the time taken says nothing of how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(request: &Request) -> Option<&str> {
    request.headers().get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn cookie(request: &Request) -> Option<&str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')))
}

/// The `token` query parameter and the query without it.
fn query_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("token=") {
            Some(t) => token = Some(percent_decode(t)),
            None => rest.push(pair),
        }
    }
    (token, rest.join("&"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The middleware: lets a guarded request through when the rule allows it, answers 401 otherwise.
pub async fn guard(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let Some(rule) = &gate.rule else { return next.run(request).await };
    if !guarded(request.uri().path()) {
        return next.run(request).await;
    }
    let token = match rule {
        Rule::Closed => return super::unauthorized(
            "the console and case routes are closed: the server listens on a non-loopback address and FOLLOWUP_CONSOLE_TOKEN is not set",
        ),
        Rule::Token(t) => t.as_bytes(),
    };
    if bearer(&request).or_else(|| cookie(&request)).is_some_and(|given| same(given.as_bytes(), token)) {
        return next.run(request).await;
    }
    // A browser opening a console page with `?token=`: set the cookie, drop the token from the address.
    let path = request.uri().path().to_string();
    let (given, rest) = query_token(request.uri().query().unwrap_or(""));
    if let Some(given) = given {
        if !same(given.as_bytes(), token) {
            return super::unauthorized("the token is not the console's");
        }
        if path.starts_with("/console") {
            let location = if rest.is_empty() { path } else { format!("{path}?{rest}") };
            let set = format!("{COOKIE}={given}; Path=/; HttpOnly; SameSite=Strict");
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            if let (Ok(loc), Ok(set)) = (HeaderValue::from_str(&location), HeaderValue::from_str(&set)) {
                headers.insert(header::LOCATION, loc);
                headers.insert(header::SET_COOKIE, set);
                return response;
            }
            return super::unauthorized("the token cannot be carried in a cookie");
        }
        return next.run(request).await;
    }
    super::unauthorized("a token is needed: Authorization: Bearer <FOLLOWUP_CONSOLE_TOKEN>, or open /console?token=<it> once in a browser")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_needs_no_token_and_any_other_address_does() {
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(Gate::new(at("127.0.0.1:3000"), None).rule.is_none());
        assert!(Gate::new(at("[::1]:3000"), None).rule.is_none());
        assert!(Gate::new(at("0.0.0.0:3000"), None).is_closed());
        assert!(Gate::new(at("0.0.0.0:3000"), Some(String::new())).is_closed());
        assert!(matches!(Gate::new(at("10.0.0.5:3000"), Some("s3cret".into())).rule, Some(Rule::Token(_))));
    }

    #[test]
    fn the_token_is_read_from_the_query_and_dropped_from_it() {
        assert_eq!(query_token("playbook=x&token=a%2Bb&area=Cairo"), (Some("a+b".into()), "playbook=x&area=Cairo".into()));
        assert_eq!(query_token(""), (None, String::new()));
        assert!(guarded("/console") && guarded("/console/sla") && guarded("/v1/cases") && guarded("/v1/cases/o1-x"));
        assert!(!guarded("/consoles") && !guarded("/v1/calls") && !guarded("/local/clock"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
