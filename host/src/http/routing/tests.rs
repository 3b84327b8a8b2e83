//! Tests of the rules, the converters and the route table's matching.

use std::borrow::Cow;

use super::path::{canonical_path, unescape_canonical};
use super::*;

fn table(routes: &[(&str, &[&str], bool)]) -> RouteTable<usize> {
    let mut t = RouteTable::new();
    for (i, (pattern, methods, cors)) in routes.iter().enumerate() {
        let methods = methods.iter().map(|m| m.to_string()).collect();
        t.add(Rule::parse(pattern).unwrap(), methods, *cors, i);
    }
    t
}

fn found(m: Match<'_, usize>) -> (usize, Vec<(String, ParamValue)>) {
    match m {
        Match::Found { payload, args, .. } => (*payload, args),
        other => panic!("expected a match, got {other:?}"),
    }
}

fn arg<'a>(args: &'a [(String, ParamValue)], name: &str) -> &'a ParamValue {
    &args.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn parse_errors() {
    assert_eq!(
        Rule::parse("").unwrap_err(),
        RuleError::NoLeadingSlash("".into())
    );
    assert!(matches!(
        Rule::parse("web/x"),
        Err(RuleError::NoLeadingSlash(_))
    ));
    assert!(matches!(
        Rule::parse("/a/<int:id"),
        Err(RuleError::Unclosed(_))
    ));
    assert!(matches!(Rule::parse("/a/<>"), Err(RuleError::EmptyName(_))));
    assert!(matches!(
        Rule::parse("/a/<int:>"),
        Err(RuleError::EmptyName(_))
    ));
    assert!(matches!(
        Rule::parse("/a/<int:1x>"),
        Err(RuleError::InvalidName(_))
    ));
    assert!(matches!(
        Rule::parse("/a/<model('res.partner'):p>"),
        Err(RuleError::ConverterArguments(_))
    ));
    assert!(matches!(
        Rule::parse("/a/<model:p>"),
        Err(RuleError::UnknownConverter(c)) if c == "model"
    ));
    assert!(matches!(
        Rule::parse("/a/<x>/<int:x>"),
        Err(RuleError::DuplicateName(_))
    ));
    let msg = RuleError::UnknownConverter("uuid".into()).to_string();
    assert!(msg.contains("uuid") && msg.contains("string, int, float, path"));
}

#[test]
fn parse_shapes() {
    let r = Rule::parse("/web/content/<int:id>").unwrap();
    assert!(!r.is_static());
    assert_eq!(r.pattern(), "/web/content/<int:id>");
    assert_eq!(r.param_names().collect::<Vec<_>>(), ["id"]);
    let r = Rule::parse("/web/login").unwrap();
    assert!(r.is_static());
    let r = Rule::parse("/a/<name>/<string:b>/<path:rest>").unwrap();
    assert_eq!(r.param_names().collect::<Vec<_>>(), ["name", "b", "rest"]);
}

#[test]
fn converters() {
    let t = table(&[
        ("/i/<int:id>", &[], false),
        ("/f/<float:x>", &[], false),
        ("/s/<string:name>", &[], false),
        ("/b/<name>", &[], false),
        ("/p/<path:rest>", &[], false),
    ]);
    let (_, a) = found(t.matches("GET", "/i/42"));
    assert_eq!(arg(&a, "id"), &ParamValue::Int(42));
    let (_, a) = found(t.matches("GET", "/i/-7"));
    assert_eq!(arg(&a, "id"), &ParamValue::Int(-7));
    assert!(matches!(t.matches("GET", "/i/4x"), Match::NotFound));
    assert!(matches!(t.matches("GET", "/i/"), Match::NotFound));
    assert!(matches!(
        t.matches("GET", "/i/99999999999999999999999"),
        Match::NotFound
    ));
    let (_, a) = found(t.matches("GET", "/f/1.5"));
    assert_eq!(arg(&a, "x"), &ParamValue::Float(1.5));
    assert!(matches!(t.matches("GET", "/f/1"), Match::NotFound));
    assert!(matches!(t.matches("GET", "/f/-1.5"), Match::NotFound));
    let (_, a) = found(t.matches("GET", "/s/hello"));
    assert_eq!(arg(&a, "name"), &ParamValue::Str("hello".into()));
    assert!(matches!(t.matches("GET", "/s/a/b"), Match::NotFound));
    let (_, a) = found(t.matches("GET", "/b/x"));
    assert_eq!(arg(&a, "name"), &ParamValue::Str("x".into()));
    let (_, a) = found(t.matches("GET", "/p/a/b/c.js"));
    assert_eq!(arg(&a, "rest"), &ParamValue::Str("a/b/c.js".into()));
    assert!(matches!(t.matches("GET", "/p/"), Match::NotFound));
    assert!(matches!(t.matches("GET", "/p//x"), Match::NotFound));
}

#[test]
fn mixed_segments_like_odoo_image_routes() {
    let t = table(&[(
        "/web/image/<int:id>-<string:unique>/<int:width>x<int:height>/<string:filename>",
        &[],
        false,
    )]);
    let (_, a) = found(t.matches("GET", "/web/image/12-abc-def/64x32/logo.png"));
    assert_eq!(arg(&a, "id"), &ParamValue::Int(12));
    assert_eq!(arg(&a, "unique"), &ParamValue::Str("abc-def".into()));
    assert_eq!(arg(&a, "width"), &ParamValue::Int(64));
    assert_eq!(arg(&a, "height"), &ParamValue::Int(32));
    assert_eq!(arg(&a, "filename"), &ParamValue::Str("logo.png".into()));
    let names: Vec<_> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["id", "unique", "width", "height", "filename"]);
}

#[test]
fn static_beats_dynamic_and_first_added_wins() {
    let t = table(&[
        ("/web/<string:x>", &[], false),
        ("/web/login", &[], false),
        ("/web/<string:y>", &[], false),
        ("/web/login", &[], false),
    ]);
    assert_eq!(found(t.matches("GET", "/web/login")).0, 1);
    let (p, a) = found(t.matches("GET", "/web/other"));
    assert_eq!(p, 0);
    assert_eq!(a[0].0, "x");
}

#[test]
fn bucket_and_wild_rules_keep_insertion_order() {
    let t = table(&[
        ("/<string:a>/x", &[], false),
        ("/web/<string:b>", &[], false),
        ("/<path:all>", &[], false),
    ]);
    // Both the wild rule 0 and the bucket rule 1 match: 0 was added first.
    assert_eq!(found(t.matches("GET", "/web/x")).0, 0);
    assert_eq!(found(t.matches("GET", "/web/y")).0, 1);
    assert_eq!(found(t.matches("GET", "/other/y/z")).0, 2);
    assert_eq!(found(t.matches("GET", "/web")).0, 2);
}

#[test]
fn not_found_and_method_not_allowed() {
    let t = table(&[
        ("/a", &["POST"], false),
        ("/a", &["put"], false),
        ("/b/<int:id>", &["GET"], false),
        ("/c", &[], false),
    ]);
    assert!(matches!(t.matches("GET", "/nowhere"), Match::NotFound));
    match t.matches("GET", "/a") {
        Match::MethodNotAllowed { allowed } => assert_eq!(allowed, ["POST", "PUT"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(found(t.matches("PUT", "/a")).0, 1);
    match t.matches("DELETE", "/b/3") {
        Match::MethodNotAllowed { allowed } => assert_eq!(allowed, ["GET", "HEAD"]),
        other => panic!("{other:?}"),
    }
    // HEAD comes with GET; an empty method list accepts anything.
    assert_eq!(found(t.matches("HEAD", "/b/3")).0, 2);
    assert_eq!(found(t.matches("PATCH", "/c")).0, 3);
    // Methods are case-sensitive on the wire.
    assert!(matches!(
        t.matches("post", "/a"),
        Match::MethodNotAllowed { .. }
    ));
}

#[test]
fn method_mismatch_falls_through_to_a_later_rule() {
    let t = table(&[
        ("/x/static", &["POST"], false),
        ("/x/<string:n>", &["GET"], false),
    ]);
    let (p, a) = found(t.matches("GET", "/x/static"));
    assert_eq!((p, a[0].1.clone()), (1, ParamValue::Str("static".into())));
    assert_eq!(found(t.matches("POST", "/x/static")).0, 0);
}

#[test]
fn options_added_only_with_cors() {
    let t = table(&[("/cors", &["POST"], true), ("/plain", &["POST"], false)]);
    assert_eq!(found(t.matches("OPTIONS", "/cors")).0, 0);
    assert!(matches!(
        t.matches("OPTIONS", "/plain"),
        Match::MethodNotAllowed { .. }
    ));
    let (_, methods, _) = t.iter().next().unwrap();
    assert_eq!(methods, ["OPTIONS", "POST"]);
    // Any-method routes stay "any".
    let t = table(&[("/any", &[], true)]);
    assert!(t.iter().next().unwrap().1.is_empty());
}

#[test]
fn trailing_slash_is_insignificant_on_both_sides() {
    let t = table(&[
        ("/a", &[], false),
        ("/b/", &[], false),
        ("/c/<int:id>", &[], false),
        ("/", &[], false),
    ]);
    assert_eq!(found(t.matches("GET", "/a")).0, 0);
    assert_eq!(found(t.matches("GET", "/a/")).0, 0);
    assert_eq!(found(t.matches("GET", "/b")).0, 1);
    assert_eq!(found(t.matches("GET", "/b/")).0, 1);
    assert_eq!(found(t.matches("GET", "/c/5/")).0, 2);
    assert_eq!(found(t.matches("GET", "/")).0, 3);
    // Only one slash is insignificant, and slashes are never merged.
    assert!(matches!(t.matches("GET", "/a//"), Match::NotFound));
    assert!(matches!(t.matches("GET", "//a"), Match::NotFound));
    assert!(matches!(t.matches("GET", ""), Match::NotFound));
}

#[test]
fn percent_decoding() {
    let t = table(&[
        ("/web/login", &[], false),
        ("/shop/<string:name>", &[], false),
        ("/files/<path:rest>", &[], false),
        ("/100%", &[], false),
    ]);
    // Encoded ordinary characters match static text.
    assert_eq!(found(t.matches("GET", "/web/%6Cogin")).0, 0);
    // `/web%2flogin` is one segment, not `/web/login`.
    assert!(matches!(t.matches("GET", "/web%2flogin"), Match::NotFound));
    // An encoded slash stays inside a string value.
    let (_, a) = found(t.matches("GET", "/shop/a%2Fb"));
    assert_eq!(arg(&a, "name"), &ParamValue::Str("a/b".into()));
    let (_, a) = found(t.matches("GET", "/shop/caf%C3%A9%20au%25lait"));
    assert_eq!(arg(&a, "name"), &ParamValue::Str("café au%lait".into()));
    let (_, a) = found(t.matches("GET", "/files/x%2Fy/z"));
    assert_eq!(arg(&a, "rest"), &ParamValue::Str("x/y/z".into()));
    // A literal '%' in a rule, sent encoded or bare.
    assert_eq!(found(t.matches("GET", "/100%25")).0, 3);
    assert_eq!(found(t.matches("GET", "/100%")).0, 3);
    // Invalid UTF-8 is replaced, not rejected.
    let (_, a) = found(t.matches("GET", "/shop/%FF"));
    assert_eq!(arg(&a, "name"), &ParamValue::Str("\u{FFFD}".into()));
}

#[test]
fn canonical_form() {
    assert!(matches!(canonical_path("/a/b"), Cow::Borrowed("/a/b")));
    assert_eq!(canonical_path("/a%2fb%2Fc"), "/a%2Fb%2Fc");
    assert_eq!(canonical_path("/%41%zz%"), "/A%25zz%25");
    assert_eq!(unescape_canonical("a%2Fb%25"), "a/b%");
}

#[test]
fn to_json_and_display() {
    assert_eq!(ParamValue::Int(-3).to_json(), serde_json::json!(-3));
    assert_eq!(
        ParamValue::Str("x".into()).to_json(),
        serde_json::json!("x")
    );
    assert_eq!(ParamValue::Float(2.5).to_json(), serde_json::json!(2.5));
    assert_eq!(
        ParamValue::Float(f64::NAN).to_json(),
        serde_json::Value::Null
    );
    assert_eq!(ParamValue::Int(7).to_string(), "7");
    assert_eq!(ParamValue::Str("s".into()).to_string(), "s");
}

#[test]
fn many_routes() {
    let mut t = RouteTable::new();
    for i in 0..500 {
        t.add(
            Rule::parse(&format!("/m{i}/static")).unwrap(),
            vec![],
            false,
            i,
        );
        t.add(
            Rule::parse(&format!("/m{i}/<int:id>")).unwrap(),
            vec!["GET".into()],
            false,
            1000 + i,
        );
    }
    assert_eq!(t.len(), 1000);
    assert!(!t.is_empty());
    assert_eq!(found(t.matches("GET", "/m250/static")).0, 250);
    let (p, a) = found(t.matches("GET", "/m499/12"));
    assert_eq!((p, &a[0].1), (1499, &ParamValue::Int(12)));
    assert!(matches!(t.matches("GET", "/m500/1"), Match::NotFound));
}
