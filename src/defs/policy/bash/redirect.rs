//! Redirections: file targets are checked like any path (read or write roots, secrets,
//! protected names); heredocs that would expand are refused; process substitution is refused.

use brush_parser::ast::{self, IoFileRedirectKind, IoFileRedirectTarget, IoRedirect};

use super::super::files::Access;
use super::words::{expand, heredoc_static};
use super::{BashError, CommandInfo, HeredocInfo, RedirectionInfo, Walker};

impl Walker<'_> {
    pub(super) fn redirect(&self, r: &IoRedirect, info: &mut CommandInfo) -> Result<(), BashError> {
        let home = self.home.as_deref();
        let mut subs = Vec::new();
        let path_check = |raw: &str, access: Access| -> Result<(), BashError> {
            self.policy
                .check_path(raw, self.cwd, access)
                .map(|_| ())
                .map_err(BashError::Redirection)
        };
        let literal = |w: &ast::Word, subs: &mut Vec<String>| -> Result<String, BashError> {
            let a = expand(&w.value, home, subs)?;
            if a.glob {
                return Err(BashError::GlobInRedirection(w.value.clone()));
            }
            Ok(a.text)
        };
        let result = match r {
            IoRedirect::File(fd, kind, target) => {
                let (op, access) = match kind {
                    IoFileRedirectKind::Read => ("<", Access::Read),
                    IoFileRedirectKind::Write => (">", Access::Write),
                    IoFileRedirectKind::Append => (">>", Access::Write),
                    IoFileRedirectKind::ReadAndWrite => ("<>", Access::Write),
                    IoFileRedirectKind::Clobber => (">|", Access::Write),
                    IoFileRedirectKind::DuplicateInput => ("<&", Access::Read),
                    IoFileRedirectKind::DuplicateOutput => (">&", Access::Write),
                };
                let (shown, res) = match target {
                    IoFileRedirectTarget::Filename(w) => (
                        w.value.clone(),
                        literal(w, &mut subs).and_then(|p| path_check(&p, access)),
                    ),
                    IoFileRedirectTarget::Fd(n) => (n.to_string(), Ok(())),
                    IoFileRedirectTarget::Duplicate(w) => {
                        let res = literal(w, &mut subs).and_then(|t| {
                            let fdish = t == "-"
                                || (!t.is_empty()
                                    && t.trim_end_matches('-').chars().all(|c| c.is_ascii_digit()));
                            if fdish {
                                Ok(())
                            } else {
                                path_check(&t, access)
                            }
                        });
                        (w.value.clone(), res)
                    }
                    IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        subs.push(format!("({})", sub.list));
                        (
                            format!("({})", sub.list),
                            Err(BashError::ProcessSubstitution),
                        )
                    }
                };
                info.redirections.push(RedirectionInfo {
                    fd: *fd,
                    op: op.to_string(),
                    target: shown,
                });
                res
            }
            IoRedirect::OutputAndError(w, append) => {
                info.redirections.push(RedirectionInfo {
                    fd: None,
                    op: if *append { "&>>" } else { "&>" }.to_string(),
                    target: w.value.clone(),
                });
                literal(w, &mut subs).and_then(|p| path_check(&p, Access::Write))
            }
            IoRedirect::HereString(fd, w) => {
                info.redirections.push(RedirectionInfo {
                    fd: *fd,
                    op: "<<<".to_string(),
                    target: w.value.clone(),
                });
                literal(w, &mut subs).map(|_| ())
            }
            IoRedirect::HereDocument(fd, doc) => {
                info.redirections.push(RedirectionInfo {
                    fd: *fd,
                    op: if doc.remove_tabs { "<<-" } else { "<<" }.to_string(),
                    target: doc.here_end.value.clone(),
                });
                info.heredocs.push(HeredocInfo {
                    delimiter: doc.here_end.value.clone(),
                    expands: doc.requires_expansion,
                    body: doc.doc.value.clone(),
                });
                if doc.requires_expansion {
                    heredoc_static(&doc.doc.value, &mut subs)
                } else {
                    Ok(())
                }
            }
        };
        info.substitutions.extend(subs);
        result
    }
}
