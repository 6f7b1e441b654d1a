//! A strict reader for the XML this crate writes (the JUnit report): it checks
//! well-formedness as XML 1.0 defines it for the subset used — an optional `<?xml …?>`
//! declaration, elements, attributes in quotes, text, the five predefined entities and
//! character references — and refuses everything else (comments, CDATA, DOCTYPE,
//! processing instructions), which the writer never emits. `merge --junit` reads back
//! what it wrote before writing it, so an escaping bug is an error, not a report a CI
//! dashboard silently drops.

use std::collections::BTreeMap;

/// One element: its name, attributes (unescaped), child elements and text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    /// The element's name.
    pub name: String,
    /// Its attributes, unescaped.
    pub attrs: BTreeMap<String, String>,
    /// Its child elements.
    pub children: Vec<Element>,
    /// Its text (concatenated, unescaped).
    pub text: String,
}

impl Element {
    /// The attribute `name`, or "".
    pub fn attr(&self, name: &str) -> &str {
        self.attrs.get(name).map_or("", String::as_str)
    }

    /// The child elements named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses `doc`, or says where it is not well-formed (byte offset).
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut p = Reader { s: doc, at: 0 };
    if p.rest().starts_with("<?xml") {
        let end = p
            .rest()
            .find("?>")
            .ok_or_else(|| p.err("unterminated XML declaration"))?;
        p.at += end + 2;
    }
    p.space();
    let root = p.element()?;
    p.space();
    if p.at != doc.len() {
        return Err(p.err("content after the root element"));
    }
    Ok(root)
}

struct Reader<'a> {
    s: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn err(&self, what: &str) -> String {
        format!("not well-formed XML at byte {}: {what}", self.at)
    }

    fn space(&mut self) {
        let n = self.rest().len()
            - self
                .rest()
                .trim_start_matches([' ', '\t', '\n', '\r'])
                .len();
        self.at += n;
    }

    fn eat(&mut self, token: &str) -> Result<(), String> {
        if self.rest().starts_with(token) {
            self.at += token.len();
            Ok(())
        } else {
            Err(self.err(&format!("expected {token:?}")))
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
        let ok = |c: char| ok_first(c) || c.is_ascii_digit() || c == '-' || c == '.';
        let rest = self.rest();
        if !rest.starts_with(ok_first) {
            return Err(self.err("expected a name"));
        }
        let len = rest.find(|c: char| !ok(c)).unwrap_or(rest.len());
        let name = rest[..len].to_string();
        self.at += len;
        Ok(name)
    }

    /// Text up to the next `<` (or `stop`), references resolved.
    fn chars(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.rest().chars().next() {
            if c == '<' || Some(c) == stop {
                break;
            }
            if c == '&' {
                out.push(self.reference()?);
                continue;
            }
            if !super::junit::allowed_in_xml(c) {
                return Err(self.err(&format!("character {c:?} is not allowed in XML 1.0")));
            }
            if stop.is_none() && self.rest().starts_with("]]>") {
                return Err(self.err("\"]]>\" in text"));
            }
            out.push(c);
            self.at += c.len_utf8();
        }
        Ok(out)
    }

    fn reference(&mut self) -> Result<char, String> {
        let end = self
            .rest()
            .find(';')
            .filter(|&e| e <= 12)
            .ok_or_else(|| self.err("a bare '&'"))?;
        let body = &self.rest()[1..end];
        let c = match body {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let code = if let Some(hex) = body.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = body.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .filter(|c| super::junit::allowed_in_xml(*c))
            }
        };
        let c = c.ok_or_else(|| self.err(&format!("unknown or invalid reference &{body};")))?;
        self.at += end + 1;
        Ok(c)
    }

    fn element(&mut self) -> Result<Element, String> {
        self.eat("<")?;
        let mut el = Element {
            name: self.name()?,
            ..Element::default()
        };
        loop {
            let before = self.at;
            self.space();
            if self.rest().starts_with("/>") {
                self.at += 2;
                return Ok(el);
            }
            if self.rest().starts_with('>') {
                self.at += 1;
                break;
            }
            if self.at == before {
                return Err(self.err("expected white space before an attribute"));
            }
            let key = self.name()?;
            self.space();
            self.eat("=")?;
            self.space();
            let quote = self
                .rest()
                .chars()
                .next()
                .filter(|q| *q == '"' || *q == '\'')
                .ok_or_else(|| self.err("an attribute value must be quoted"))?;
            self.at += 1;
            let value = self.chars(Some(quote))?;
            if self.rest().starts_with('<') {
                return Err(self.err("'<' in an attribute value"));
            }
            self.eat(&quote.to_string())?;
            if el.attrs.insert(key.clone(), value).is_some() {
                return Err(self.err(&format!("attribute {key:?} twice")));
            }
        }
        loop {
            let text = self.chars(None)?;
            el.text.push_str(&text);
            if self.rest().starts_with("</") {
                self.at += 2;
                let end = self.name()?;
                if end != el.name {
                    return Err(self.err(&format!("</{end}> closes <{}>", el.name)));
                }
                self.space();
                self.eat(">")?;
                return Ok(el);
            }
            if self.rest().is_empty() {
                return Err(self.err(&format!("<{}> is never closed", el.name)));
            }
            if self.rest().starts_with("<!") || self.rest().starts_with("<?") {
                return Err(self.err("comments, CDATA and processing instructions are not read"));
            }
            el.children.push(self.element()?);
        }
    }
}
