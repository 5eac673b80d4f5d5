//! The session instructions JSON (registration response body; W3C DBSC "session config").

use serde::Serialize;

/// What the browser is told about a session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInstructions {
    /// The session's identifier.
    pub session_identifier: String,
    /// Where refreshes go (relative to the registration URL, or absolute).
    pub refresh_url: String,
    /// Which requests the session covers.
    pub scope: Scope,
    /// The bound cookies.
    pub credentials: Vec<Credential>,
    /// Out-of-scope initiators allowed to trigger a refresh.
    pub allowed_refresh_initiators: Vec<String>,
}

/// The session's scope.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    /// `true`: the whole site; `false`: this origin.
    pub include_site: bool,
    /// Include/exclude rules, evaluated last to first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope_specification: Vec<ScopeRule>,
}

/// One scope rule.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeRule {
    /// `include` or `exclude`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A host pattern (`*`, `host`, `*.suffix`).
    pub domain: String,
    /// A path prefix.
    pub path: String,
}

/// A bound cookie.
#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    /// Always `cookie`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The cookie's name.
    pub name: String,
    /// Exactly the attributes the server sets it with (Chromium matches the cookie it
    /// expects by them; left out, it assumes defaults relative to the registration URL and
    /// never finds the cookie).
    pub attributes: String,
}
