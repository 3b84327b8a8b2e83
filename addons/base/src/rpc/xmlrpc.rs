//! XML-RPC bodies (Python's `xmlrpc.client.loads` and Odoo's `OdooMarshaller`): a
//! `methodCall` read into JSON values, and a `methodResponse` (result or fault) written the
//! way Odoo writes it.
//!
//! Reading is bounded: the body is already bounded by the host (`max_content_length`);
//! values nest at most [`MAX_DEPTH`] levels (checked as they open, before anything is
//! built); a `DOCTYPE` is refused, so no entity is ever declared, and only XML's five
//! entities and character references are expanded (a billion-laughs body fails at its
//! `DOCTYPE`); invalid base64 and malformed numbers or dates are errors naming the value.

use base64::Engine;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Number, Value};

/// How deep values may nest (arrays and structs in one another).
pub const MAX_DEPTH: usize = 64;

/// The longest value shown in an error.
const SHOWN: usize = 40;

/// A token of the body: what the parser looks at.
#[derive(Debug, PartialEq)]
enum Tok {
    Start(String),
    End(String),
    Empty(String),
    Text(String),
    Eof,
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    peeked: Option<Tok>,
}

/// A call: the method's name and its positional parameters.
pub type Call = (String, Vec<Value>);

/// Reads a `methodCall` body. The error says what is wrong, and where when it can.
pub fn parse_call(body: &[u8]) -> Result<Call, String> {
    let mut p = Parser {
        reader: Reader::from_reader(body),
        peeked: None,
    };
    p.expect_start("methodCall")?;
    p.expect_start("methodName")?;
    let method = p.text_until_end("methodName")?;
    let mut params = Vec::new();
    match p.next_tag()? {
        Tok::End(n) if n == "methodCall" => return p.finish(method, params),
        Tok::Empty(n) if n == "params" => {}
        Tok::Start(n) if n == "params" => loop {
            match p.next_tag()? {
                Tok::Start(n) if n == "param" => {
                    p.expect_start("value")?;
                    params.push(p.value(1)?);
                    p.expect_end("param")?;
                }
                Tok::End(n) if n == "params" => break,
                other => return Err(p.unexpected(&other, "<param> or </params>")),
            }
        },
        other => return Err(p.unexpected(&other, "<params> or </methodCall>")),
    }
    p.expect_end("methodCall")?;
    p.finish(method, params)
}

impl Parser<'_> {
    fn finish(mut self, method: String, params: Vec<Value>) -> Result<Call, String> {
        match self.next_tag()? {
            Tok::Eof => Ok((method, params)),
            other => Err(self.unexpected(&other, "the end of the document")),
        }
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn unexpected(&self, tok: &Tok, wanted: &str) -> String {
        let found = match tok {
            Tok::Start(n) => format!("<{n}>"),
            Tok::End(n) => format!("</{n}>"),
            Tok::Empty(n) => format!("<{n}/>"),
            Tok::Text(t) => format!("text {:?}", shown(t)),
            Tok::Eof => "the end of the document".to_owned(),
        };
        format!(
            "expected {wanted}, found {found} at byte {}",
            self.position()
        )
    }

    /// The next token, text included.
    fn next(&mut self) -> Result<Tok, String> {
        if let Some(t) = self.peeked.take() {
            return Ok(t);
        }
        loop {
            let event = self
                .reader
                .read_event()
                .map_err(|e| format!("not well-formed XML at byte {}: {e}", self.position()))?;
            return Ok(match event {
                Event::Start(e) => Tok::Start(name(e.name().as_ref())),
                Event::End(e) => Tok::End(name(e.name().as_ref())),
                Event::Empty(e) => Tok::Empty(name(e.name().as_ref())),
                Event::Text(t) => Tok::Text(
                    t.unescape()
                        .map_err(|e| {
                            format!("undefined entity or bad reference at byte {}: {e} (entities are not expanded)", self.position())
                        })?
                        .into_owned(),
                ),
                Event::CData(t) => Tok::Text(
                    std::str::from_utf8(&t.into_inner())
                        .map_err(|_| "CDATA is not UTF-8".to_owned())?
                        .to_owned(),
                ),
                Event::DocType(_) => {
                    return Err(
                        "a DOCTYPE is not allowed in an XML-RPC body (entities are not expanded)"
                            .to_owned(),
                    )
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
                Event::Eof => Tok::Eof,
            });
        }
    }

    /// The next token that is not blank text.
    fn next_tag(&mut self) -> Result<Tok, String> {
        loop {
            match self.next()? {
                Tok::Text(t) if t.trim().is_empty() => continue,
                t => return Ok(t),
            }
        }
    }

    fn expect_start(&mut self, tag: &str) -> Result<(), String> {
        match self.next_tag()? {
            Tok::Start(n) if n == tag => Ok(()),
            other => Err(self.unexpected(&other, &format!("<{tag}>"))),
        }
    }

    fn expect_end(&mut self, tag: &str) -> Result<(), String> {
        match self.next_tag()? {
            Tok::End(n) if n == tag => Ok(()),
            other => Err(self.unexpected(&other, &format!("</{tag}>"))),
        }
    }

    /// The text up to `</tag>` (none: empty).
    fn text_until_end(&mut self, tag: &str) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.next()? {
                Tok::Text(t) => text.push_str(&t),
                Tok::End(n) if n == tag => return Ok(text),
                other => return Err(self.unexpected(&other, &format!("text or </{tag}>"))),
            }
        }
    }

    /// A value, after its `<value>` (consumed up to its `</value>`), at nesting `depth`.
    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "values nested deeper than {MAX_DEPTH} levels at byte {}",
                self.position()
            ));
        }
        let mut text = String::new();
        loop {
            match self.next()? {
                Tok::Text(t) => text.push_str(&t),
                Tok::End(n) if n == "value" => return Ok(Value::String(text)),
                Tok::Empty(n) => {
                    let v =
                        empty_typed(&n).ok_or_else(|| format!("unknown XML-RPC type <{n}/>"))?;
                    self.expect_end("value")?;
                    return Ok(v);
                }
                Tok::Start(n) => {
                    if !text.trim().is_empty() {
                        return Err(format!("text {:?} before <{n}> in a <value>", shown(&text)));
                    }
                    let v = self.typed(&n, depth)?;
                    self.expect_end("value")?;
                    return Ok(v);
                }
                other => return Err(self.unexpected(&other, "a value")),
            }
        }
    }

    /// The content of `<tag>` (opened) up to its end.
    fn typed(&mut self, tag: &str, depth: usize) -> Result<Value, String> {
        Ok(match tag {
            "array" => {
                let mut items = Vec::new();
                match self.next_tag()? {
                    Tok::Empty(n) if n == "data" => {}
                    Tok::Start(n) if n == "data" => loop {
                        match self.next_tag()? {
                            Tok::Start(n) if n == "value" => items.push(self.value(depth + 1)?),
                            Tok::End(n) if n == "data" => break,
                            other => return Err(self.unexpected(&other, "<value> or </data>")),
                        }
                    },
                    other => return Err(self.unexpected(&other, "<data>")),
                }
                self.expect_end("array")?;
                Value::Array(items)
            }
            "struct" => {
                let mut map = Map::new();
                loop {
                    match self.next_tag()? {
                        Tok::Start(n) if n == "member" => {
                            self.expect_start("name")?;
                            let key = self.text_until_end("name")?;
                            self.expect_start("value")?;
                            let v = self.value(depth + 1)?;
                            self.expect_end("member")?;
                            map.insert(key, v);
                        }
                        Tok::End(n) if n == "struct" => break,
                        other => return Err(self.unexpected(&other, "<member> or </struct>")),
                    }
                }
                Value::Object(map)
            }
            "nil" => {
                self.expect_end("nil")?;
                Value::Null
            }
            scalar => {
                let text = self.text_until_end(scalar)?;
                scalar_value(scalar, &text)?
            }
        })
    }
}

fn name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn shown(text: &str) -> &str {
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The value of an empty element `<tag/>`.
fn empty_typed(tag: &str) -> Option<Value> {
    Some(match tag {
        "nil" => Value::Null,
        "string" => Value::String(String::new()),
        "array" => Value::Array(Vec::new()),
        "struct" => Value::Object(Map::new()),
        "base64" => Value::String(String::new()),
        _ => return None,
    })
}

/// A scalar of type `tag` from its text, as Python reads it.
fn scalar_value(tag: &str, text: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("invalid {what} in <{tag}>: {:?}", shown(text));
    Ok(match tag {
        "int" | "i4" | "i8" | "i1" | "i2" | "biginteger" => Value::Number(
            text.trim()
                .parse::<i64>()
                .map_err(|_| bad("integer (64 bits at most)"))?
                .into(),
        ),
        "boolean" => match text.trim() {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            _ => return Err(bad("boolean (0 or 1)")),
        },
        "double" | "float" => {
            let f: f64 = text.trim().parse().map_err(|_| bad("number"))?;
            Value::Number(Number::from_f64(f).ok_or_else(|| bad("finite number"))?)
        }
        "string" => Value::String(text.to_owned()),
        "base64" => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                .map_err(|e| format!("invalid base64 in <base64> ({e}): {:?}", shown(text)))?;
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        "dateTime.iso8601" => Value::String(datetime(text.trim()).ok_or_else(|| bad("date"))?),
        other => return Err(format!("unknown XML-RPC type <{other}>")),
    })
}

/// `YYYYMMDDTHH:MM:SS` (or with dashes) as Odoo's datetime string `YYYY-MM-DD HH:MM:SS`.
fn datetime(text: &str) -> Option<String> {
    let (date, time) = text.split_once('T')?;
    let date: String = date.chars().filter(|c| *c != '-').collect();
    let time = time.get(..8)?;
    let ok = date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && time.len() == 8
        && time.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| format!("{}-{}-{} {time}", &date[..4], &date[4..6], &date[6..]))
}

/// Why a value cannot be written (Python's exception class and message).
pub type DumpError = (&'static str, String);

/// A `methodResponse` with one result, as Odoo 18 writes it.
pub fn dumps_result(result: &Value) -> Result<String, DumpError> {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n");
    dump(result, &mut out)?;
    out.push_str("</param>\n</params>\n\n</methodResponse>\n");
    Ok(out)
}

/// A `methodResponse` fault with `code` (an `<int>` or a `<string>`) and `message`.
pub fn dumps_fault(code: FaultCode<'_>, message: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n");
    match code {
        FaultCode::Int(n) => out.push_str(&format!("<value><int>{n}</int></value>\n")),
        FaultCode::Str(s) => dump_str(s, &mut out),
    }
    out.push_str("</member>\n<member>\n<name>faultString</name>\n");
    dump_str(message, &mut out);
    out.push_str("</member>\n</struct></value>\n</fault>\n\n</methodResponse>\n");
    out
}

/// A fault's code: `/xmlrpc/2` gives integers, `/xmlrpc` strings.
#[derive(Debug, Clone, Copy)]
pub enum FaultCode<'a> {
    /// `/xmlrpc/2`.
    Int(i32),
    /// `/xmlrpc`.
    Str(&'a str),
}

/// One value, as Python's `Marshaller` with Odoo's changes (`allow_none=False`).
fn dump(v: &Value, out: &mut String) -> Result<(), DumpError> {
    match v {
        Value::Null => {
            return Err((
                "builtins.TypeError",
                "cannot marshal None unless allow_none is enabled".into(),
            ))
        }
        Value::Bool(b) => {
            out.push_str(&format!("<value><boolean>{}</boolean></value>\n", *b as u8))
        }
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if i32::try_from(i).is_ok() => {
                out.push_str(&format!("<value><int>{i}</int></value>\n"))
            }
            (Some(_), _) | (None, Some(_)) => {
                return Err((
                    "builtins.OverflowError",
                    "int exceeds XML-RPC limits".into(),
                ))
            }
            (None, None) => dump_float(n.as_f64().unwrap_or(0.0), out),
        },
        Value::String(s) => dump_str(s, out),
        Value::Array(items) => {
            out.push_str("<value><array><data>\n");
            for item in items {
                dump(item, out)?;
            }
            out.push_str("</data></array></value>\n");
        }
        Value::Object(map) => {
            out.push_str("<value><struct>\n");
            for (k, item) in map {
                out.push_str("<member>\n<name>");
                escape_into(k, out);
                out.push_str("</name>\n");
                dump(item, out)?;
                out.push_str("</member>\n");
            }
            out.push_str("</struct></value>\n");
        }
    }
    Ok(())
}

/// A float as Python's `repr` (`1.5`, `1e+20`).
fn dump_float(f: f64, out: &mut String) {
    out.push_str(&format!("<value><double>{f:?}</double></value>\n"));
}

fn dump_str(s: &str, out: &mut String) {
    out.push_str("<value><string>");
    escape_into(s, out);
    out.push_str("</string></value>\n");
}

/// XML escaping of `&`, `<`, `>`, after removing the control characters XML 1.0 forbids
/// (0x00-0x1F but tab, newline and carriage return), as Odoo's `dump_unicode`.
fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_reads_as_python_does() {
        let body = br#"<?xml version='1.0'?>
<methodCall><methodName>execute_kw</methodName><params>
<param><value><string>db</string></value></param>
<param><value><int>2</int></value></param>
<param><value>pw &amp; more</value></param>
<param><value><array><data><value><i8>5000000000</i8></value><value><nil/></value><value><boolean>1</boolean></value></data></array></value></param>
<param><value><struct><member><name>a</name><value><double>1.5</double></value></member></struct></value></param>
<param><value><dateTime.iso8601>20240102T03:04:05</dateTime.iso8601></value></param>
<param><value><base64>aGVs
bG8=</base64></value></param>
</params></methodCall>"#;
        let (method, params) = parse_call(body).unwrap();
        assert_eq!(method, "execute_kw");
        assert_eq!(
            params,
            vec![
                json!("db"),
                json!(2),
                json!("pw & more"),
                json!([5000000000i64, null, true]),
                json!({"a": 1.5}),
                json!("2024-01-02 03:04:05"),
                json!("aGVsbG8="),
            ]
        );
    }

    #[test]
    fn hostile_bodies_are_refused_with_a_reason() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><methodCall><methodName>&lol2;</methodName></methodCall>"#;
        assert!(parse_call(laughs).unwrap_err().contains("DOCTYPE"));
        let undeclared = b"<methodCall><methodName>&lol;</methodName></methodCall>";
        assert!(parse_call(undeclared).unwrap_err().contains("entit"));
        let deep = format!(
            "<methodCall><methodName>m</methodName><params><param><value>{}",
            "<array><data><value>".repeat(100)
        );
        assert!(parse_call(deep.as_bytes())
            .unwrap_err()
            .contains("nested deeper than 64"));
        let b64 = b"<methodCall><methodName>m</methodName><params><param><value><base64>@@@</base64></value></param></params></methodCall>";
        assert!(parse_call(b64).unwrap_err().contains("invalid base64"));
        assert!(parse_call(b"<methodCall>").is_err());
        assert!(parse_call(b"").is_err());
        assert!(parse_call(b"<methodCall><methodName>m</methodName></methodCall><x/>").is_err());
    }

    #[test]
    fn responses_are_written_as_odoo_writes_them() {
        assert_eq!(
            dumps_result(&json!({"a": [1, true, "x<&>\u{1}y"]})).unwrap(),
            "<?xml version=\"1.0\"?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n<member>\n<name>a</name>\n<value><array><data>\n<value><int>1</int></value>\n<value><boolean>1</boolean></value>\n<value><string>x&lt;&amp;&gt;y</string></value>\n</data></array></value>\n</member>\n</struct></value>\n</param>\n</params>\n\n</methodResponse>\n"
        );
        assert_eq!(
            dumps_result(&json!(null)).unwrap_err().0,
            "builtins.TypeError"
        );
        assert_eq!(
            dumps_result(&json!(1u64 << 40)).unwrap_err().0,
            "builtins.OverflowError"
        );
        assert_eq!(
            dumps_fault(FaultCode::Int(3), "Access Denied"),
            "<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>3</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>Access Denied</string></value>\n</member>\n</struct></value>\n</fault>\n\n</methodResponse>\n"
        );
    }
}
