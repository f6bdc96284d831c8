//! Error text for logs and client-facing messages: an error and all its sources on one line.

/// `outer: inner: innermost`, each phrase once: a source whose text the line already holds
/// (an outer `Display` that printed its source) is skipped, its own sources still followed.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !t.is_empty() && !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection refused")]
    struct Io;

    #[derive(Debug, thiserror::Error)]
    #[error("dial proxy.example:3128: {0}")]
    struct Dial(#[source] Io);

    #[derive(Debug, thiserror::Error)]
    #[error("token source `botguard` failed: {0}")]
    struct Outer(#[source] Dial);

    #[test]
    fn phrases_already_in_the_line_are_not_repeated() {
        let e = Outer(Dial(Io));
        let chain = error_chain(&e);
        assert_eq!(
            chain,
            "token source `botguard` failed: dial proxy.example:3128: connection refused"
        );
        assert_eq!(chain.matches("connection refused").count(), 1);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("upstream request failed")]
    struct Plain(#[source] Io);

    #[test]
    fn sources_not_in_the_line_are_appended() {
        assert_eq!(
            error_chain(&Plain(Io)),
            "upstream request failed: connection refused"
        );
    }

    #[test]
    fn a_token_failure_names_each_cause_once() {
        use crate::botguard::minter::BotGuardError;
        use crate::botguard::vm::VmError;
        let e = crate::tokens::TokenError::failed(
            "botguard",
            BotGuardError::Vm(VmError::Threw("boom".into())),
        );
        assert_eq!(
            error_chain(&e),
            "token source `botguard` failed: BotGuard VM: script threw: boom"
        );
    }
}
