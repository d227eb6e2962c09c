//! Faults on demand: the next N calls of an operation (or of any) fail in a chosen way, so a
//! client's error handling and retries can be tested without AWS.

use std::{collections::VecDeque, time::Duration};

/// How a call fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// CloudTrail answers with this exception (HTTP 400, as CloudTrail sends its exceptions), and
    /// records the failed call as it records any.
    Error { code: String, message: String },
    /// An HTTP status with a body that is not a CloudTrail answer (a load balancer's 500 or 503).
    Status(u16),
    /// The answer comes this much later (then the call is served as usual).
    Delay(Duration),
    /// The connection is reset before any answer.
    Reset,
    /// No answer at all, ever: a black hole (the client's timeouts decide).
    Hang,
}

impl Fault {
    /// A CloudTrail exception with a message of its own.
    pub fn error(code: impl Into<String>) -> Fault {
        let code = code.into();
        Fault::Error {
            message: format!("injected {code}"),
            code,
        }
    }
}

#[derive(Debug)]
struct Planned {
    operation: Option<String>,
    remaining: u64,
    fault: Fault,
}

/// Faults still to happen, first planned first.
#[derive(Debug, Default)]
pub struct Faults {
    planned: VecDeque<Planned>,
    happened: u64,
}

impl Faults {
    pub fn plan(&mut self, operation: Option<&str>, count: u64, fault: Fault) {
        if count > 0 {
            self.planned.push_back(Planned {
                operation: operation.map(str::to_owned),
                remaining: count,
                fault,
            });
        }
    }

    /// The fault a call of `operation` meets now, if any (and counts it).
    pub fn take(&mut self, operation: &str) -> Option<Fault> {
        self.take_where(|planned| planned.is_none_or(|o| o == operation))
    }

    /// A fault planned for `operation` by name (S3's calls: a fault for any operation is
    /// CloudTrail's and STS's, so the event store's reads do not spend it).
    pub fn take_named(&mut self, operation: &str) -> Option<Fault> {
        self.take_where(|planned| planned == Some(operation))
    }

    fn take_where(&mut self, wanted: impl Fn(Option<&str>) -> bool) -> Option<Fault> {
        let index = self
            .planned
            .iter()
            .position(|p| wanted(p.operation.as_deref()))?;
        let planned = &mut self.planned[index];
        planned.remaining -= 1;
        let fault = planned.fault.clone();
        if planned.remaining == 0 {
            self.planned.remove(index);
        }
        self.happened += 1;
        Some(fault)
    }

    pub fn clear(&mut self) {
        self.planned.clear();
    }

    pub fn happened(&self) -> u64 {
        self.happened
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_happen_in_order_to_the_operations_named() {
        let mut faults = Faults::default();
        faults.plan(Some("CreateTrail"), 2, Fault::error("ConflictException"));
        faults.plan(None, 1, Fault::Status(503));
        assert_eq!(faults.take("DescribeTrails"), Some(Fault::Status(503)));
        assert_eq!(faults.take("DescribeTrails"), None);
        assert!(matches!(
            faults.take("CreateTrail"),
            Some(Fault::Error { .. })
        ));
        assert!(matches!(
            faults.take("CreateTrail"),
            Some(Fault::Error { .. })
        ));
        assert_eq!(faults.take("CreateTrail"), None);
        assert_eq!(faults.happened(), 3);
    }
}
