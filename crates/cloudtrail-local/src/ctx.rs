//! The call being served, as every operation sees it.

use aws_smithy_types::DateTime;

/// The call being served: by whom, where, when.
pub(crate) struct Ctx<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub now: DateTime,
}
