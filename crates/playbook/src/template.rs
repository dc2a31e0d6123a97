//! Jinja templating (minijinja) of arguments, variables, `loop`, `when` and `until`, with
//! strict undefined: a name or attribute that is not there is an error, never an empty text.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// `true` when the text holds Jinja markup (else it is a plain string, used as is).
fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// The expression of a string that is exactly one `{{ ... }}`: it evaluates to a native
/// value (a list stays a list, a number a number), as in Ansible.
fn whole_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

/// Checks a bare expression's syntax (as `when` and `until` take it).
pub fn check_expression(text: &str) -> Result<(), String> {
    if text.contains("{{") || text.contains("{%") {
        return Err(format!(
            "write the condition as a bare expression, without {{{{ }}}} or {{% %}}: `{text}`"
        ));
    }
    environment()
        .compile_expression(text)
        .map(drop)
        .map_err(|err| format!("invalid expression `{text}`: {err}"))
}

/// Checks a template's syntax.
pub fn check_template(text: &str) -> Result<(), String> {
    if !is_template(text) {
        return Ok(());
    }
    environment()
        .template_from_str(text)
        .map(drop)
        .map_err(|err| format!("invalid template `{text}`: {err}"))
}

/// Checks every string inside a value.
pub fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::String(text) => check_template(text),
        Value::Array(items) => items.iter().try_for_each(check_value),
        Value::Object(map) => map.values().try_for_each(check_value),
        _ => Ok(()),
    }
}

/// Renders templates and evaluates conditions over one context.
pub struct Templater {
    env: Environment<'static>,
}

impl Default for Templater {
    fn default() -> Self {
        Templater { env: environment() }
    }
}

impl Templater {
    /// Renders every string in `value` (keys are left as they are).
    pub fn render(&self, value: &Value, ctx: &Value) -> Result<Value, String> {
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        self.render_in(value, &ctx)
    }

    fn render_in(&self, value: &Value, ctx: &minijinja::Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => self.render_text(text, ctx)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_in(item, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, item)| {
                        self.render_in(item, ctx)
                            .map(|v| (key.clone(), v))
                            .map_err(|why| format!("{key}: {why}"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    fn render_text(&self, text: &str, ctx: &minijinja::Value) -> Result<Value, String> {
        if !is_template(text) {
            return Ok(Value::String(text.to_owned()));
        }
        if let Some(expr) = whole_expression(text) {
            return self.eval(expr, ctx);
        }
        self.env
            .render_str(text, ctx)
            .map(Value::String)
            .map_err(|err| describe(&err, text))
    }

    fn eval(&self, expr: &str, ctx: &minijinja::Value) -> Result<Value, String> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|err| describe(&err, expr))?;
        let value = compiled.eval(ctx).map_err(|err| describe(&err, expr))?;
        if value.is_undefined() {
            return Err(format!("`{}` is undefined", expr.trim()));
        }
        serde_json::to_value(&value).map_err(|err| format!("`{}`: {err}", expr.trim()))
    }

    /// Whether all conditions hold. An undefined name is an error, not `false`.
    pub fn holds(&self, conditions: &[crate::parse::Expr], ctx: &Value) -> Result<bool, String> {
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        for condition in conditions {
            let compiled = self
                .env
                .compile_expression(&condition.0)
                .map_err(|err| describe(&err, &condition.0))?;
            let value = compiled
                .eval(&ctx)
                .map_err(|err| describe(&err, &condition.0))?;
            if value.is_undefined() {
                return Err(format!("`{}` is undefined", condition.0));
            }
            if !value.is_true() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// minijinja's message with the template text it came from.
fn describe(err: &minijinja::Error, source: &str) -> String {
    format!("{err} in `{}`", source.trim())
}
