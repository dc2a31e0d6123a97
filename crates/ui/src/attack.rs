//! Rule tags as people read them: ATT&CK tactics by their (translated) names, techniques,
//! groups and software by their ids (`attack.t1059.001` → `T1059.001`), other tags as they are.

use crate::i18n::Tr;

/// One tag, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagView {
    /// `tactic`, `technique`, `group`, `software` or `other` (a CSS class suffix).
    pub kind: &'static str,
    /// What to show.
    pub text: String,
    /// The tag as written in the rule.
    pub raw: String,
}

/// The catalog key of an ATT&CK tactic tag name (`execution`, `defense-evasion`, ...).
pub fn tactic_key(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase().replace('-', "_");
    Some(match n.as_str() {
        "reconnaissance" => "tactic.reconnaissance",
        "resource_development" => "tactic.resource_development",
        "initial_access" => "tactic.initial_access",
        "execution" => "tactic.execution",
        "persistence" => "tactic.persistence",
        "privilege_escalation" => "tactic.privilege_escalation",
        "defense_evasion" | "defense_impairment" => "tactic.defense_evasion",
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
        for (prefix, kind) in [('t', "technique"), ('g', "group"), ('s', "software")] {
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
        assert_eq!((t.kind, t.text.as_str()), ("technique", "T1059.001"));
        assert_eq!(tag_view(&en, "attack.T1003").text, "T1003");
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
}
