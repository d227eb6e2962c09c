//! File descriptors: the soft limit is raised to the hard one at start (as Go's runtime does), and
//! a configuration whose connection bounds do not fit under it is warned about, so the bounds, not
//! the kernel, decide who is refused: the gRPC port's `max_connections`, the side port's
//! `metrics_max_connections`, and a reserve for everything else (upstream connections, files,
//! Redis, the JWKS fetcher).

/// Descriptors kept for what is not a client connection.
pub const RESERVE: u64 = 256;

/// Raises the soft limit to the hard one; the soft limit now in force (`None` where it cannot be
/// read).
#[cfg(unix)]
pub fn raise_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(not(unix))]
pub fn raise_limit() -> Option<u64> {
    None
}

/// Raises the limit and says whether `connections` (both ports' bounds) fit under it.
pub fn check(connections: usize) {
    let Some(limit) = raise_limit() else {
        return;
    };
    let needed = connections as u64 + RESERVE;
    if needed > limit {
        tracing::warn!(
            limit,
            needed,
            "the file descriptor limit is below max_connections + metrics_max_connections + a reserve of {RESERVE}: at the limit, accept fails instead of the bounds refusing (raise `ulimit -n` or lower the bounds)"
        );
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = super::raise_limit().expect("readable");
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!(now, limit.rlim_cur);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
