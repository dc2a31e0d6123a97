//! Who may do what: roles, the rights they give, operator accounts and API tokens.

use serde::{Deserialize, Serialize};

use crate::error::named;

/// Longest user name, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;
/// The interface languages a user may choose.
pub const USER_LANGUAGES: [&str; 2] = ["en", "ru"];

/// The role of an operator account or an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Triage and hunt.
    Analyst,
    /// Read only.
    Viewer,
    /// May only send events (old service tokens; agents now use their certificate).
    AgentIngest,
}

/// A right a request needs: what the API's and the dashboard's routes check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Reading: events, alerts, rules, agents, stats.
    Read,
    /// Triage: the alert workflow, comments, rule tests, agent scans.
    Triage,
    /// Administration: rules on/off and reload, users, tokens, agents' revocation.
    Admin,
}

impl Role {
    /// All roles, most privileged first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Analyst, Role::Viewer, Role::AgentIngest];

    /// The roles an operator account may have, least privileged first (as forms offer them).
    pub const OPERATOR: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::AgentIngest => "agent-ingest",
        }
    }

    /// Whether an operator account may have this role (admin, analyst, viewer — not
    /// agent-ingest).
    pub fn is_operator_role(self) -> bool {
        !matches!(self, Role::AgentIngest)
    }

    /// How much the role may do: admin 3 > analyst 2 > viewer 1 > agent-ingest 0 (which may
    /// only send events, so it counts as the least).
    pub fn privilege(self) -> u8 {
        match self {
            Role::Admin => 3,
            Role::Analyst => 2,
            Role::Viewer => 1,
            Role::AgentIngest => 0,
        }
    }

    /// The lower of this role and `ceiling` (by [`Role::privilege`]): what a token of this role
    /// owned by a user with role `ceiling` may do.
    pub fn capped_by(self, ceiling: Role) -> Role {
        if ceiling.privilege() < self.privilege() {
            ceiling
        } else {
            self
        }
    }

    /// Does the role give this right? Viewers read; analysts also triage; admins do
    /// everything; agent-ingest none of these (it only sends events).
    pub fn permits(self, need: Access) -> bool {
        match self {
            Role::Admin => true,
            Role::Analyst => need <= Access::Triage,
            Role::Viewer => need == Access::Read,
            Role::AgentIngest => false,
        }
    }
}

named!(Role, "role");

/// An API token as stored (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// Role (as created; when verified, capped by its owner's current role).
    pub role: Role,
    /// Created, ms.
    pub created_at: i64,
    /// Expiry, ms.
    pub expires_at: Option<i64>,
    /// Last successful verification, ms (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// The user the token belongs to, if any.
    #[serde(default)]
    pub owner: Option<i64>,
}

/// An operator account (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: i64,
    /// Login name as created (trimmed).
    pub username: String,
    /// Admin, analyst or viewer.
    pub role: Role,
    /// Interface language (`"en"`, `"ru"`), `None` = the browser's.
    pub language: Option<String>,
    /// Created, ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Last change of role, password, language or disabled state, ms.
    pub updated_at: i64,
    /// Last successful login, ms.
    pub last_login_at: Option<i64>,
    /// Disabled since, ms; a disabled user has no sessions and its tokens do not verify.
    pub disabled_at: Option<i64>,
}
