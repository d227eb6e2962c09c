//! Where LookupEvents answers from.

/// Where LookupEvents answers from, for the places a source covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Up to the store's watermark from the store, the newer part from CloudTrail.
    #[default]
    Auto,
    /// From the store only; CloudTrail is never called.
    Store,
    /// From CloudTrail only (the store still ingests).
    CloudTrail,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "auto" => Some(Mode::Auto),
            "store" => Some(Mode::Store),
            "cloudtrail" => Some(Mode::CloudTrail),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Store => "store",
            Mode::CloudTrail => "cloudtrail",
        }
    }
}
