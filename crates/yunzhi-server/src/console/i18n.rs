//! The console's words, in Chinese (the default) and English.
//!
//! Every string a page shows comes from a catalog (`i18n/zh-CN.json`,
//! `i18n/en.json`, flat objects of dotted keys), embedded in the binary;
//! templates hold markup only. Tests check that both catalogs have the
//! same keys and that every key a template or handler names exists.
//!
//! The language of a response is the `yunzhi_lang` cookie's, which the
//! console sets from the account's stored choice at sign-in and on every
//! switch; the middleware [`scope`] makes it the request's [`current`]
//! language, so that even an error page speaks it.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::OnceLock;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The BCP 47 tag, as stored with the account and sent in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(raw: &str) -> Option<Lang> {
        match raw {
            "zh-CN" | "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The language to offer a switch to.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Zh => include_str!("../../i18n/zh-CN.json"),
            Lang::En => include_str!("../../i18n/en.json"),
        }
    }

    /// The catalog; a catalog that does not parse is empty (and the
    /// catalogs' own test fails), so a page shows keys rather than crash.
    pub fn catalog(self) -> &'static HashMap<String, String> {
        static ZH: OnceLock<HashMap<String, String>> = OnceLock::new();
        static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
        let cell = match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        };
        cell.get_or_init(|| {
            serde_json::from_str(self.source()).unwrap_or_else(|e| {
                tracing::error!(lang = self.code(), error = %e, "the console's catalog does not parse");
                HashMap::new()
            })
        })
    }
}

/// The name of the cookie that carries the language.
pub const COOKIE: &str = "yunzhi_lang";

tokio::task_local! {
    static LANG: Lang;
}

/// The language of the request being served (Chinese outside a request).
pub fn current() -> Lang {
    LANG.try_with(|l| *l).unwrap_or_default()
}

/// Serves the request in the language of its `yunzhi_lang` cookie.
pub async fn scope(request: Request, next: Next) -> Response {
    let lang = super::cookie(request.headers(), COOKIE).and_then(|v| Lang::parse(&v)).unwrap_or_default();
    LANG.scope(lang, next.run(request)).await
}

/// A catalog to look words up in; templates call it `t`.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The request's language.
    pub fn current() -> Tr {
        Tr::new(current())
    }

    pub fn lang(&self) -> &'static str {
        self.lang.code()
    }

    /// The words for `key`; a missing key shows itself, so it is noticed.
    pub fn s<'k>(&self, key: &'k str) -> &'k str {
        self.lang.catalog().get(key).map(String::as_str).unwrap_or(key)
    }

    /// The words for `key` with `{name}` replaced by `value`.
    pub fn f(&self, key: &str, name: &str, value: impl Display) -> String {
        self.s(key).replace(&format!("{{{name}}}"), &value.to_string())
    }

    /// [`Tr::f`] with two values.
    pub fn f2(&self, key: &str, a: (&str, &dyn Display), b: (&str, &dyn Display)) -> String {
        self.s(key)
            .replace(&format!("{{{}}}", a.0), &a.1.to_string())
            .replace(&format!("{{{}}}", b.0), &b.1.to_string())
    }

    /// The name of a code of some kind (`kind.zombie`, `role.office`); the
    /// code itself when the catalog has no name for it.
    pub fn name(&self, prefix: &str, code: &str) -> String {
        let key = format!("{prefix}.{code}");
        self.lang.catalog().get(&key).cloned().unwrap_or_else(|| code.to_owned())
    }

    /// What a refusal says to a person: the catalog's words for its code
    /// (`error.<code>`), else the API's own detail, which is English.
    pub fn error(&self, code: &str, detail: &str) -> String {
        self.lang.catalog().get(&format!("error.{code}")).cloned().unwrap_or_else(|| detail.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn keys(lang: Lang) -> BTreeSet<&'static str> {
        lang.catalog().keys().map(String::as_str).collect()
    }

    #[test]
    fn both_catalogs_parse_and_have_the_same_keys() {
        let zh = keys(Lang::Zh);
        let en = keys(Lang::En);
        assert!(zh.len() > 50, "the Chinese catalog has {} keys", zh.len());
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh-CN: {only_zh:?}; only in en: {only_en:?}"
        );
    }

    #[test]
    fn no_entry_is_empty_and_the_english_has_no_chinese() {
        for lang in Lang::ALL {
            for (k, v) in lang.catalog() {
                assert!(!v.trim().is_empty(), "{}: {k} is empty", lang.code());
            }
        }
        // The switch names the other language in its own words.
        for (k, v) in Lang::En.catalog().iter().filter(|(k, _)| k.as_str() != "lang.switch") {
            assert!(!v.chars().any(is_cjk), "en: {k} holds Chinese: {v}");
        }
    }

    pub(crate) fn is_cjk(c: char) -> bool {
        matches!(c, '\u{3000}'..='\u{303f}' | '\u{4e00}'..='\u{9fff}' | '\u{ff00}'..='\u{ffef}')
    }

    /// Every key the templates and the console's code look up with
    /// `t.s`, `t.f` or `t.f2` (and the same through `tr`).
    fn used_keys() -> BTreeSet<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in ["templates", "src/console"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                texts.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
            }
        }
        let mut used = BTreeSet::new();
        for text in texts {
            for opener in ["t.s(\"", "t.f(\"", "t.f2(\"", "tr.s(\"", "tr.f(\"", "tr.f2(\""] {
                for piece in text.split(opener).skip(1) {
                    if let Some(end) = piece.find('"') {
                        used.insert(piece[..end].to_owned());
                    }
                }
            }
        }
        used
    }

    #[test]
    fn every_key_the_console_names_is_in_the_catalogs() {
        let used = used_keys();
        assert!(used.len() > 30, "found only {} keys in use", used.len());
        let zh = keys(Lang::Zh);
        let missing: Vec<_> = used.iter().filter(|k| !zh.contains(k.as_str())).collect();
        assert!(missing.is_empty(), "keys named but not in the catalogs: {missing:?}");
    }

    #[test]
    fn templates_hold_no_chinese_words_of_their_own() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let found: String = text.chars().filter(|c| is_cjk(*c)).take(20).collect();
            assert!(found.is_empty(), "{} holds words of its own: {found}", path.display());
        }
    }

    #[test]
    fn a_placeholder_is_filled_in() {
        let english = Tr::new(Lang::En);
        assert_eq!(english.f("home.days_left", "n", 3), "3 working days left");
        assert_eq!(english.name("kind", "never-heard-of"), "never-heard-of");
    }
}
