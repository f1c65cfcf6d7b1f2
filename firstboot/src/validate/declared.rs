//! The rules the appliance definition declares for a property's value (its qualifiers), in
//! the words of first boot's messages. What the rules are comes from
//! [`crate::definition::PropertySpec`]; only the wording lives here.

use crate::definition::PropertySpec;

/// `6 to 128 characters`, `at least 6 characters`, `at most 65535 characters`.
pub(super) fn length_rule(min: u64, max: Option<u64>) -> String {
    match max {
        Some(max) if min > 0 => format!("{min} to {max} characters"),
        Some(max) => format!("at most {max} characters"),
        None => format!("at least {min} characters"),
    }
}

/// `6 to 128 characters` for a property with length qualifiers.
pub(super) fn length_of(spec: &PropertySpec) -> Option<String> {
    spec.length_range().map(|(min, max)| length_rule(min, max))
}

/// `an integer from 1 to 65535`: the integers the definition allows for an integer property.
pub(super) fn integer_rule(min: i128, max: i128) -> String {
    format!("an integer from {min} to {max}")
}

/// What is wrong with `value` by the length (`MinLen`, `MaxLen`) and value-list (`ValueMap`)
/// qualifiers of `spec`, if anything; `shown` is the value as messages may show it. Type and
/// range of integers are checked where the value is parsed (their messages name what the
/// number is, e.g. a port).
pub(super) fn violation(spec: &PropertySpec, value: &str, shown: &str) -> Option<String> {
    if let Some((min, max)) = spec.length_range() {
        let n = value.chars().count();
        let len = u64::try_from(n).unwrap_or(u64::MAX);
        if len < min || max.is_some_and(|max| len > max) {
            return Some(format!(
                "is {n} character{} long; expected {}",
                if n == 1 { "" } else { "s" },
                length_rule(min, max)
            ));
        }
    }
    if let Some(allowed) = spec.allowed_values()
        && !allowed.iter().any(|a| a == value)
    {
        return Some(format!(
            "{shown} is not an allowed value; expected one of {}",
            allowed.join(", ")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules_read_like_the_messages() {
        assert_eq!(length_rule(6, Some(128)), "6 to 128 characters");
        assert_eq!(length_rule(0, Some(65535)), "at most 65535 characters");
        assert_eq!(length_rule(6, None), "at least 6 characters");
        assert_eq!(integer_rule(1, 65535), "an integer from 1 to 65535");
    }
}
