//! Prometheus metrics: counters of what enforcement did, gauges of what it holds now.
//!
//! Served at `GET /metrics` on `--metrics-addr` only (off by default): a scrape address on a
//! private network, never the public site.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a tab signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginMethod {
    Password,
    UseHere,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// Every metric, registered once. Cheap to clone: clones share the counters.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    logins: Family<MethodLabel, Counter>,
    takeovers: Counter,
    rejections: Family<CodeLabel, Counter>,
    observed: Family<CodeLabel, Counter>,
    logouts: Counter,
    expiries: Counter,
    revocations: Counter,
    active_tabs: Gauge,
    push_channels: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("solotab");
        let logins = Family::<MethodLabel, Counter>::default();
        let takeovers = Counter::default();
        let rejections = Family::<CodeLabel, Counter>::default();
        let observed = Family::<CodeLabel, Counter>::default();
        let logouts = Counter::default();
        let expiries = Counter::default();
        let revocations = Counter::default();
        let active_tabs = Gauge::default();
        let push_channels = Gauge::default();
        registry.register(
            "logins",
            "Tabs signed in, by method (password or use_here)",
            logins.clone(),
        );
        registry.register(
            "takeovers",
            "Active tabs ended by a newer sign-in of their account",
            takeovers.clone(),
        );
        registry.register(
            "rejections",
            "Requests and sign-ins refused, by error code (a UID not accepted, or account_in_use)",
            rejections.clone(),
        );
        registry.register(
            "observed",
            "What enforcement would have refused, by error code, served instead (observe mode)",
            observed.clone(),
        );
        registry.register("logouts", "Tabs that signed out", logouts.clone());
        registry.register(
            "expiries",
            "Tabs that reached --absolute-timeout or --idle-timeout (each counted once)",
            expiries.clone(),
        );
        registry.register(
            "revocations",
            "Tabs signed out from elsewhere (Your sessions, a password change, That wasn't me)",
            revocations.clone(),
        );
        registry.register(
            "active_tabs",
            "Tabs active now (on a shared store: in the whole deployment)",
            active_tabs.clone(),
        );
        registry.register(
            "push_channels",
            "Push channels open on this instance",
            push_channels.clone(),
        );
        Self {
            registry: Arc::new(registry),
            logins,
            takeovers,
            rejections,
            observed,
            logouts,
            expiries,
            revocations,
            active_tabs,
            push_channels,
        }
    }

    /// A tab signed in, ending `superseded` others.
    pub fn signed_in(&self, method: LoginMethod, superseded: usize) {
        let method = match method {
            LoginMethod::Password => "password",
            LoginMethod::UseHere => "use_here",
        };
        self.logins.get_or_create(&MethodLabel { method }).inc();
        self.takeovers.inc_by(superseded as u64);
    }

    /// A request or sign-in was refused with `code`.
    pub fn rejected(&self, code: &'static str) {
        self.rejections.get_or_create(&CodeLabel { code }).inc();
    }

    /// Observe mode served what enforcement would have refused with `code`.
    pub fn observed(&self, code: &'static str) {
        self.observed.get_or_create(&CodeLabel { code }).inc();
    }

    pub fn logged_out(&self) {
        self.logouts.inc();
    }

    /// A tab timed out (counted once per tab, however many requests it sends after).
    pub fn expired(&self) {
        self.expiries.inc();
    }

    /// `tabs` tabs were signed out from elsewhere.
    pub fn revoked(&self, tabs: usize) {
        self.revocations.inc_by(tabs as u64);
    }

    /// The text exposition, with the gauges set to `active_tabs` and `push_channels` now.
    pub fn render(&self, active_tabs: usize, push_channels: usize) -> String {
        self.active_tabs
            .set(i64::try_from(active_tabs).unwrap_or(i64::MAX));
        self.push_channels
            .set(i64::try_from(push_channels).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line starting with `name` (labels included), if any.
    pub(crate) fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn counters_move_by_exactly_what_happened() {
        let metrics = Metrics::new();
        metrics.signed_in(LoginMethod::Password, 0);
        metrics.signed_in(LoginMethod::Password, 1);
        metrics.signed_in(LoginMethod::UseHere, 1);
        metrics.rejected("superseded");
        metrics.rejected("superseded");
        metrics.rejected("account_in_use");
        metrics.logged_out();
        metrics.expired();
        metrics.revoked(2);
        metrics.revoked(1);
        let text = metrics.render(3, 7);
        let value = |name| sample(&text, name);
        assert_eq!(
            value(r#"solotab_logins_total{method="password"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(r#"solotab_logins_total{method="use_here"}"#),
            Some(1.0)
        );
        assert_eq!(value("solotab_takeovers_total"), Some(2.0));
        assert_eq!(
            value(r#"solotab_rejections_total{code="superseded"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(r#"solotab_rejections_total{code="account_in_use"}"#),
            Some(1.0)
        );
        assert_eq!(value("solotab_logouts_total"), Some(1.0));
        assert_eq!(value("solotab_expiries_total"), Some(1.0));
        assert_eq!(value("solotab_revocations_total"), Some(3.0));
        assert_eq!(value("solotab_active_tabs"), Some(3.0));
        assert_eq!(value("solotab_push_channels"), Some(7.0));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
