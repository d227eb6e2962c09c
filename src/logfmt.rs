//! How the human log format writes fields: `name=value`, a value quoted and escaped (as Rust's
//! `{:?}` of a string) when it holds a space, a quote, `=`, a backslash or any control character,
//! the message with its control characters escaped. Callers' values (trail names, JWT subjects, ...)
//! reach log lines, and some are logged before or despite validation: a `\n` in one must not start
//! a forged line, nor a space a forged field. The JSON format is safe as it is (serde escapes).

use std::fmt::{self, Debug, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::format::Writer,
};

/// The human format's field formatter (`fmt::layer().fmt_fields(SafeFields)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeFields;

impl<'a> MakeVisitor<Writer<'a>> for SafeFields {
    type Visitor = SafeVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> SafeVisitor<'a> {
        SafeVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

pub struct SafeVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

/// Whether a value must be quoted to stay one field of one line.
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '=' | '\\'))
}

/// `text` with control characters escaped (a message: spaces stay).
fn write_message(out: &mut impl Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(out, "{}", c.escape_debug())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

impl SafeVisitor<'_> {
    fn field(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        let out = &mut self.writer;
        self.result = (|| {
            out.write_str(separator)?;
            if field.name() == "message" {
                return write_message(out, value);
            }
            let name = field.name().strip_prefix("r#").unwrap_or(field.name());
            if needs_quotes(value) {
                write!(out, "{name}={value:?}")
            } else {
                write!(out, "{name}={value}")
            }
        })();
    }
}

impl Visit for SafeVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.field(field, &format!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for SafeVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for SafeVisitor<'_> {
    fn writer(&mut self) -> &mut dyn Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the human format writes for `log`.
    fn logged(log: impl FnOnce()) -> String {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let layer = crate::telemetry::human_layer(false).with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The attack: a trail name or JWT `sub` with `\n` wrote a complete forged audit line; NUL
    /// bytes passed too.
    #[test]
    fn callers_values_cannot_forge_lines_or_fields() {
        let forged = "x\n2026-12-03T00:00:00Z INFO cloudtrail_gateway::audit: audit principal=admin rpc=DeleteTrail outcome=ok";
        let text = logged(|| {
            tracing::info!(
                principal = %forged,
                trail = "t rpc=DeleteTrail\0",
                plain = %"team-a",
                empty = "",
                "audit {}", "with\r\nnewline"
            );
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(r#"principal="x\n2026-12-03T00:00:00Z INFO"#),
            "{text}"
        );
        assert!(text.contains(r#"trail="t rpc=DeleteTrail\0""#), "{text}");
        assert!(text.contains(" plain=team-a"), "{text}");
        assert!(text.contains(r#"empty="""#), "{text}");
        assert!(text.contains(r"audit with\r\nnewline"), "{text}");
        assert!(!text.contains('\0') && !text.contains('\r'));
        // The real audit record, with a principal and a trail from a caller.
        let principal = crate::principal::Principal::test("admin\nrpc=DeleteTrail outcome=ok");
        let text = logged(|| {
            crate::audit::write(&crate::audit::AuditRecord {
                principal: Some(&principal),
                account: Some("123456789012"),
                region: Some("us-east-1"),
                operation: crate::operation::Operation::DeleteTrail,
                trail: Some("a\nb"),
                code: tonic::Code::PermissionDenied,
                request_id: None,
                aws_request_id: None,
                answered: None,
            })
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        // The forged text stays inside the quoted value; the record's own outcome follows.
        assert!(
            text.contains(r#" principal="admin\nrpc=DeleteTrail outcome=ok" auth=token "#),
            "{text}"
        );
        assert!(text.contains(r#" trail="a\nb" outcome=error "#), "{text}");
    }
}
