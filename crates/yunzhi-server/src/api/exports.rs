//! CSV exports for spreadsheets (`/api/v1/exports/…`), within the caller's
//! scope exactly as the lists are: a unit exports its own rows only.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use yunzhi_store::{Page, PageRequest, SystemRecord, UnitRecord};

use super::ApiQuery;
use super::systems::SystemQuery;
use crate::error::{ApiError, ApiResult};
use crate::extract::Caller;
use crate::state::AppState;

/// One CSV field, quoted as RFC 4180 wants.
fn field(out: &mut String, value: &str) {
    out.push('"');
    out.push_str(&value.replace('"', "\"\""));
    out.push('"');
}

/// A whole CSV document: a UTF-8 byte-order mark (so that Excel reads
/// Chinese correctly), a header row, then the rows.
fn csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::from("\u{feff}");
    let mut line = |cells: &[String]| {
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(&mut out, c);
        }
        out.push_str("\r\n");
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in rows {
        line(&row);
    }
    out
}

/// Every item of a paged list, page after page. (A macro rather than a
/// function taking a closure: a closure returning a borrowing future trips
/// the compiler's higher-ranked `Send` check in axum handlers.)
macro_rules! every_page {
    (|$page:ident| $fetch:expr) => {{
        let mut all = Vec::new();
        let mut $page = PageRequest { after: 0, limit: 500 };
        loop {
            let p: Page<_> = $fetch.await?;
            all.extend(p.items);
            match p.next_cursor.and_then(|c| c.parse().ok()) {
                Some(after) => $page.after = after,
                None => break,
            }
        }
        all
    }};
}

fn attachment(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Lang {
    /// `zh` (default) or `en` column headings.
    pub lang: Option<String>,
}

fn english(lang: &Option<String>) -> bool {
    lang.as_deref() == Some("en")
}

#[utoipa::path(get, path = "/api/v1/exports/systems.csv", tag = "exports", params(SystemQuery, Lang),
    responses((status = 200, content_type = "text/csv", description = "The systems the caller may see")))]
pub async fn systems(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SystemQuery>,
    ApiQuery(lang): ApiQuery<Lang>,
) -> ApiResult<Response> {
    let reader =
        caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read systems"))?;
    let filter = q.filter()?;
    let all: Vec<SystemRecord> = every_page!(|page| state.store.systems(reader.scope(), &filter, page));
    let header: &[&str] = if english(&lang.lang) {
        &[
            "id",
            "unit_id",
            "name",
            "mlps_level",
            "project_ref",
            "arch",
            "quota_vcpu",
            "quota_memory_gib",
            "quota_storage_gib",
            "quota_basis",
            "periodic_months",
            "state",
        ]
    } else {
        &[
            "系统编号",
            "单位编号",
            "系统名称",
            "等保级别",
            "立项文号",
            "架构",
            "配额vCPU",
            "配额内存GiB",
            "配额存储GiB",
            "配额依据",
            "周期性负载月份",
            "状态",
        ]
    };
    let rows = all.into_iter().map(|r| {
        let s = r.system;
        vec![
            r.id.to_string(),
            r.unit_id.to_string(),
            s.name,
            s.mlps_level.get().to_string(),
            s.project_ref.unwrap_or_default(),
            s.arch.code().to_owned(),
            s.quota.vcpu.to_string(),
            s.quota.memory_gib.to_string(),
            s.quota.storage_gib.to_string(),
            s.quota_basis,
            s.periodic_load
                .map(|p| p.months.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            s.state.code().to_owned(),
        ]
    });
    Ok(attachment("systems.csv", csv(header, rows)))
}

#[utoipa::path(get, path = "/api/v1/exports/units.csv", tag = "exports", params(Lang),
    responses((status = 200, content_type = "text/csv", description = "The units the caller may see")))]
pub async fn units(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(lang): ApiQuery<Lang>,
) -> ApiResult<Response> {
    let reader = caller.actor.reader().ok_or_else(|| ApiError::forbidden("this role does not read units"))?;
    let all: Vec<UnitRecord> = every_page!(|page| state.store.units(&reader, None, page));
    let header: &[&str] = if english(&lang.lang) {
        &["id", "name", "credit_code", "contacts"]
    } else {
        &["单位编号", "单位名称", "统一社会信用代码", "联系人"]
    };
    let rows = all.into_iter().map(|u| {
        let contacts =
            u.contacts.iter().map(|c| format!("{} {}", c.name, c.phone)).collect::<Vec<_>>().join("; ");
        vec![u.id.to_string(), u.name, u.credit_code, contacts]
    });
    Ok(attachment("units.csv", csv(header, rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_commas_survive_the_round_trip() {
        let out = csv(&["a"], std::iter::once(vec!["say \"hi\", then go".to_owned()]));
        assert_eq!(out, "\u{feff}\"a\"\r\n\"say \"\"hi\"\", then go\"\r\n");
    }
}
