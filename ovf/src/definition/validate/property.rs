//! `[[categories]]` and their `[[categories.properties]]`: unique classes and keys, known
//! types, qualifiers that parse and apply to the type, defaults valid for both, build fills.

use std::collections::HashMap;

use toml::Spanned;

use super::Ctx;
use crate::definition::raw::{RawCategory, RawProperty};
use crate::definition::{Category, DefinitionError, DeploymentOption, Fill, PropertyDef};
use crate::qualifiers::{PropertyType, Qualifier, parse_qualifiers};

/// The line each full property key (`class.key`) was first defined on.
type SeenKeys = HashMap<String, usize>;

impl Ctx<'_> {
    pub(super) fn categories(
        &self,
        raw: Vec<RawCategory>,
        deployment_options: &[DeploymentOption],
    ) -> Result<Vec<Category>, DefinitionError> {
        let mut categories: Vec<Category> = Vec::new();
        let mut seen_keys = SeenKeys::new();
        for c in raw {
            let class = c.class.get_ref().clone();
            if class.is_empty() || class.contains(|ch: char| ch.is_whitespace() || ch == '.') {
                return Err(self.invalid(
                    c.class.span(),
                    format!("category class {class:?} must be non-empty, without spaces or dots"),
                ));
            }
            if categories.iter().any(|x| x.class == class) {
                return Err(self.invalid(
                    c.class.span(),
                    format!("category class `{class}` is declared twice; put its properties in one [[categories]]"),
                ));
            }
            let mut properties = Vec::new();
            for rp in c.properties {
                let prop =
                    self.property(rp, &class, &c.label, deployment_options, &mut seen_keys)?;
                properties.push(prop);
            }
            categories.push(Category {
                class,
                label: c.label,
                info: c.info.unwrap_or_else(|| "Properties".to_string()),
                properties,
            });
        }
        Ok(categories)
    }

    fn property(
        &self,
        rp: RawProperty,
        class: &str,
        category: &str,
        deployment_options: &[DeploymentOption],
        seen_keys: &mut SeenKeys,
    ) -> Result<PropertyDef, DefinitionError> {
        let full_key = self.property_key(&rp.key, class, seen_keys)?;
        let Ok(kind) = rp.type_name.get_ref().parse::<PropertyType>() else {
            return Err(DefinitionError::UnknownType {
                at: self.at(rp.type_name.span()),
                key: full_key,
                found: rp.type_name.get_ref().clone(),
                expected: PropertyType::NAMES.join(", "),
            });
        };
        let qualifiers = match &rp.qualifiers {
            None => Vec::new(),
            Some(q) => self.qualifiers(q, kind, &full_key)?,
        };
        let default = match &rp.default {
            None => None,
            Some(d) => Some(self.default(d, kind, &qualifiers, &full_key)?),
        };
        let user_configurable = rp.user_configurable.as_ref().is_none_or(|u| *u.get_ref());
        let fill = match &rp.fill {
            None => None,
            Some(f) => Some(self.fill(f, user_configurable, &full_key)?),
        };
        let configurations = self.configurations(
            rp.configuration.as_ref(),
            deployment_options,
            &format!("property `{full_key}`"),
        )?;
        Ok(PropertyDef {
            class: class.to_string(),
            key: rp.key.into_inner(),
            kind,
            qualifiers_text: rp.qualifiers.map(Spanned::into_inner).unwrap_or_default(),
            qualifiers,
            default,
            password: rp.password,
            user_configurable,
            configurations,
            label: rp.label,
            description: rp.description,
            category: category.to_string(),
            fill,
        })
    }

    /// A well-formed key not used before in this definition; returns `class.key`.
    fn property_key(
        &self,
        key: &Spanned<String>,
        class: &str,
        seen_keys: &mut SeenKeys,
    ) -> Result<String, DefinitionError> {
        let name = key.get_ref();
        if name.is_empty() || name.contains(|ch: char| ch.is_whitespace() || ch == '.') {
            return Err(self.invalid(
                key.span(),
                format!("property key {name:?} must be non-empty, without spaces or dots"),
            ));
        }
        let full_key = format!("{class}.{name}");
        let at = self.at(key.span());
        if let Some(first_line) = seen_keys.get(&full_key) {
            return Err(DefinitionError::DuplicateKey {
                at,
                key: full_key,
                first_line: *first_line,
            });
        }
        seen_keys.insert(full_key.clone(), at.line);
        Ok(full_key)
    }

    /// Qualifiers that parse and make sense for the property's type.
    fn qualifiers(
        &self,
        q: &Spanned<String>,
        kind: PropertyType,
        full_key: &str,
    ) -> Result<Vec<Qualifier>, DefinitionError> {
        let bad = |reason| DefinitionError::BadQualifiers {
            at: self.at(q.span()),
            key: full_key.to_string(),
            qualifiers: q.get_ref().clone(),
            reason,
        };
        let parsed = parse_qualifiers(q.get_ref()).map_err(bad)?;
        if let Some(wrong) = parsed.iter().find(|x| !x.applies_to(kind)) {
            return Err(bad(format!("{wrong} does not apply to type {kind}")));
        }
        Ok(parsed)
    }

    /// The default as text, valid for the type and every qualifier.
    fn default(
        &self,
        d: &Spanned<toml::Value>,
        kind: PropertyType,
        qualifiers: &[Qualifier],
        full_key: &str,
    ) -> Result<String, DefinitionError> {
        let text = match d.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(self.invalid(
                    d.span(),
                    format!(
                        "default of property `{full_key}` must be a string, integer, \
                         boolean or number, not a {}",
                        other.type_str()
                    ),
                ));
            }
        };
        // An empty default of a string means "no value"; it is still checked against the
        // qualifiers (MinLen) because vSphere would show it.
        if let Err(reason) = kind.check(&text) {
            return Err(DefinitionError::DefaultWrongType {
                at: self.at(d.span()),
                key: full_key.to_string(),
                default: text,
                type_name: kind,
                reason,
            });
        }
        for q in qualifiers {
            if let Err(reason) = q.check(&text) {
                return Err(DefinitionError::DefaultViolatesQualifier {
                    at: self.at(d.span()),
                    key: full_key.to_string(),
                    default: text,
                    reason: format!("{q}: {reason}"),
                });
            }
        }
        Ok(text)
    }

    /// A known build fact, on a property the user cannot configure.
    fn fill(
        &self,
        f: &Spanned<String>,
        user_configurable: bool,
        full_key: &str,
    ) -> Result<Fill, DefinitionError> {
        let fill = f
            .get_ref()
            .parse::<Fill>()
            .map_err(|e| self.invalid(f.span(), format!("property `{full_key}` has {e}")))?;
        if user_configurable {
            return Err(self.invalid(
                f.span(),
                format!(
                    "property `{full_key}` is filled by the build, so it needs `user_configurable = false`"
                ),
            ));
        }
        Ok(fill)
    }
}
