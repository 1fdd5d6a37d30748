//! Evidence files (佐证资料): a system's project approval, the basis of its
//! quota (Art. 8, 9), its go-live security records (Art. 22).

use serde::{Deserialize, Serialize};

use crate::invalid::{FieldError, Invalid};
use crate::text;

/// What a document is evidence of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// 立项批复 (Art. 9).
    ProjectApproval,
    /// 配额依据, e.g. the feasibility study (Art. 8).
    QuotaBasis,
    /// 安全自查 (Art. 22).
    SecuritySelfCheck,
    /// 检测评估 (Art. 22).
    SecurityAssessment,
    /// 安全加固 (Art. 22).
    SecurityHardening,
    Other,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 6] = [
        DocumentKind::ProjectApproval,
        DocumentKind::QuotaBasis,
        DocumentKind::SecuritySelfCheck,
        DocumentKind::SecurityAssessment,
        DocumentKind::SecurityHardening,
        DocumentKind::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DocumentKind::ProjectApproval => "project_approval",
            DocumentKind::QuotaBasis => "quota_basis",
            DocumentKind::SecuritySelfCheck => "security_self_check",
            DocumentKind::SecurityAssessment => "security_assessment",
            DocumentKind::SecurityHardening => "security_hardening",
            DocumentKind::Other => "other",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<DocumentKind, Invalid> {
        DocumentKind::ALL.into_iter().find(|k| k.code() == raw).ok_or_else(|| {
            let all: Vec<_> = DocumentKind::ALL.iter().map(|k| k.code()).collect();
            FieldError::new(field, "unknown_kind", format!("{field} must be one of {}", all.join(", ")))
                .into()
        })
    }
}

/// The largest evidence file accepted: scanned approvals run to a few MiB.
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;

/// The formats government documents come in, each with the bytes its files
/// start with, so that a file is what it claims to be.
const FORMATS: &[(&str, &[u8])] = &[
    ("application/pdf", b"%PDF-"),
    ("application/ofd", b"PK\x03\x04"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", b"\xff\xd8\xff"),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"PK\x03\x04"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b"PK\x03\x04"),
];

/// A checked upload's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentMeta {
    pub kind: DocumentKind,
    pub filename: String,
    pub content_type: String,
}

impl DocumentMeta {
    pub fn parse(
        kind: &str,
        filename: &str,
        content_type: &str,
        content: &[u8],
    ) -> Result<DocumentMeta, Invalid> {
        let kind = DocumentKind::parse("kind", kind)?;
        let filename = text::bounded("filename", filename, 1, 128)?;
        if filename.contains(['/', '\\']) || filename.starts_with('.') {
            return Err(FieldError::new(
                "filename",
                "filename_format",
                "filename must be a plain file name, without folders, not starting with a dot",
            )
            .into());
        }
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let Some((mime, magic)) = FORMATS.iter().find(|(m, _)| *m == mime) else {
            return Err(FieldError::new(
                "Content-Type",
                "unsupported_format",
                "documents are accepted as PDF, OFD, PNG, JPEG, DOCX or XLSX",
            )
            .into());
        };
        if content.is_empty() {
            return Err(FieldError::new("body", "required", "the document is empty").into());
        }
        if content.len() > MAX_DOCUMENT_BYTES {
            return Err(FieldError::new(
                "body",
                "too_large",
                format!("a document may have at most {} MiB", MAX_DOCUMENT_BYTES / 1024 / 1024),
            )
            .into());
        }
        if !content.starts_with(magic) {
            return Err(FieldError::new(
                "body",
                "content_mismatch",
                format!("the file's content is not {mime}; check that the right file was chosen"),
            )
            .into());
        }
        Ok(DocumentMeta { kind, filename, content_type: (*mime).to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_project_approval_is_accepted() {
        let m = DocumentMeta::parse("project_approval", "立项批复.pdf", "application/pdf", b"%PDF-1.7 ...")
            .unwrap();
        assert_eq!((m.kind, m.content_type.as_str()), (DocumentKind::ProjectApproval, "application/pdf"));
    }

    #[test]
    fn a_file_that_is_not_what_it_claims_is_refused() {
        let e = DocumentMeta::parse("other", "a.pdf", "application/pdf", b"MZ\x90\x00").unwrap_err();
        assert_eq!(e.first().code, "content_mismatch");
    }

    #[test]
    fn executables_and_unknown_formats_are_refused() {
        let e = DocumentMeta::parse("other", "a.exe", "application/x-msdownload", b"MZ").unwrap_err();
        assert_eq!(e.first().code, "unsupported_format");
    }

    #[test]
    fn a_filename_with_a_path_is_refused() {
        let e = DocumentMeta::parse("other", "../../etc/passwd", "application/pdf", b"%PDF-").unwrap_err();
        assert_eq!(e.first().code, "filename_format");
    }
}
