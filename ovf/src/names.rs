//! The one name ↔ enum pattern of the crate: every enum with a textual name gets `as_str()`,
//! `Display` (the same text), `NAMES` (every name, in declaration order) and `FromStr` with an
//! [`UnknownName`] error that lists the expected names. The crate-internal `named_enum!`
//! writes all of it from one table, so a name cannot be added to one direction and forgotten
//! in the other.

use std::fmt;

/// A name that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{found}`; expected {}", Expected(self.expected))]
pub struct UnknownName {
    /// What was being named (`disk controller`).
    pub what: &'static str,
    /// The name as given.
    pub found: String,
    /// Every valid name.
    pub expected: &'static [&'static str],
}

/// `a` alone, `` `a` or `b` `` for two, `one of: a, b, c` for more.
struct Expected(&'static [&'static str]);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "`{one}`"),
            [a, b] => write!(f, "`{a}` or `{b}`"),
            all => write!(f, "one of: {}", all.join(", ")),
        }
    }
}

/// `named_enum!(Type, "what", { Variant => "name", ... })`: `as_str`, `NAMES`, `Display`
/// and `FromStr` (error [`UnknownName`]) for `Type`. `as_str` is an exhaustive match, so a new
/// variant without a name does not compile.
macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The name of this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::names::UnknownName {
                        what: $what,
                        found: s.to_string(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }
    };
}
pub(crate) use named_enum;

#[cfg(test)]
mod tests {

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Colour {
        Red,
        Green,
        Blue,
    }
    named_enum!(Colour, "colour", { Red => "red", Green => "green", Blue => "blue" });

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Switch {
        On,
        Off,
    }
    named_enum!(Switch, "switch", { On => "on", Off => "off" });

    #[test]
    fn names_round_trip() {
        for name in Colour::NAMES {
            let colour: Colour = name.parse().unwrap_or(Colour::Red);
            assert_eq!(colour.as_str(), *name);
            assert_eq!(colour.to_string(), *name);
        }
        assert_eq!("blue".parse(), Ok(Colour::Blue));
        assert_eq!("off".parse(), Ok(Switch::Off));
    }

    #[test]
    fn an_unknown_name_lists_the_expected_ones() {
        let e = "Red".parse::<Colour>().err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("unknown colour `Red`; expected one of: red, green, blue")
        );
        let e = "dim".parse::<Switch>().err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("unknown switch `dim`; expected `on` or `off`")
        );
    }
}
