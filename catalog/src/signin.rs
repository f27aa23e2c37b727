//! People's sign-in over HTTP: enrolment (`POST /api/v1/enrol/start`, `/enrol/finish`),
//! sign-in with password and TOTP code (`POST /api/v1/sign-in`, answering with the session
//! cookie), sign-out. Every attempt goes through the failed-authentication limiter
//! (`crate::guard`) under the account `user:<name>` and the client address; failures are
//! logged, counted and audited.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use crate::api::{ApiError, ApiState};
use crate::auth::Principal;
use crate::users::{UserError, COOKIE, SESSION_TTL_SECS};

/// A user-module error as an API error.
pub fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::Refused(m) => ApiError(StatusCode::UNAUTHORIZED, m.to_string()),
        UserError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
        UserError::Store(e) => e.into(),
    }
}

pub(crate) fn client_of(req_ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    req_ext.get::<crate::guard::ClientAddr>().map(|c| c.0)
}

pub(crate) fn cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v =
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Runs one attempt for `name` through the limiter: refused with 429 while locked out;
/// a `Refused` outcome counts as a failure (`reason`), logged and audited.
async fn attempt<T: Send + 'static>(
    state: &ApiState,
    client: Option<std::net::IpAddr>,
    name: &str,
    reason: &'static str,
    f: impl FnOnce(&crate::store::Store) -> Result<T, UserError> + Send + 'static,
) -> Result<T, Response> {
    let account = format!("user:{name}");
    if let Err(l) = state.control.guard().check(client, Some(&account)) {
        return Err(crate::api::AuthFailure::Locked(l).into_response());
    }
    let control = state.control.clone();
    // Argon2 is deliberately slow: off the async workers.
    let r = tokio::task::spawn_blocking(move || f(control.store()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?;
    match r {
        Ok(v) => {
            state.control.guard().succeeded(&account);
            Ok(v)
        }
        Err(UserError::Refused(m)) => {
            state.control.guard().failed(client, Some(&account), reason);
            state
                .control
                .audit_auth_failure(client, Some(&account), reason);
            Err(ApiError(StatusCode::UNAUTHORIZED, m.to_string()).into_response())
        }
        Err(e) => Err(user_error(e).into_response()),
    }
}

fn bad_request(e: axum::extract::rejection::JsonRejection) -> Response {
    ApiError(StatusCode::BAD_REQUEST, e.body_text()).into_response()
}

/// `POST /api/v1/sign-in` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    user: String,
    password: String,
    code: String,
}

/// Signs a user in: 204 with the session cookie, 401 (one message for any wrong part),
/// 429 while locked out.
pub async fn sign_in(State(state): State<ApiState>, req: Request) -> Response {
    let client = client_of(req.extensions());
    let body = match Json::<SignIn>::from_request(req, &state).await {
        Ok(Json(b)) => b,
        Err(e) => return bad_request(e),
    };
    let name = body.user.clone();
    let client_s = crate::guard::client_str(client);
    let r = attempt(&state, client, &name, "bad_sign_in", move |store| {
        crate::audit::with_client(&client_s, || {
            store.sign_in(&body.user, &body.password, &body.code)
        })
    })
    .await;
    match r {
        Ok((session, role)) => {
            let mut resp = (
                StatusCode::OK,
                Json(json!({"user": name, "role": role, "expires_in_seconds": SESSION_TTL_SECS})),
            )
                .into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&session, SESSION_TTL_SECS, state.control.secure_cookies()),
            );
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(resp) => resp,
    }
}

/// `POST /api/v1/enrol/start` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolStart {
    user: String,
    secret: String,
}

/// Checks the enrolment secret and answers with the new TOTP secret (base32) and its
/// `otpauth://` URI, shown once.
pub async fn enrol_start(State(state): State<ApiState>, req: Request) -> Response {
    let client = client_of(req.extensions());
    let body = match Json::<EnrolStart>::from_request(req, &state).await {
        Ok(Json(b)) => b,
        Err(e) => return bad_request(e),
    };
    let name = body.user.clone();
    match attempt(&state, client, &name, "bad_enrolment", move |store| {
        store.enrol_start(&body.user, &body.secret)
    })
    .await
    {
        Ok(secret) => {
            let uri = format!(
                "otpauth://totp/Weir:{name}?secret={secret}&issuer=Weir&algorithm=SHA1&digits=6&period=30"
            );
            let mut r = Json(json!({"totp_secret": secret, "otpauth_uri": uri})).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(r) => r,
    }
}

/// `POST /api/v1/enrol/finish` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolFinish {
    user: String,
    secret: String,
    password: String,
    code: String,
}

/// Sets the password and confirms the authenticator with a code: 204.
pub async fn enrol_finish(State(state): State<ApiState>, req: Request) -> Response {
    let client = client_of(req.extensions());
    let body = match Json::<EnrolFinish>::from_request(req, &state).await {
        Ok(Json(b)) => b,
        Err(e) => return bad_request(e),
    };
    let name = body.user.clone();
    let client_s = crate::guard::client_str(client);
    match attempt(&state, client, &name, "bad_enrolment", move |store| {
        crate::audit::with_client(&client_s, || {
            store.enrol_finish(&body.user, &body.secret, &body.password, &body.code)
        })
    })
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// Ends the caller's session and clears the cookie.
pub async fn sign_out(
    State(state): State<ApiState>,
    Extension(_p): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    if let Some(s) = crate::api::session_cookie(&headers) {
        if let Err(e) = state.control.store().end_session(s) {
            return ApiError::from(e).into_response();
        }
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie("", 0, state.control.secure_cookies()),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_over_tls() {
        let c = cookie("weir_s_abc", 3600, true);
        assert_eq!(
            c.to_str().unwrap(),
            "weir_session=weir_s_abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"
        );
        let c = cookie("weir_s_abc", 3600, false);
        assert!(!c.to_str().unwrap().contains("Secure"));
    }
}
