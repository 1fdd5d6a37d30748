//! Keyset pagination: `?limit=&cursor=` answered with `next_cursor`.

use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// A checked page request: the cursor is the last id already seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub after: i64,
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { after: 0, limit: DEFAULT_LIMIT }
    }
}

impl PageRequest {
    /// Fetch one more than asked, to know whether there is a next page.
    pub(crate) fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows in id order.
    pub(crate) fn from_rows(mut rows: Vec<T>, req: PageRequest, id: impl Fn(&T) -> i64) -> Page<T> {
        let more = rows.len() > req.limit as usize;
        rows.truncate(req.limit as usize);
        let next_cursor = if more { rows.last().map(|r| id(r).to_string()) } else { None };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

impl PageRequest {
    /// Checks `?limit=&cursor=` as a client sent them.
    pub fn parse(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, yunzhi_domain::Invalid> {
        use yunzhi_domain::FieldError;
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) if (1..=i64::from(MAX_LIMIT)).contains(&l) => l as u32,
            Some(l) => {
                return Err(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("limit must be between 1 and {MAX_LIMIT}, it is {l}"),
                )
                .into());
            }
        };
        let after = match cursor {
            None | Some("") => 0,
            Some(c) => c.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                FieldError::new("cursor", "cursor_format", "cursor must be a next_cursor this API returned")
            })?,
        };
        Ok(PageRequest { after, limit })
    }
}
