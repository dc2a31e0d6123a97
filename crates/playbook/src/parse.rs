//! Playbook files: the Ansible-shaped YAML, read into [`Playbook`] with every refusal placed
//! at a file, line and column.
//!
//! Parsing goes through serde (`yaml_serde`), which marks an error raised while a node is
//! read with that node's position: unknown keys, wrong types, unknown modules (checked on the
//! task's key), bad arguments and template syntax errors all point into the file. The known
//! modules reach the task deserializer through a thread-local set for the duration of one
//! [`parse`] call (serde's derive has no way to pass state down).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::catalog::{Catalog, ModuleSpec};
use crate::template;
use crate::trigger::Trigger;

/// A playbook that was refused: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {reason}")]
pub struct ParseError {
    /// The file name as given to [`parse`].
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong (with the YAML path when known, e.g. `[0].tasks[1]: ...`).
    pub reason: String,
}

/// A parsed playbook: its plays in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    /// The file it came from (as given to [`parse`]).
    pub file: String,
    /// The plays.
    pub plays: Vec<Play>,
}

/// One play: a named list of tasks with its variables and trigger.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Play {
    /// Its name (shown in runs).
    pub name: String,
    /// Ansible's host pattern. Dozor runs plays on the server against an alert or an agent,
    /// so it is accepted for compatibility and not used.
    #[serde(default)]
    pub hosts: Option<String>,
    /// Ansible's fact gathering switch; accepted and not used.
    #[serde(default)]
    pub gather_facts: Option<bool>,
    /// Play variables (`vars.*` in templates and bare names), templated when the play starts.
    #[serde(default, deserialize_with = "checked_vars")]
    pub vars: Map<String, Value>,
    /// When the play runs by itself (Dozor's extension); none: only on request.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// `false`: destructive steps of this play run without asking for an approval.
    #[serde(default)]
    pub approval: Option<bool>,
    /// The tasks, in order.
    pub tasks: Vec<Task>,
}

/// A task: one module call or a block, with Ansible's task keywords.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Its name; the module name when not given.
    pub name: Option<String>,
    /// Conditions that must all hold (Jinja expressions without braces).
    pub when: Vec<Expr>,
    /// The name its result is registered under.
    pub register: Option<String>,
    /// Run once per item (`item` in templates).
    pub loop_items: Option<LoopSource>,
    /// Extra attempts after a failure or an unmet `until` (default 3 when `until` is given).
    pub retries: Option<u32>,
    /// Seconds between attempts (default 5).
    pub delay: Option<u64>,
    /// Conditions the result must meet (evaluated after each attempt).
    pub until: Vec<Expr>,
    /// A failure is recorded and the play goes on.
    pub ignore_errors: bool,
    /// Task variables.
    pub vars: Map<String, Value>,
    /// `false`: no approval for this destructive step; `true`: ask even for a harmless one.
    pub approval: Option<bool>,
    /// What it does.
    pub action: Action,
}

impl Task {
    /// Its name, or what it runs.
    pub fn display_name(&self) -> String {
        match (&self.name, &self.action) {
            (Some(name), _) => name.clone(),
            (None, Action::Module { name, .. }) => name.clone(),
            (None, Action::Block { .. }) => "block".to_owned(),
        }
    }
}

/// A task's action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A module call with its (untemplated) arguments.
    Module {
        /// Module name, e.g. `notify.webhook`.
        name: String,
        /// Arguments; strings are Jinja templates.
        args: Map<String, Value>,
    },
    /// Ansible's `block` / `rescue` / `always`.
    Block {
        /// Run first.
        block: Vec<Task>,
        /// Run when a `block` task fails (not ignored); a rescue that succeeds recovers.
        rescue: Vec<Task>,
        /// Run in any case.
        always: Vec<Task>,
    },
}

/// Where a loop's items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopSource {
    /// A literal list (items that are strings are templated).
    List(Vec<Value>),
    /// A template that evaluates to a list, e.g. `"{{ alert.tags }}"`.
    Template(String),
}

/// A Jinja expression (without braces), syntax-checked when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr(pub String);

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExprVisitor;
        impl Visitor<'_> for ExprVisitor {
            type Value = Expr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Jinja expression or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Expr, E> {
                Ok(Expr(if v { "true" } else { "false" }.to_owned()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Expr, E> {
                template::check_expression(v).map_err(E::custom)?;
                Ok(Expr(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ExprVisitor)
    }
}

/// One condition or a list of them (all must hold), as Ansible writes `when` and `until`.
struct Conditions(Vec<Expr>);

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionsVisitor;
        impl<'de> Visitor<'de> for ConditionsVisitor {
            type Value = Conditions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Jinja expression, a boolean or a list of them")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Conditions, E> {
                Ok(Conditions(vec![Expr(v.to_string())]))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Conditions, E> {
                template::check_expression(v).map_err(E::custom)?;
                Ok(Conditions(vec![Expr(v.to_owned())]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Conditions, A::Error> {
                let mut all = Vec::new();
                while let Some(expr) = seq.next_element::<Expr>()? {
                    all.push(expr);
                }
                Ok(Conditions(all))
            }
        }
        deserializer.deserialize_any(ConditionsVisitor)
    }
}

impl<'de> Deserialize<'de> for LoopSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LoopVisitor;
        impl<'de> Visitor<'de> for LoopVisitor {
            type Value = LoopSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list or a template that evaluates to one")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LoopSource, E> {
                template::check_template(v).map_err(E::custom)?;
                Ok(LoopSource::Template(v.to_owned()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LoopSource, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    template::check_value(&item)
                        .map_err(|why| de::Error::custom(format!("loop item: {why}")))?;
                    items.push(item);
                }
                Ok(LoopSource::List(items))
            }
        }
        deserializer.deserialize_any(LoopVisitor)
    }
}

/// Variables: a mapping of valid names whose string values are valid templates.
fn checked_vars<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Map<String, Value>, D::Error> {
    struct VarsVisitor;
    impl<'de> Visitor<'de> for VarsVisitor {
        type Value = Map<String, Value>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of variables")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Map::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut vars = Map::new();
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                check_identifier(&key).map_err(de::Error::custom)?;
                template::check_value(&value)
                    .map_err(|why| de::Error::custom(format!("variable `{key}`: {why}")))?;
                if vars.insert(key.clone(), value).is_some() {
                    return Err(de::Error::custom(format!("duplicate variable `{key}`")));
                }
            }
            Ok(vars)
        }
    }
    deserializer.deserialize_any(VarsVisitor)
}

/// [`checked_vars`] as a type, for `next_value` in the task visitor.
struct Vars(Map<String, Value>);

impl<'de> Deserialize<'de> for Vars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        checked_vars(deserializer).map(Vars)
    }
}

thread_local! {
    /// The catalog of the [`parse`] call running on this thread.
    static CATALOG: RefCell<Option<Catalog>> = const { RefCell::new(None) };
}

/// Clears the thread's catalog when a parse ends, even by unwinding.
struct CatalogScope;

impl CatalogScope {
    fn enter(catalog: &Catalog) -> Self {
        CATALOG.with(|c| *c.borrow_mut() = Some(catalog.clone()));
        CatalogScope
    }
}

impl Drop for CatalogScope {
    fn drop(&mut self) {
        CATALOG.with(|c| *c.borrow_mut() = None);
    }
}

fn module_spec(name: &str) -> Option<ModuleSpec> {
    CATALOG.with(|c| c.borrow().as_ref().and_then(|c| c.get(name).cloned()))
}

/// Parses a playbook file's text, checking every task's module and arguments against
/// `catalog`. `file` names the file in errors.
pub fn parse(file: &str, text: &str, catalog: &Catalog) -> Result<Playbook, ParseError> {
    let _scope = CatalogScope::enter(catalog);
    let plays: Vec<Play> = yaml_serde::from_str(text).map_err(|err| {
        let (line, column) = err.location().map_or((1, 1), |at| (at.line(), at.column()));
        let mut reason = err.to_string();
        // The position is in the fields; keep the message alone.
        if let Some(cut) = reason.rfind(" at line ") {
            reason.truncate(cut);
        }
        ParseError {
            file: file.to_owned(),
            line,
            column,
            reason,
        }
    })?;
    if plays.is_empty() {
        return Err(ParseError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            reason: "a playbook is a list of at least one play".to_owned(),
        });
    }
    Ok(Playbook {
        file: file.to_owned(),
        plays,
    })
}

/// A key of a task mapping: a keyword or a module.
enum TaskKey {
    Name,
    When,
    Register,
    Loop,
    Retries,
    Delay,
    Until,
    IgnoreErrors,
    Vars,
    Approval,
    Block,
    Rescue,
    Always,
    Module(ModuleSpec),
}

impl TaskKey {
    fn keyword(&self) -> &'static str {
        match self {
            TaskKey::Name => "name",
            TaskKey::When => "when",
            TaskKey::Register => "register",
            TaskKey::Loop => "loop",
            TaskKey::Retries => "retries",
            TaskKey::Delay => "delay",
            TaskKey::Until => "until",
            TaskKey::IgnoreErrors => "ignore_errors",
            TaskKey::Vars => "vars",
            TaskKey::Approval => "approval",
            TaskKey::Block => "block",
            TaskKey::Rescue => "rescue",
            TaskKey::Always => "always",
            TaskKey::Module(_) => "module",
        }
    }
}

impl<'de> Deserialize<'de> for TaskKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = TaskKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a task keyword or a module name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TaskKey, E> {
                Ok(match v {
                    "name" => TaskKey::Name,
                    "when" => TaskKey::When,
                    "register" => TaskKey::Register,
                    "loop" => TaskKey::Loop,
                    "retries" => TaskKey::Retries,
                    "delay" => TaskKey::Delay,
                    "until" => TaskKey::Until,
                    "ignore_errors" => TaskKey::IgnoreErrors,
                    "vars" => TaskKey::Vars,
                    "approval" => TaskKey::Approval,
                    "block" => TaskKey::Block,
                    "rescue" => TaskKey::Rescue,
                    "always" => TaskKey::Always,
                    other => match module_spec(other) {
                        Some(spec) => TaskKey::Module(spec),
                        None => {
                            return Err(E::custom(format!(
                                "unknown module or task keyword `{other}`"
                            )));
                        }
                    },
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A module's arguments, checked against its schema (the error lands on the arguments).
struct ArgsSeed(ModuleSpec);

impl<'de> DeserializeSeed<'de> for ArgsSeed {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArgsSeed {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the arguments of `{}` as a mapping", self.0.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.check(Map::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut args = Map::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            if args.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("duplicate argument `{key}`")));
            }
        }
        self.check(args)
    }
}

impl ArgsSeed {
    fn check<E: de::Error>(&self, args: Map<String, Value>) -> Result<Map<String, Value>, E> {
        self.0
            .args
            .check(args.keys().map(String::as_str))
            .map_err(|why| E::custom(format!("`{}`: {why}", self.0.name)))?;
        for (key, value) in &args {
            template::check_value(value)
                .map_err(|why| E::custom(format!("`{}` argument `{key}`: {why}", self.0.name)))?;
        }
        Ok(args)
    }
}

fn check_identifier(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid variable name (letters, digits, _; not starting with a digit)"
        ))
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TaskVisitor)
    }
}

struct TaskVisitor;

impl<'de> Visitor<'de> for TaskVisitor {
    type Value = Task;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a task (a mapping with one module key or a block)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Task, A::Error> {
        let mut seen: Vec<&'static str> = Vec::new();
        let mut name = None;
        let mut when = Vec::new();
        let mut register = None;
        let mut loop_items = None;
        let mut retries = None;
        let mut delay = None;
        let mut until = Vec::new();
        let mut ignore_errors = false;
        let mut task_vars = Map::new();
        let mut approval = None;
        let mut block: Option<Vec<Task>> = None;
        let mut rescue: Option<Vec<Task>> = None;
        let mut always: Option<Vec<Task>> = None;
        let mut module: Option<(String, Map<String, Value>)> = None;
        while let Some(key) = map.next_key::<TaskKey>()? {
            if let TaskKey::Module(spec) = &key {
                if let Some((first, _)) = &module {
                    return Err(de::Error::custom(format!(
                        "a task runs one module: `{first}` and `{}` are both given",
                        spec.name
                    )));
                }
            } else {
                let keyword = key.keyword();
                if seen.contains(&keyword) {
                    return Err(de::Error::custom(format!("duplicate keyword `{keyword}`")));
                }
                seen.push(keyword);
            }
            match key {
                TaskKey::Name => name = Some(map.next_value::<String>()?),
                TaskKey::When => when = map.next_value::<Conditions>()?.0,
                TaskKey::Until => until = map.next_value::<Conditions>()?.0,
                TaskKey::Register => {
                    let reg: String = map.next_value()?;
                    check_identifier(&reg).map_err(de::Error::custom)?;
                    register = Some(reg);
                }
                TaskKey::Loop => loop_items = Some(map.next_value::<LoopSource>()?),
                TaskKey::Retries => retries = Some(map.next_value::<u32>()?),
                TaskKey::Delay => delay = Some(map.next_value::<u64>()?),
                TaskKey::IgnoreErrors => ignore_errors = map.next_value::<bool>()?,
                TaskKey::Vars => task_vars = map.next_value::<Vars>()?.0,
                TaskKey::Approval => approval = Some(map.next_value::<bool>()?),
                TaskKey::Block => block = Some(map.next_value()?),
                TaskKey::Rescue => rescue = Some(map.next_value()?),
                TaskKey::Always => always = Some(map.next_value()?),
                TaskKey::Module(spec) => {
                    let args = map.next_value_seed(ArgsSeed(spec.clone()))?;
                    module = Some((spec.name, args));
                }
            }
        }
        let action = match (module, block) {
            (Some((name, args)), None) => {
                if rescue.is_some() || always.is_some() {
                    return Err(de::Error::custom(
                        "`rescue` and `always` belong to a `block`, not to a module task",
                    ));
                }
                Action::Module { name, args }
            }
            (None, Some(block)) => {
                for (keyword, given) in [
                    ("register", register.is_some()),
                    ("loop", loop_items.is_some()),
                    ("retries", retries.is_some()),
                    ("delay", delay.is_some()),
                    ("until", !until.is_empty()),
                ] {
                    if given {
                        return Err(de::Error::custom(format!(
                            "`{keyword}` applies to a module task, not to a block"
                        )));
                    }
                }
                Action::Block {
                    block,
                    rescue: rescue.unwrap_or_default(),
                    always: always.unwrap_or_default(),
                }
            }
            (Some((name, _)), Some(_)) => {
                return Err(de::Error::custom(format!(
                    "a task is a module (`{name}`) or a `block`, not both"
                )));
            }
            (None, None) => {
                return Err(de::Error::custom(
                    "a task needs a module key (e.g. `debug:`) or a `block`",
                ));
            }
        };
        Ok(Task {
            name,
            when,
            register,
            loop_items,
            retries,
            delay,
            until,
            ignore_errors,
            vars: task_vars,
            approval,
            action,
        })
    }
}
