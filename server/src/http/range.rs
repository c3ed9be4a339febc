//! `Range` / `If-Range` evaluation for one file of known size (RFC 9110 §14).

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// 200 with the whole body.
    Full,
    /// 206 with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416 with `Content-Range: bytes */SIZE`.
    Unsatisfiable,
}

/// Evaluates a `Range` header (and `If-Range`) against a file of `size`
/// bytes with strong ETag `etag`. Only single byte ranges are honoured: a
/// multi-range or syntactically invalid header is answered with the full
/// body, as is an `If-Range` that does not match `etag` (a date in
/// `If-Range` never matches: the ETag is the validator).
pub fn evaluate(
    range: Option<&str>,
    if_range: Option<&str>,
    etag: &str,
    size: u64,
) -> RangeOutcome {
    let Some(range) = range else {
        return RangeOutcome::Full;
    };
    if let Some(ir) = if_range {
        if ir.trim() != etag {
            return RangeOutcome::Full;
        }
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return RangeOutcome::Full;
    };
    let spec = spec.trim();
    if spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeOutcome::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let Some(n) = num(last) else {
            return RangeOutcome::Full;
        };
        if n == 0 || size == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        let n = n.min(size);
        return RangeOutcome::Partial {
            start: size - n,
            end: size - 1,
        };
    }
    let Some(start) = num(first) else {
        return RangeOutcome::Full;
    };
    let end = if last.is_empty() {
        None
    } else {
        match num(last) {
            Some(e) if e >= start => Some(e),
            // `last < first` or junk: an invalid range is ignored.
            _ => return RangeOutcome::Full,
        }
    };
    if start >= size {
        return RangeOutcome::Unsatisfiable;
    }
    let end = end.map_or(size - 1, |e| e.min(size - 1));
    RangeOutcome::Partial { start, end }
}

#[cfg(test)]
mod tests {
    use super::{evaluate, RangeOutcome::*};

    #[test]
    fn table() {
        let e = "\"abc\"";
        let cases: &[(Option<&str>, Option<&str>, u64, super::RangeOutcome)] = &[
            (None, None, 10, Full),
            (Some("bytes=0-0"), None, 10, Partial { start: 0, end: 0 }),
            (Some("bytes=2-5"), None, 10, Partial { start: 2, end: 5 }),
            (Some("bytes=2-50"), None, 10, Partial { start: 2, end: 9 }),
            (Some("bytes=7-"), None, 10, Partial { start: 7, end: 9 }),
            (Some("bytes=-3"), None, 10, Partial { start: 7, end: 9 }),
            (Some("bytes=-30"), None, 10, Partial { start: 0, end: 9 }),
            (Some("bytes=-0"), None, 10, Unsatisfiable),
            (Some("bytes=10-"), None, 10, Unsatisfiable),
            (Some("bytes=10-20"), None, 10, Unsatisfiable),
            (Some("bytes=0-"), None, 0, Unsatisfiable),
            (Some("bytes=5-2"), None, 10, Full),
            (Some("bytes=0-1,3-4"), None, 10, Full),
            (Some("items=0-1"), None, 10, Full),
            (Some("bytes=x-1"), None, 10, Full),
            (
                Some("bytes=2-5"),
                Some("\"abc\""),
                10,
                Partial { start: 2, end: 5 },
            ),
            (Some("bytes=2-5"), Some("\"abd\""), 10, Full),
            (
                Some("bytes=2-5"),
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                10,
                Full,
            ),
            (Some("bytes=99999999999999999999999-"), None, 10, Full),
        ];
        for (r, ir, size, want) in cases {
            assert_eq!(evaluate(*r, *ir, e, *size), *want, "{r:?} {ir:?} {size}");
        }
    }
}
