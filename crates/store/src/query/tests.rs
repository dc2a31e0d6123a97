use super::*;

fn field(path: &str, m: Matcher) -> Expr {
    Expr::Field {
        path: path.split('.').map(str::to_owned).collect(),
        matcher: m,
    }
}

fn pat(s: &str) -> Matcher {
    Matcher::Pattern(Pattern::parse(s))
}

fn ok(q: &str) -> Expr {
    parse(q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .unwrap_or_else(|| panic!("{q}: empty"))
}

fn fails(q: &str) -> QueryError {
    match parse(q) {
        Err(e) => e,
        Ok(x) => panic!("{q}: parsed as {x:?}"),
    }
}

#[test]
fn empty_query_is_none() {
    assert_eq!(parse("").unwrap(), None);
    assert_eq!(parse("   \t ").unwrap(), None);
}

#[test]
fn precedence_and_implicit_and() {
    assert_eq!(
        ok("process.name:powershell.exe AND NOT user.name:SYSTEM"),
        Expr::And(vec![
            field("process.name", pat("powershell.exe")),
            Expr::Not(Box::new(field("user.name", pat("SYSTEM")))),
        ])
    );
    assert_eq!(
        ok("a:1 b:2 OR c:3"),
        Expr::Or(vec![
            Expr::And(vec![field("a", pat("1")), field("b", pat("2"))]),
            field("c", pat("3")),
        ])
    );
    assert_eq!(
        ok("a:1 AND (b:2 OR c:3)"),
        Expr::And(vec![
            field("a", pat("1")),
            Expr::Or(vec![field("b", pat("2")), field("c", pat("3"))]),
        ])
    );
    assert_eq!(
        ok("NOT NOT x"),
        Expr::Not(Box::new(Expr::Not(Box::new(Expr::Text(Pattern::parse(
            "x"
        ))))))
    );
}

#[test]
fn values_wildcards_quotes_numbers() {
    assert_eq!(
        ok(r#"process.command_line:"a b \"c\"""#),
        field("process.command_line", pat(r#"a b "c""#))
    );
    assert_eq!(
        ok(r"file.path:C:\Users\*\x.exe"),
        field("file.path", pat(r"C:\Users\*\x.exe"))
    );
    let Expr::Field {
        matcher: Matcher::Pattern(p),
        ..
    } = ok("a:*mid*")
    else {
        panic!()
    };
    assert_eq!(p.parts, vec!["mid"]);
    assert!(!p.anchored_start && !p.anchored_end);
    assert!(Pattern::parse("abc").is_exact());
    assert!(!Pattern::parse("abc*").is_exact());
    assert_eq!(ok("host.name:*"), field("host.name", Matcher::Exists));
    assert_eq!(ok("x:>5"), field("x", Matcher::Compare(CmpOp::Gt, 5.0)));
    assert_eq!(
        ok("x:<=-2.5"),
        field("x", Matcher::Compare(CmpOp::Le, -2.5))
    );
    assert_eq!(
        ok("@timestamp:>=1e3"),
        field("@timestamp", Matcher::Compare(CmpOp::Ge, 1000.0))
    );
    assert_eq!(ok("url:http://x/y"), field("url", pat("http://x/y")));
    assert_eq!(ok(r#"a:"""#), field("a", pat("")));
    assert_eq!(ok("Привет"), Expr::Text(Pattern::parse("Привет")));
    assert_eq!(
        ok("and or not"),
        Expr::And(vec![
            Expr::Text(Pattern::parse("and")),
            Expr::Text(Pattern::parse("or")),
            Expr::Text(Pattern::parse("not")),
        ])
    );
}

#[test]
fn errors_say_what_and_where() {
    let e = fails("a:1 AND");
    assert_eq!(e.column, 8);
    assert!(e.message.contains("expected a term after AND"), "{e}");

    let e = fails("(a:1 OR b:2");
    assert_eq!((e.column, e.message.as_str()), (1, "'(' is never closed"));

    let e = fails("a:1)");
    assert_eq!(e.column, 4);
    assert!(e.message.contains("')'"), "{e}");

    let e = fails(r#"x "abc"#);
    assert_eq!(
        (e.column, e.message.as_str()),
        (3, "unterminated quoted string")
    );

    let e = fails("process.name: x");
    assert_eq!(e.column, 14);
    assert!(
        e.message.contains("expected a value after 'process.name:'"),
        "{e}"
    );

    let e = fails("x:>abc");
    assert_eq!(e.column, 4);
    assert!(e.message.contains("expected a number after '>'"), "{e}");

    let e = fails("x:>NaN");
    assert_eq!(e.column, 4);

    let e = fails("a';DROP:x");
    assert_eq!(e.column, 2);
    assert!(e.message.contains("invalid character '\\''"), "{e}");

    let e = fails(":x");
    assert_eq!(e.column, 1);
    let e = fails("a..b:x");
    assert!(e.message.contains("empty segment"), "{e}");
    let e = fails("OR a");
    assert_eq!(e.column, 1);
    let e = fails("()");
    assert_eq!((e.column, e.message.as_str()), (1, "empty parentheses"));
    let e = fails("NOT");
    assert_eq!(e.column, 4);
    let e = fails("\"\"");
    assert_eq!(e.column, 1);
    let e = fails("*");
    assert_eq!(e.column, 1);
    // columns count characters, not bytes
    let e = fails("Привет AND");
    assert_eq!(e.column, 11);
}

#[test]
fn limits_are_errors_not_crashes() {
    let deep = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 5),
        ")".repeat(MAX_DEPTH + 5)
    );
    assert!(fails(&deep).message.contains("nests deeper"));
    let nots = format!("{}a", "NOT ".repeat(MAX_DEPTH + 5));
    assert!(fails(&nots).message.contains("nests deeper"));
    let many = vec!["a"; MAX_TERMS + 1].join(" ");
    assert!(fails(&many).message.contains("terms"));
    let long = "a".repeat(MAX_QUERY_CHARS + 1);
    assert!(fails(&long).message.contains("longer"));
    let long_field = format!("{}:x", "f".repeat(MAX_FIELD_CHARS + 1));
    assert!(fails(&long_field).message.contains("longer"));
    // within limits
    let ok_deep = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse(&ok_deep).is_ok());
}

#[test]
fn never_panics_on_arbitrary_input() {
    let alphabet = [
        'a', ':', '"', '(', ')', '*', '\\', ' ', '>', '<', '=', 'N', 'O', 'T', 'R', 'A', 'D', '.',
        'я', '\'', ';', '-',
    ];
    // deterministic pseudo-random strings
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    for _ in 0..20_000 {
        let len = (seed % 24) as usize;
        let mut s = String::new();
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        if let Err(e) = parse(&s) {
            assert!(
                e.column >= 1 && e.column <= s.chars().count() + 1,
                "{s:?}: {e}"
            );
        }
    }
}
