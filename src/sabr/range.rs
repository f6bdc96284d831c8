//! Which bytes of a gateway URL's object a request wants, and how the answer is framed: a
//! `Range` header gets `206` with `Content-Range` (RFC 9110); a `range=a-b` query, googlevideo's
//! own way, gets `200` with just those bytes, as googlevideo answers it; neither gets the whole
//! object. Parsing the header is `http-range-header`'s.

/// The bytes to send and how to frame them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The whole object: `200`.
    Whole { last: u64 },
    /// `first..=last` for a `Range` header: `206` and `Content-Range`.
    Partial { first: u64, last: u64 },
    /// `first..=last` for a `range=` query: `200` with those bytes.
    Query { first: u64, last: u64 },
    /// Outside the object: `416` with `Content-Range: bytes */<len>`.
    Unsatisfiable,
}

impl Wanted {
    /// First and last byte (inclusive); `None` when nothing is sent.
    pub fn span(self) -> Option<(u64, u64)> {
        match self {
            Wanted::Whole { last } => Some((0, last)),
            Wanted::Partial { first, last } | Wanted::Query { first, last } => Some((first, last)),
            Wanted::Unsatisfiable => None,
        }
    }
}

/// What a request for an object of `len` bytes wants. A `range=` query wins over a header
/// (googlevideo ignores the header when the query names a range). Several ranges in one header
/// get the whole object, which RFC 9110 allows a server to send instead.
pub fn wanted(range_header: Option<&str>, range_query: Option<&str>, len: u64) -> Wanted {
    if len == 0 {
        return Wanted::Unsatisfiable;
    }
    if let Some(q) = range_query {
        let Some((a, b)) = q.split_once('-') else {
            return Wanted::Unsatisfiable;
        };
        let (Ok(first), last) = (a.trim().parse::<u64>(), b.trim()) else {
            return Wanted::Unsatisfiable;
        };
        let last = if last.is_empty() {
            Some(len - 1)
        } else {
            last.parse::<u64>().ok().map(|l| l.min(len - 1))
        };
        return match last {
            Some(last) if first <= last => Wanted::Query { first, last },
            _ => Wanted::Unsatisfiable,
        };
    }
    let Some(header) = range_header else {
        return Wanted::Whole { last: len - 1 };
    };
    let Ok(parsed) = http_range_header::parse_range_header(header) else {
        // An unreadable Range header is ignored (RFC 9110 §14.2).
        return Wanted::Whole { last: len - 1 };
    };
    match parsed.validate(len) {
        Ok(ranges) if ranges.len() == 1 => Wanted::Partial {
            first: *ranges[0].start(),
            last: *ranges[0].end(),
        },
        Ok(_) => Wanted::Whole { last: len - 1 },
        Err(_) => Wanted::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_the_header_the_query_or_neither() {
        let cases: &[(Option<&str>, Option<&str>, Wanted)] = &[
            (None, None, Wanted::Whole { last: 999 }),
            (
                Some("bytes=0-99"),
                None,
                Wanted::Partial { first: 0, last: 99 },
            ),
            (
                Some("bytes=900-"),
                None,
                Wanted::Partial {
                    first: 900,
                    last: 999,
                },
            ),
            (
                Some("bytes=-10"),
                None,
                Wanted::Partial {
                    first: 990,
                    last: 999,
                },
            ),
            (
                Some("bytes=500-5000"),
                None,
                Wanted::Partial {
                    first: 500,
                    last: 999,
                },
            ),
            (Some("bytes=1000-"), None, Wanted::Unsatisfiable),
            (Some("bytes=0-1,5-6"), None, Wanted::Whole { last: 999 }),
            (Some("items=0-5"), None, Wanted::Whole { last: 999 }),
            (
                Some("bytes=0-1"),
                Some("10-19"),
                Wanted::Query {
                    first: 10,
                    last: 19,
                },
            ),
            (
                None,
                Some("990-5000"),
                Wanted::Query {
                    first: 990,
                    last: 999,
                },
            ),
            (None, Some("1000-1001"), Wanted::Unsatisfiable),
            (None, Some("junk"), Wanted::Unsatisfiable),
        ];
        for (header, query, want) in cases {
            assert_eq!(wanted(*header, *query, 1000), *want, "{header:?} {query:?}");
        }
    }
}
