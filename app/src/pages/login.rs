use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, Redirect};
use leptos_router::hooks::use_navigate;

use crate::Hydrated;
use crate::api::{self, ApiError};
use crate::components::{CredentialsForm, TakeoverButton};
use crate::contract::{Credentials, Device, ErrorCode};
use crate::session::{Session, TabState};

/// `/login`. Also what a reload or a new tab lands on (the UID lives in memory only): if
/// this browser is signed in (it holds a device), it offers "Use here" instead of the password.
#[component]
pub fn LoginPage() -> impl IntoView {
    let session = Session::expect();
    move || match session.state() {
        TabState::Active { .. } => view! { <Redirect path="/"/> }.into_any(),
        TabState::SignedOut { notice, username } => {
            view! { <SignIn notice prefill=username.unwrap_or_default()/> }.into_any()
        }
        TabState::Superseded { username, .. } => {
            view! { <SignIn notice=None prefill=username/> }.into_any()
        }
    }
}

/// What this browser may do without the password.
#[derive(Clone, PartialEq, Eq)]
enum DeviceCheck {
    /// Not asked yet (before hydration), or the answer is on its way.
    Pending,
    /// No valid device cookie: the password form.
    None,
    Usable(Device),
}

#[component]
fn SignIn(notice: Option<String>, prefill: String) -> impl IntoView {
    let session = Session::expect();
    let Hydrated(hydrated) = expect_context::<Hydrated>();
    let check = RwSignal::new(DeviceCheck::Pending);
    let notice = RwSignal::new(notice);
    Effect::new(move |_| {
        if !hydrated.get() {
            return;
        }
        spawn_local(async move {
            let answer = match api::device(session).await {
                Ok(device) => DeviceCheck::Usable(device),
                Err(_) => DeviceCheck::None,
            };
            let _ = check.try_set(answer);
        });
    });
    let use_password = move || {
        check.set(DeviceCheck::None);
    };
    let device_lost = move || {
        notice.set(Some(
            "This browser's sign-in has ended. Sign in with your password.".into(),
        ));
        check.set(DeviceCheck::None);
    };
    let state = move || match check.get() {
        DeviceCheck::Pending => "pending",
        _ => "done",
    };

    // Only a usable device changes what is shown: "pending" -> "none" must keep the form
    // (and whatever the person already typed in it).
    let usable = Memo::new(move |_| match check.get() {
        DeviceCheck::Usable(device) => Some(device),
        DeviceCheck::Pending | DeviceCheck::None => None,
    });
    let ready = Signal::derive(move || check.get() != DeviceCheck::Pending);

    view! {
        <div class="sign-in" data-device-check=state>
            {move || match usable.get() {
                Some(device) => {
                    view! { <UseHereCard device notice=notice.get() use_password device_lost/> }
                        .into_any()
                }
                None => {
                    view! { <LoginCard notice=notice.get() prefill=prefill.clone() ready/> }
                        .into_any()
                }
            }}
        </div>
    }
}

/// "Your account is open in another tab. Use here": this browser is signed in.
#[component]
fn UseHereCard(
    device: Device,
    notice: Option<String>,
    use_password: impl Fn() + Send + Sync + 'static,
    device_lost: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let session = Session::expect();
    let navigate = use_navigate();
    let pending = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // The server refused because another tab is active (deny-new): offer to end it.
    let in_use = RwSignal::new(false);
    let device_lost = std::sync::Arc::new(device_lost);
    let take_over = move |takeover: bool| {
        let navigate = navigate.clone();
        let device_lost = device_lost.clone();
        pending.set(true);
        error.set(None);
        in_use.set(false);
        spawn_local(async move {
            let result = api::use_here(session, takeover).await;
            let _ = pending.try_set(false);
            match result {
                Ok(()) => navigate("/", Default::default()),
                Err(e) if e.code() == Some(ErrorCode::NoDevice) => device_lost(),
                Err(e) => {
                    let _ = in_use.try_set(e.code() == Some(ErrorCode::AccountInUse));
                    let _ = error.try_set(Some(e.message()));
                }
            }
        });
    };
    let Device {
        username,
        active_elsewhere,
    } = device;
    let situation = if active_elsewhere {
        "is open in another tab or window."
    } else {
        "was last used in this browser."
    };

    view! {
        <section class="card narrow" aria-labelledby="use-here-title">
            <h1 id="use-here-title">"Welcome back"</h1>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <p class="use-here-text">
                "Your account " <strong>{username.clone()}</strong> " " {situation}
            </p>
            <p class="hint">
                "Using it here stops the other tab: only one tab of an account can be active."
            </p>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <TakeoverButton in_use pending confirm={
                let take_over = take_over.clone();
                move |()| take_over(true)
            }/>
            <button type="button" on:click=move |_| take_over(false) disabled=move || pending.get()>
                {move || if pending.get() { "Taking over…" } else { "Use here" }}
            </button>
            <p>
                <button type="button" class="link" on:click=move |_| use_password()>
                    "Sign in as someone else"
                </button>
            </p>
        </section>
    }
}

#[component]
fn LoginCard(notice: Option<String>, prefill: String, ready: Signal<bool>) -> impl IntoView {
    let session = Session::expect();
    let navigate = use_navigate();
    let submit = move |creds: Credentials| {
        let navigate = navigate.clone();
        async move {
            api::login(session, &creds).await?;
            navigate("/", Default::default());
            Ok::<(), ApiError>(())
        }
    };
    view! {
        <section class="card narrow" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in"</h1>
            {notice.map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <CredentialsForm id="login" submit_label="Sign in" pending_label="Signing in…" prefill ready submit/>
            <p>"New here? " <A href="/register">"Create an account"</A></p>
        </section>
    }
}
