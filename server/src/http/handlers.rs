//! The handlers: parse, call the core, map the result to the contract. Nothing else.

use app::contract::{Credentials, Health, LoggedIn, Me, Premium, Registered};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::{ActiveTab, ApiError, ApiJson, AppState, TabRefusal};
use crate::registry::ReleaseError;
use crate::store::{CreateAccountError, LoginOrigin};
use crate::time::UnixMillis;

pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

pub(super) async fn register(
    State(state): State<AppState>,
    ApiJson(creds): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let username = app::rules::username(&creds.username)
        .map_err(ApiError::InvalidInput)?
        .to_owned();
    app::rules::password(&creds.password).map_err(ApiError::InvalidInput)?;
    // Cheap early answer for the common case; the store's unique key decides races.
    if state
        .accounts
        .find(&app::rules::username_key(&username))
        .await?
        .is_some()
    {
        return Err(ApiError::UsernameTaken);
    }
    let hash = state.passwords.hash(creds.password).await?;
    match state
        .accounts
        .create(&username, &hash, UnixMillis::now())
        .await
    {
        Ok(_) => {
            tracing::info!(account = %username, "registered");
            Ok((StatusCode::CREATED, Json(Registered { username })))
        }
        Err(CreateAccountError::Taken) => Err(ApiError::UsernameTaken),
        Err(CreateAccountError::Store(e)) => Err(e.into()),
    }
}

pub(super) async fn login(
    State(state): State<AppState>,
    origin: LoginOrigin,
    ApiJson(creds): ApiJson<Credentials>,
) -> Result<Json<LoggedIn>, ApiError> {
    if creds.username.trim().is_empty() || creds.password.is_empty() {
        return Err(ApiError::InvalidInput(
            "Enter your username and password.".into(),
        ));
    }
    // A name or password that breaks the rules cannot belong to an account: no lookup needed,
    // and the answer is the same as for a wrong password.
    let (Ok(name), Ok(())) = (
        app::rules::username(&creds.username),
        app::rules::password(&creds.password),
    ) else {
        tracing::info!("login failed: credentials break the input rules");
        return Err(ApiError::InvalidCredentials);
    };
    let account = state.accounts.find(&app::rules::username_key(name)).await?;
    // Without an account this verifies against a dummy hash: unknown users cost the same.
    let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
    let verified = state.passwords.verify(creds.password, stored_hash).await?;
    let Some(account) = account.filter(|_| verified) else {
        tracing::info!(account = %name, "login failed: invalid credentials");
        return Err(ApiError::InvalidCredentials);
    };
    let claimed = state
        .registry
        .claim(account.id, account.username.clone(), origin)
        .await?;
    tracing::info!(account = %account.username, ip = %claimed.session.origin.ip, "logged in");
    for _ in &claimed.superseded {
        tracing::info!(account = %account.username, "takeover: an older tab was superseded");
    }
    Ok(Json(LoggedIn {
        uid: claimed.uid.expose(),
        username: claimed.session.username,
        issued_at: claimed.session.issued_at.to_rfc3339(),
    }))
}

pub(super) async fn me(tab: ActiveTab) -> Json<Me> {
    Json(Me {
        username: tab.session.username,
        issued_at: tab.session.issued_at.to_rfc3339(),
    })
}

/// The demo's protected content: something only the active tab may read.
pub(super) async fn premium(tab: ActiveTab) -> Json<Premium> {
    const LESSONS: [&str; 4] = [
        "Question 1 of the exam: explain why a cookie cannot tell two tabs of one browser apart.",
        "Question 2 of the exam: what should happen to the older tab when a newer login arrives?",
        "Question 3 of the exam: why must a per-tab credential never be stored in localStorage?",
        "Question 4 of the exam: why compare secrets in constant time?",
    ];
    let served_at = UnixMillis::now();
    let lesson = LESSONS[(served_at.as_millis() / 1000).rem_euclid(LESSONS.len() as i64) as usize];
    Json(Premium {
        title: format!("Premium content for {}", tab.session.username),
        body: lesson.into(),
        served_at: served_at.to_rfc3339(),
    })
}

pub(super) async fn logout(
    State(state): State<AppState>,
    tab: ActiveTab,
) -> Result<StatusCode, ApiError> {
    match state.registry.release(tab.uid).await {
        Ok(ended) => {
            tracing::info!(account = %ended.username, "logged out");
            Ok(StatusCode::NO_CONTENT)
        }
        // Superseded between the check and the release: answer with that rejection.
        Err(ReleaseError::Refused(refused)) => {
            Err(ApiError::Refused(TabRefusal::Rejected(refused.rejection)))
        }
        Err(ReleaseError::Store(e)) => Err(e.into()),
    }
}
