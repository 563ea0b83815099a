//! Enumerations that are spelled on the command line, in metadata and in config files: one macro
//! gives each its names, parsing (with aliases), display and a uniform error message.

/// A closed set of named values.
pub trait NamedValue: Sized + Copy + 'static {
    /// Canonical names, in declaration order.
    const NAMES: &'static [&'static str];
    /// What the value is, for messages ("architecture", "loss", …).
    const WHAT: &'static str;
    /// The canonical name.
    fn as_str(self) -> &'static str;
}

/// A name that is none of a [`NamedValue`]'s: "unknown what `x` (expected one of: a, b)".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{got}` (expected one of: {})", expected.join(", "))]
pub struct UnknownName {
    /// What the value is ("architecture", "loss", …).
    pub what: &'static str,
    /// The name given.
    pub got: String,
    /// The canonical names.
    pub expected: &'static [&'static str],
}

#[doc(hidden)]
pub use serde as __serde;

/// `named_enum!(Type, "what", Type::A => "a", Type::B => "b" | "alias")` implements
/// [`NamedValue`], `FromStr` (error: "unknown what `x` (expected one of: a, b)"), `Display`, and
/// serde as the name (so config files, metadata and run states spell values one way).
#[macro_export]
macro_rules! named_enum {
    ($t:ty, $what:literal, $($v:path => $s:literal $(| $alias:literal)*),+ $(,)?) => {
        impl $crate::names::NamedValue for $t {
            const NAMES: &'static [&'static str] = &[$($s),+];
            const WHAT: &'static str = $what;
            fn as_str(self) -> &'static str {
                match self { $($v => $s),+ }
            }
        }
        impl ::std::str::FromStr for $t {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s $(| $alias)* => Ok($v),)+
                    _ => Err($crate::names::UnknownName { what: $what, got: s.to_string(), expected: <$t as $crate::names::NamedValue>::NAMES }),
                }
            }
        }
        impl $crate::names::__serde::Serialize for $t {
            fn serialize<S: $crate::names::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::names::NamedValue::as_str(*self))
            }
        }
        impl<'de> $crate::names::__serde::Deserialize<'de> for $t {
            fn deserialize<D: $crate::names::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::string::String as $crate::names::__serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(<D::Error as $crate::names::__serde::de::Error>::custom)
            }
        }
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::NamedValue::as_str(*self))
            }
        }
    };
}
