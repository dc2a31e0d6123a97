//! Rule tags as people read them: ATT&CK tactics by their (translated) names, techniques by
//! their ids and names in the page's language (`attack.t1003.001` → `T1003.001 · LSASS Memory`
//! / `T1003.001 · Память LSASS`, from [`crate::attack_names`]), groups and software by their ids
//! (`attack.g0016` → `G0016`), other tags as they are.

use crate::i18n::Tr;

pub use crate::attack_names::{
    ATTACK_VERSION, TACTICS, Technique, matrix_column, technique, technique_name,
    technique_tactics, techniques,
};

/// One tag, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagView {
    /// `tactic`, `technique`, `group`, `software` or `other` (a CSS class suffix).
    pub kind: &'static str,
    /// What to show: a technique's id and name (`T1003.001 · LSASS Memory`), a tactic's name,
    /// a group's or software's id.
    pub text: String,
    /// The tag as written in the rule.
    pub raw: String,
}

/// The catalog key of an ATT&CK tactic tag name (`execution`, `stealth`, ...). `defense-evasion`
/// (ATT&CK before v19) keeps its own name; v19 split it into `stealth` and
/// `defense-impairment`.
pub fn tactic_key(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase().replace('-', "_");
    Some(match n.as_str() {
        "reconnaissance" => "tactic.reconnaissance",
        "resource_development" => "tactic.resource_development",
        "initial_access" => "tactic.initial_access",
        "execution" => "tactic.execution",
        "persistence" => "tactic.persistence",
        "privilege_escalation" => "tactic.privilege_escalation",
        "stealth" => "tactic.stealth",
        "defense_impairment" => "tactic.defense_impairment",
        "defense_evasion" => "tactic.defense_evasion",
        "credential_access" => "tactic.credential_access",
        "discovery" => "tactic.discovery",
        "lateral_movement" => "tactic.lateral_movement",
        "collection" => "tactic.collection",
        "command_and_control" => "tactic.command_and_control",
        "exfiltration" => "tactic.exfiltration",
        "impact" => "tactic.impact",
        _ => return None,
    })
}

fn id_like(rest: &str, prefix: char) -> Option<String> {
    let mut chars = rest.chars();
    let first = chars.next()?;
    if !first.eq_ignore_ascii_case(&prefix) {
        return None;
    }
    let tail: String = chars.collect();
    let (main, sub) = tail.split_once('.').unwrap_or((&tail, ""));
    if main.len() != 4 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !sub.is_empty() && (sub.len() != 3 || !sub.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(format!("{}{}", prefix.to_ascii_uppercase(), tail))
}

/// One tag for display.
pub fn tag_view(tr: &Tr, tag: &str) -> TagView {
    let raw = tag.to_owned();
    if let Some(rest) = tag
        .strip_prefix("attack.")
        .or_else(|| tag.strip_prefix("ATTACK."))
    {
        if let Some(key) = tactic_key(rest) {
            return TagView {
                kind: "tactic",
                text: tr.t(key).to_owned(),
                raw,
            };
        }
        if let Some(id) = id_like(rest, 't') {
            let text = match technique_name(&id, tr.lang) {
                Some(name) => format!("{id} · {name}"),
                None => id,
            };
            return TagView {
                kind: "technique",
                text,
                raw,
            };
        }
        for (prefix, kind) in [('g', "group"), ('s', "software")] {
            if let Some(id) = id_like(rest, prefix) {
                return TagView {
                    kind,
                    text: id,
                    raw,
                };
            }
        }
    }
    TagView {
        kind: "other",
        text: tag.to_owned(),
        raw,
    }
}

/// Every tag of a rule for display: tactics first, then techniques, then the rest.
pub fn tag_views(tr: &Tr, tags: &[String]) -> Vec<TagView> {
    let mut out: Vec<TagView> = tags.iter().map(|t| tag_view(tr, t)).collect();
    let rank = |k: &str| match k {
        "tactic" => 0,
        "technique" => 1,
        "group" | "software" => 2,
        _ => 3,
    };
    out.sort_by_key(|t| rank(t.kind));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Lang;

    #[test]
    fn tags() {
        let en = Tr::new(Lang::En, 0);
        let ru = Tr::new(Lang::Ru, 0);
        let t = tag_view(&en, "attack.t1059.001");
        assert_eq!(
            (t.kind, t.text.as_str(), t.raw.as_str()),
            ("technique", "T1059.001 · PowerShell", "attack.t1059.001")
        );
        assert_eq!(
            tag_view(&en, "attack.T1003").text,
            "T1003 · OS Credential Dumping"
        );
        assert_eq!(tag_view(&en, "attack.stealth").text, "Stealth");
        assert_eq!(tag_view(&ru, "attack.stealth").text, "Скрытие активности");
        assert_eq!(
            tag_view(&ru, "attack.defense-impairment").text,
            "Ослабление защиты"
        );
        assert_eq!(tag_view(&ru, "attack.defense-impairment").kind, "tactic");
        assert_eq!(tag_view(&en, "attack.execution").text, "Execution");
        assert_eq!(tag_view(&ru, "attack.execution").text, "Выполнение");
        assert_eq!(
            tag_view(&ru, "attack.defense-evasion").text,
            "Обход средств защиты"
        );
        assert_eq!(tag_view(&en, "attack.g0016").text, "G0016");
        assert_eq!(tag_view(&en, "attack.s0002").kind, "software");
        assert_eq!(tag_view(&en, "attack.t10").kind, "other");
        assert_eq!(tag_view(&en, "cve.2021-44228").text, "cve.2021-44228");
        let sorted = tag_views(
            &en,
            &[
                "cve.x".into(),
                "attack.t1059".into(),
                "attack.execution".into(),
            ],
        );
        let kinds: Vec<_> = sorted.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, ["tactic", "technique", "other"]);
    }

    #[test]
    fn technique_chips_carry_names_in_the_page_language() {
        let en = Tr::new(Lang::En, 0);
        let ru = Tr::new(Lang::Ru, 0);
        let cases = [
            (
                "attack.t1003.001",
                "T1003.001 · LSASS Memory",
                "T1003.001 · Память LSASS",
            ),
            (
                "attack.t1053.005",
                "T1053.005 · Scheduled Task",
                "T1053.005 · Планировщик заданий",
            ),
            (
                "attack.t1003",
                "T1003 · OS Credential Dumping",
                "T1003 · Дамп учётных данных ОС",
            ),
            // a sub-technique the table does not know: its technique's name
            (
                "attack.t1059.999",
                "T1059.999 · Command and Scripting Interpreter",
                "T1059.999 · Интерпретаторы команд и сценариев",
            ),
            // an id the table does not know at all: the id alone
            ("attack.t9999", "T9999", "T9999"),
            ("attack.t9999.001", "T9999.001", "T9999.001"),
        ];
        for (tag, in_en, in_ru) in cases {
            let (e, r) = (tag_view(&en, tag), tag_view(&ru, tag));
            assert_eq!((e.kind, e.text.as_str()), ("technique", in_en), "{tag}");
            assert_eq!((r.kind, r.text.as_str()), ("technique", in_ru), "{tag}");
            assert_eq!((e.raw.as_str(), r.raw.as_str()), (tag, tag));
        }
    }

    /// The rule page (its chips are the alert page's: the same `TagView`s and markup) shows
    /// technique names in the page's language and keeps the raw tag in the title.
    #[test]
    fn rule_page_chips_show_technique_names() {
        use crate::{PageCtx, Role, RuleDetailView, RuleRow};
        let tags = [
            "attack.credential-access",
            "attack.t1003.001",
            "attack.stealth",
            "attack.t1059.999",
        ];
        let cases = [
            (
                Lang::En,
                [
                    "Credential access",
                    "T1003.001 · LSASS Memory",
                    "Stealth",
                    "T1059.999 · Command and Scripting Interpreter",
                ],
            ),
            (
                Lang::Ru,
                [
                    "Получение учётных данных",
                    "T1003.001 · Память LSASS",
                    "Скрытие активности",
                    "T1059.999 · Интерпретаторы команд и сценариев",
                ],
            ),
        ];
        for (lang, texts) in cases {
            let ctx = PageCtx {
                lang,
                username: "petrova".to_owned(),
                role: Role::Viewer,
                csrf_token: "c5rf".to_owned(),
                path_and_query: "/ui/rules/r1".to_owned(),
                flash: None,
                now: 1_795_000_000_000,
            };
            let view = RuleDetailView {
                rule: RuleRow {
                    id: "r1".to_owned(),
                    title: "LSASS access".to_owned(),
                    tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                    ..RuleRow::default()
                },
                ..RuleDetailView::default()
            };
            let html = crate::rule_detail(&ctx, &view);
            for (tag, text) in tags.iter().zip(texts) {
                let kind = if tag.contains(".t1") {
                    "technique"
                } else {
                    "tactic"
                };
                let chip = format!("<li class=\"tag tag-{kind}\" title=\"{tag}\">{text}</li>");
                assert!(html.contains(&chip), "{lang:?}: {chip}");
            }
        }
    }
}
