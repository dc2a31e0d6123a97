//! What the engine knows about modules before running anything: their names, which arguments
//! they take and whether they are destructive (and so wait for an approval by default).

use std::collections::BTreeMap;

/// The modules the engine itself runs (no [`crate::Module`] needed): `debug`, `set_fact`,
/// `fail`, `pause` and `approve`.
pub const BUILTIN_MODULES: [&str; 5] = ["debug", "set_fact", "fail", "pause", "approve"];

/// The arguments a module takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsSchema {
    /// A mapping with these keys: `required` must be there, `optional` may be; any other key
    /// is refused at parse time.
    Fields {
        /// Keys that must be given.
        required: Vec<String>,
        /// Keys that may be given.
        optional: Vec<String>,
    },
    /// Any mapping (e.g. `set_fact`: the keys are the facts' names).
    AnyMapping,
}

impl ArgsSchema {
    /// A [`ArgsSchema::Fields`] from string slices.
    pub fn fields(required: &[&str], optional: &[&str]) -> Self {
        ArgsSchema::Fields {
            required: required.iter().map(|s| (*s).to_owned()).collect(),
            optional: optional.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// Why `keys` (the argument names a task gives) do not fit, if they don't.
    pub fn check<'a>(&self, keys: impl IntoIterator<Item = &'a str> + Clone) -> Result<(), String> {
        let ArgsSchema::Fields { required, optional } = self else {
            return Ok(());
        };
        for key in keys.clone() {
            if !required.iter().chain(optional).any(|k| k == key) {
                let mut known: Vec<&str> = required
                    .iter()
                    .chain(optional)
                    .map(String::as_str)
                    .collect();
                known.sort_unstable();
                return Err(format!(
                    "unknown argument `{key}` (expected: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
        }
        for need in required {
            if !keys.clone().into_iter().any(|k| k == need) {
                return Err(format!("missing required argument `{need}`"));
            }
        }
        Ok(())
    }
}

/// One module's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// The task key that names it, e.g. `notify.webhook`.
    pub name: String,
    /// Destructive steps (isolate, kill, quarantine, block, delete) wait for an approval
    /// unless the play or the step says `approval: false`.
    pub destructive: bool,
    /// Its arguments.
    pub args: ArgsSchema,
}

impl ModuleSpec {
    /// A non-destructive module.
    pub fn new(name: &str, args: ArgsSchema) -> Self {
        ModuleSpec {
            name: name.to_owned(),
            destructive: false,
            args,
        }
    }

    /// The same module, marked destructive.
    pub fn destructive(mut self) -> Self {
        self.destructive = true;
        self
    }
}

/// The known modules by name: what the parser checks tasks against and what the executor
/// asks about approvals. Always holds the built-ins ([`BUILTIN_MODULES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    specs: BTreeMap<String, ModuleSpec>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::builtins()
    }
}

impl Catalog {
    /// Only the engine's own modules.
    pub fn builtins() -> Self {
        let mut catalog = Catalog {
            specs: BTreeMap::new(),
        };
        catalog.add(ModuleSpec::new(
            "debug",
            ArgsSchema::fields(&[], &["msg", "var"]),
        ));
        catalog.add(ModuleSpec::new("set_fact", ArgsSchema::AnyMapping));
        catalog.add(ModuleSpec::new("fail", ArgsSchema::fields(&[], &["msg"])));
        catalog.add(ModuleSpec::new(
            "pause",
            ArgsSchema::fields(&[], &["seconds", "minutes", "prompt"]),
        ));
        catalog.add(ModuleSpec::new(
            "approve",
            ArgsSchema::fields(&[], &["reason", "approvers", "timeout", "different_person"]),
        ));
        catalog
    }

    /// The built-ins plus the modules Dozor's server provides (notifications, alert actions,
    /// agent response actions). The names the shipped playbooks use; the server registers an
    /// implementation for each.
    pub fn dozor() -> Self {
        let mut c = Self::builtins();
        let f = ArgsSchema::fields;
        c.add(ModuleSpec::new(
            "notify.webhook",
            f(&["url"], &["body", "headers", "secret", "timeout"]),
        ));
        c.add(ModuleSpec::new(
            "notify.email",
            f(&["to", "subject", "body"], &["cc", "from"]),
        ));
        c.add(ModuleSpec::new(
            "notify.telegram",
            f(&["chat_id", "text"], &["parse_mode"]),
        ));
        c.add(ModuleSpec::new(
            "notify.mattermost",
            f(&["url", "text"], &["channel", "username"]),
        ));
        c.add(ModuleSpec::new(
            "alert.status",
            f(&["status"], &["alert_id", "comment"]),
        ));
        c.add(ModuleSpec::new(
            "alert.assign",
            f(&["assignee"], &["alert_id"]),
        ));
        c.add(ModuleSpec::new(
            "alert.comment",
            f(&["text"], &["alert_id"]),
        ));
        let agent = |name: &str, required: &[&str], optional: &[&str]| {
            let mut all = vec!["agent_id", "timeout"];
            all.extend_from_slice(optional);
            ModuleSpec::new(name, f(required, &all))
        };
        c.add(
            agent(
                "agent.isolate_host",
                &[],
                &["allow", "release_after", "reason"],
            )
            .destructive(),
        );
        c.add(agent("agent.release_host", &[], &["reason"]));
        c.add(agent("agent.kill_process", &["pid", "start_time"], &["reason"]).destructive());
        c.add(agent("agent.quarantine_file", &["path"], &["reason"]).destructive());
        c.add(agent("agent.restore_file", &["quarantine_id"], &["reason"]));
        c.add(agent("agent.block_ip", &["ip"], &["reason", "expires"]).destructive());
        c.add(agent("agent.unblock_ip", &["ip"], &["reason"]));
        c.add(agent("agent.delete_file", &["path"], &["reason"]).destructive());
        c.add(agent("agent.collect_file", &["path"], &["max_bytes"]));
        c.add(agent("agent.scan_path", &["path"], &[]));
        c
    }

    /// Adds (or replaces) a module.
    pub fn add(&mut self, spec: ModuleSpec) {
        self.specs.insert(spec.name.clone(), spec);
    }

    /// A module by name.
    pub fn get(&self, name: &str) -> Option<&ModuleSpec> {
        self.specs.get(name)
    }

    /// Every module's name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }
}
