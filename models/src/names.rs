//! Enumerations that are spelled on the command line, in metadata and in config files: one macro
//! gives each its names, parsing (with aliases), display and a uniform error message.

/// A closed set of named values.
pub trait NamedValue: Sized + Copy + 'static {
    /// Canonical names, in declaration order.
    const NAMES: &'static [&'static str];
    /// What the value is, for messages ("architecture", "loss", …).
    const WHAT: &'static str;
    fn as_str(self) -> &'static str;
}

/// `named_enum!(Type, "what", Type::A => "a", Type::B => "b" | "alias")` implements
/// [`NamedValue`], `FromStr` (error: "unknown what `x` (expected one of: a, b)") and `Display`.
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
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s $(| $alias)* => Ok($v),)+
                    _ => Err(format!("unknown {} `{}` (expected one of: {})", $what, s, <$t as $crate::names::NamedValue>::NAMES.join(", "))),
                }
            }
        }
        impl ::std::fmt::Display for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::NamedValue::as_str(*self))
            }
        }
    };
}
