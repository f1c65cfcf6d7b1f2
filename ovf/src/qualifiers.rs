//! OVF property types and qualifiers (`MinLen(6) MaxLen(128)`, `MinValue(1)`,
//! `ValueMap{"a","b"}`), and checking a value against them.
//!
//! Hand-written: the qualifier syntax is a few tokens from CIM/DSP0243 that no crate parses.

use std::fmt;

/// The type of a property (`ovf:type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyType {
    String,
    Boolean,
    /// VMware's `int` (32-bit signed).
    Int,
    /// VMware's `real`.
    Real,
    Uint8,
    Sint8,
    Uint16,
    Sint16,
    Uint32,
    Sint32,
    Uint64,
    Sint64,
    Real32,
    Real64,
}

crate::names::named_enum!(PropertyType, "type", {
    String => "string",
    Boolean => "boolean",
    Int => "int",
    Real => "real",
    Uint8 => "uint8",
    Sint8 => "sint8",
    Uint16 => "uint16",
    Sint16 => "sint16",
    Uint32 => "uint32",
    Sint32 => "sint32",
    Uint64 => "uint64",
    Sint64 => "sint64",
    Real32 => "real32",
    Real64 => "real64",
});

impl PropertyType {
    /// The inclusive range of an integer type; `None` for the others.
    pub fn integer_range(self) -> Option<(i128, i128)> {
        Some(match self {
            PropertyType::Int | PropertyType::Sint32 => (i32::MIN.into(), i32::MAX.into()),
            PropertyType::Uint8 => (0, u8::MAX.into()),
            PropertyType::Sint8 => (i8::MIN.into(), i8::MAX.into()),
            PropertyType::Uint16 => (0, u16::MAX.into()),
            PropertyType::Sint16 => (i16::MIN.into(), i16::MAX.into()),
            PropertyType::Uint32 => (0, u32::MAX.into()),
            PropertyType::Uint64 => (0, u64::MAX.into()),
            PropertyType::Sint64 => (i64::MIN.into(), i64::MAX.into()),
            _ => return None,
        })
    }

    fn is_real(self) -> bool {
        matches!(
            self,
            PropertyType::Real | PropertyType::Real32 | PropertyType::Real64
        )
    }

    /// Checks that `value` is a valid literal of this type. Booleans accept `true`/`false` in
    /// any case (vCenter sends `True`, ESXi `true`).
    pub fn check(self, value: &str) -> Result<(), String> {
        if self == PropertyType::Boolean {
            return if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                Ok(())
            } else {
                Err("expected `true` or `false`".to_string())
            };
        }
        if let Some((min, max)) = self.integer_range() {
            return match value.parse::<i128>() {
                Ok(n) if n >= min && n <= max => Ok(()),
                Ok(_) => Err(format!("expected an integer from {min} to {max}")),
                Err(_) => Err("expected an integer".to_string()),
            };
        }
        if self.is_real() {
            return match value.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(()),
                _ => Err("expected a number".to_string()),
            };
        }
        Ok(())
    }
}

/// One qualifier of `ovf:qualifiers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// Minimum length of a string, in characters.
    MinLen(u64),
    /// Maximum length of a string, in characters.
    MaxLen(u64),
    /// Minimum of a number.
    MinValue(i128),
    /// Maximum of a number.
    MaxValue(i128),
    /// The allowed values.
    ValueMap(Vec<String>),
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::MinLen(n) => write!(f, "MinLen({n})"),
            Qualifier::MaxLen(n) => write!(f, "MaxLen({n})"),
            Qualifier::MinValue(n) => write!(f, "MinValue({n})"),
            Qualifier::MaxValue(n) => write!(f, "MaxValue({n})"),
            Qualifier::ValueMap(values) => {
                f.write_str("ValueMap{")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "\"{v}\"")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Qualifier {
    /// Whether this qualifier makes sense on a property of type `t`.
    pub fn applies_to(&self, t: PropertyType) -> bool {
        match self {
            Qualifier::MinLen(_) | Qualifier::MaxLen(_) => t == PropertyType::String,
            Qualifier::MinValue(_) | Qualifier::MaxValue(_) => {
                t.integer_range().is_some() || t.is_real()
            }
            Qualifier::ValueMap(_) => true,
        }
    }

    /// Checks a value (already valid for its type) against this qualifier.
    pub fn check(&self, value: &str) -> Result<(), String> {
        match self {
            Qualifier::MinLen(n) => {
                let len = value.chars().count() as u64;
                if len < *n {
                    return Err(format!("{len} characters, at least {n} required"));
                }
            }
            Qualifier::MaxLen(n) => {
                let len = value.chars().count() as u64;
                if len > *n {
                    return Err(format!("{len} characters, at most {n} allowed"));
                }
            }
            Qualifier::MinValue(n) => {
                if let Ok(v) = value.parse::<f64>()
                    && v < *n as f64
                {
                    return Err(format!("{value} is below the minimum {n}"));
                }
            }
            Qualifier::MaxValue(n) => {
                if let Ok(v) = value.parse::<f64>()
                    && v > *n as f64
                {
                    return Err(format!("{value} is above the maximum {n}"));
                }
            }
            Qualifier::ValueMap(values) => {
                if !values.iter().any(|v| v == value) {
                    return Err(format!("not one of {}", self));
                }
            }
        }
        Ok(())
    }
}

/// Parses `ovf:qualifiers`: whitespace-separated `Name(number)` and `ValueMap{"a","b"}`.
pub fn parse_qualifiers(text: &str) -> Result<Vec<Qualifier>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        if name == "ValueMap" {
            let (values, remaining) = parse_value_map(after)?;
            out.push(Qualifier::ValueMap(values));
            rest = remaining;
        } else {
            let Some(inner) = after.strip_prefix('(') else {
                return Err(format!(
                    "expected `(` after `{name}`; qualifiers look like MinLen(6) MaxLen(128) \
                     MinValue(1) MaxValue(65535) ValueMap{{\"a\",\"b\"}}"
                ));
            };
            let Some(close) = inner.find(')') else {
                return Err(format!("missing `)` after `{name}(`"));
            };
            let number = inner[..close].trim();
            let q = match name {
                "MinLen" | "MaxLen" => {
                    let n: u64 = number.parse().map_err(|_| {
                        format!("`{name}` needs a non-negative integer, got `{number}`")
                    })?;
                    if name == "MinLen" {
                        Qualifier::MinLen(n)
                    } else {
                        Qualifier::MaxLen(n)
                    }
                }
                "MinValue" | "MaxValue" => {
                    let n: i128 = number
                        .parse()
                        .map_err(|_| format!("`{name}` needs an integer, got `{number}`"))?;
                    if name == "MinValue" {
                        Qualifier::MinValue(n)
                    } else {
                        Qualifier::MaxValue(n)
                    }
                }
                other => {
                    return Err(format!(
                        "unknown qualifier `{other}`; expected MinLen, MaxLen, MinValue, \
                         MaxValue or ValueMap"
                    ));
                }
            };
            out.push(q);
            rest = &inner[close + 1..];
        }
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(format!(
                "expected a space between qualifiers, found `{}`",
                rest.chars().next().unwrap_or(' ')
            ));
        }
        rest = rest.trim_start();
    }
    Ok(out)
}

/// Parses `{"a","b"}` (quotes optional), returning the values and the rest of the input.
fn parse_value_map(after: &str) -> Result<(Vec<String>, &str), String> {
    let Some(inner) = after.strip_prefix('{') else {
        return Err("expected `{` after `ValueMap`".to_string());
    };
    let mut values = Vec::new();
    let mut chars = inner.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, c)) = chars.peek() else {
            return Err("missing `}` after `ValueMap{`".to_string());
        };
        let value = if c == '"' {
            chars.next();
            let mut end = None;
            for (i, c) in chars.by_ref() {
                if c == '"' {
                    end = Some(i);
                    break;
                }
            }
            let Some(end) = end else {
                return Err("unterminated `\"` in ValueMap".to_string());
            };
            inner[start + 1..end].to_string()
        } else if c == '}' && values.is_empty() {
            chars.next();
            return Ok((values, &inner[start + 1..]));
        } else {
            let mut end = inner.len();
            while let Some(&(i, c)) = chars.peek() {
                if c == ',' || c == '}' {
                    end = i;
                    break;
                }
                chars.next();
            }
            inner[start..end].trim().to_string()
        };
        values.push(value);
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            Some((_, ',')) => continue,
            Some((i, '}')) => return Ok((values, &inner[i + 1..])),
            Some((_, c)) => return Err(format!("expected `,` or `}}` in ValueMap, found `{c}`")),
            None => return Err("missing `}` after `ValueMap{`".to_string()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_qualifiers() {
        assert_eq!(
            parse_qualifiers("MinLen(6) MaxLen(128)").unwrap(),
            vec![Qualifier::MinLen(6), Qualifier::MaxLen(128)]
        );
        assert_eq!(
            parse_qualifiers("MinValue(1)  MaxValue(65535)").unwrap(),
            vec![Qualifier::MinValue(1), Qualifier::MaxValue(65535)]
        );
        assert_eq!(
            parse_qualifiers(r#"ValueMap{"a b", "c"}"#).unwrap(),
            vec![Qualifier::ValueMap(vec!["a b".into(), "c".into()])]
        );
        assert_eq!(
            parse_qualifiers("ValueMap{x,y}").unwrap(),
            vec![Qualifier::ValueMap(vec!["x".into(), "y".into()])]
        );
        assert!(parse_qualifiers("").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_qualifiers() {
        assert!(parse_qualifiers("MinLength(6)").is_err());
        assert!(parse_qualifiers("MinLen(six)").is_err());
        assert!(parse_qualifiers("MinLen(6").is_err());
        assert!(parse_qualifiers("MinLen(6)MaxLen(7)").is_err());
        assert!(parse_qualifiers("ValueMap{\"a\"").is_err());
    }

    #[test]
    fn checks_values() {
        assert!(PropertyType::Int.check("5556").is_ok());
        assert!(PropertyType::Uint8.check("256").is_err());
        assert!(PropertyType::Boolean.check("True").is_ok());
        assert!(PropertyType::Boolean.check("yes").is_err());
        assert!(Qualifier::MinLen(6).check("12345").is_err());
        assert!(Qualifier::MinLen(6).check("ééééé\u{e9}").is_ok());
        assert!(Qualifier::MaxValue(65535).check("65536").is_err());
    }
}
