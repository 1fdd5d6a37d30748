//! The console over plain HTTP: what must hold whatever the browser — form
//! tokens, whole pages and fragments, tenancy, safe redirects, cached
//! assets. The browser's own view is in `console_browser.rs`.

mod common;

use common::{Backend, DEMO_PASSWORD, TestServer, analyse, zombie_host};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

on_both_backends!(
    a_form_without_the_session_token_is_refused_and_changes_nothing,
    a_page_is_whole_for_a_browser_and_a_fragment_for_htmx,
    another_units_finding_is_not_found_in_the_console_either,
    sign_in_goes_back_to_the_page_asked_for_but_never_to_another_site,
    a_request_form_sent_twice_files_one_request_and_a_bad_one_keeps_what_was_typed,
    a_silent_agents_finding_charts_the_readings_received_each_hour,
);

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Signs in through the console's form; the cookies a browser would keep.
async fn sign_in(s: &TestServer, username: &str, next: &str) -> (String, reqwest::Response) {
    let r = client()
        .post(format!("{}/login", s.base))
        .form(&[("username", username), ("password", DEMO_PASSWORD), ("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signing in as {username}");
    let cookies: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    (cookies.join("; "), r)
}

async fn page(s: &TestServer, cookies: &str, path: &str) -> (u16, String) {
    let r = client().get(format!("{}{path}", s.base)).header(COOKIE, cookies).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form token on the page") + 20;
    html[at..at + 32].to_owned()
}

async fn a_form_without_the_session_token_is_refused_and_changes_nothing(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let (cookies, _) = sign_in(&s, "unit1_user", "/").await;
    let cookie = cookies.split("; ").find(|c| c.starts_with("yunzhi_session=")).unwrap().to_owned();
    let lang = |c: &str| client().post(format!("{}/lang", s.base)).header(COOKIE, c.to_owned());
    // Another site's form: no token. Refused, and the account keeps Chinese.
    let r = lang(&cookie).form(&[("lang", "en"), ("back", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("表单已过期"));
    let r = lang(&cookie)
        .form(&[("lang", "en"), ("_csrf", "0123456789abcdef0123456789abcdef")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let clerk = s.login("unit1_user").await;
    let me = s.get(&clerk, "/api/v1/users?limit=500").await;
    assert_eq!(me.status, 403, "a clerk does not list accounts");
    let (_, home) = page(&s, &cookie, "/").await;
    assert!(home.contains("<html lang=\"zh-CN\">"));
    // The page's own token is taken; so is htmx's header carrying it.
    let token = csrf_of(&home);
    let r =
        lang(&cookie).form(&[("lang", "en"), ("back", "/findings"), ("_csrf", &token)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/findings");
    assert!(
        r.headers().get_all(SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("yunzhi_lang=en;"))
    );
    let r = lang(&cookie).header("x-csrf-token", &token).form(&[("lang", "zh-CN")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // The switch is audited as the account's.
    let auditor = s.login("audit_admin").await;
    let log = s.all(&auditor, "/api/v1/audit").await;
    assert_eq!(log.iter().filter(|e| e["action"] == "account.locale_set").count(), 2);
    s.stop().await;
}

async fn a_page_is_whole_for_a_browser_and_a_fragment_for_htmx(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let (cookies, _) = sign_in(&s, "office", "/").await;
    let whole = client().get(format!("{}/findings", s.base)).header(COOKIE, &cookies).send().await.unwrap();
    let csp = whole.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let whole = whole.text().await.unwrap();
    assert!(whole.starts_with("<!doctype html>") && whole.contains("<nav"));
    let boosted = client()
        .get(format!("{}/findings", s.base))
        .header(COOKIE, &cookies)
        .header("hx-request", "true")
        .header("hx-boosted", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(boosted.contains("<nav"), "a boosted link gets the whole page");
    let part = client()
        .get(format!("{}/findings?kind=zombie", s.base))
        .header(COOKIE, &cookies)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!part.contains("<html") && !part.contains("<nav") && part.contains("id=\"findings-results\""));
    // Without a session, htmx is told to send the whole browser to sign in.
    let r = client().get(format!("{}/findings", s.base)).header("hx-request", "true").send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["hx-redirect"], "/login?next=/findings");
    s.stop().await;
}

async fn another_units_finding_is_not_found_in_the_console_either(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let office = s.login("office").await;
    let found = s.all(&office, "/api/v1/findings?kind=zombie").await;
    let f = found.iter().find(|f| f["resource_id"] == host["id"]).unwrap();
    let path = format!("/findings/{}", f["id"]);
    let (own, _) = sign_in(&s, "unit1_user", "/").await;
    let (status, html) = page(&s, &own, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains(host["name"].as_str().unwrap()));
    assert!(!html.contains("id=\"review\""), "only the office reviews");
    let (other, _) = sign_in(&s, "unit2_user", "/").await;
    let (status, html) = page(&s, &other, &path).await;
    assert_eq!(status, 404);
    assert!(html.contains("不属于您的单位") && !html.contains(host["name"].as_str().unwrap()));
    // A clerk's review is refused by the API's own rule, as a page.
    let (_, mine) = page(&s, &own, "/").await;
    let r = client()
        .post(format!("{}{path}/review", s.base))
        .header(COOKIE, &own)
        .form(&[("decision", "dismiss"), ("comment", "不是僵尸"), ("_csrf", &csrf_of(&mine))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let f2 = s.get(&office, &format!("/api/v1/findings/{}", f["id"])).await.body;
    assert_eq!(f2["state"], "open");
    s.stop().await;
}

async fn sign_in_goes_back_to_the_page_asked_for_but_never_to_another_site(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let r = client().get(format!("{}/findings?state=all", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/login?next=/findings%3Fstate%3Dall");
    let (_, r) = sign_in(&s, "office", "/findings?state=all").await;
    assert_eq!(r.headers()[LOCATION], "/findings?state=all");
    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let (_, r) = sign_in(&s, "office", evil).await;
        assert_eq!(r.headers()[LOCATION], "/", "{evil}");
    }
    let session =
        r.headers().get_all(SET_COOKIE).iter().find(|v| v.to_str().unwrap().starts_with("yunzhi_session="));
    let session = session.unwrap().to_str().unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_kept_by_digest_and_revalidated_by_etag() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let login = client().get(format!("{}/login", s.base)).send().await.unwrap().text().await.unwrap();
    let at = login.find("/assets/console.css?v=").unwrap();
    let href = &login[at..at + login[at..].find('"').unwrap()];
    let r = client().get(format!("{}{href}", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let r = client()
        .get(format!("{}/assets/console.css", s.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["cache-control"], "no-cache", "without the digest, ask every time");
    let echarts = client().get(format!("{}/assets/echarts.min.js", s.base)).send().await.unwrap();
    assert_eq!(echarts.status(), 200);
    assert!(echarts.text().await.unwrap().len() > 500_000, "the vendored ECharts is embedded whole");
    let r = client().get(format!("{}/assets/nothing.js", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_nothing_serves_is_a_page_outside_the_api_and_a_problem_inside() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let r = client().get(format!("{}/no-such-page", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("页面不存在"));
    let r = client()
        .get(format!("{}/no-such-page", s.base))
        .header(COOKIE, "yunzhi_lang=en")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Not found"));
    let r = client().get(format!("{}/api/v1/no-such-thing", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    s.stop().await;
}

async fn a_request_form_sent_twice_files_one_request_and_a_bad_one_keeps_what_was_typed(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system =
        s.approved_system(&clerk, "区档案查询系统", (8, 16, 200), Some("青发改投〔2026〕90号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c4m8").await;
    let (cookies, _) = sign_in(&s, "unit1_user", "/").await;
    let (status, form) = page(&s, &cookies, &format!("/requests/new?system_id={system}&kind=new")).await;
    assert_eq!(status, 200);
    assert!(form.contains("id=\"quota-preview\""), "the quota effect is shown before sending");
    let at = form.find("name=\"once\" value=\"").unwrap() + 19;
    let once = form[at..at + form[at..].find('"').unwrap()].to_owned();
    let csrf = csrf_of(&form);
    let (system_s, host_s) = (system.to_string(), host.to_string());
    let send = |justification: &'static str| {
        client()
            .post(format!("{}/requests/new", s.base))
            .header(COOKIE, &cookies)
            .form(&[
                ("_csrf", csrf.as_str()),
                ("once", once.as_str()),
                ("system_id", system_s.as_str()),
                ("kind", "new"),
                ("item_0", host_s.as_str()),
                ("qty_0", "1"),
                ("justification", justification),
            ])
            .send()
    };
    // Without a justification: the form comes back with the error beside
    // the field and the item still chosen; nothing is filed.
    let r = send("").await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"justification-error\""), "{html}");
    assert!(html.contains(&format!("<option value=\"{host}\" selected>")));
    assert!(s.all(&clerk, &format!("/api/v1/requests?system_id={system}")).await.is_empty());
    // Sent twice (a double click): one request.
    let first = send("新系统上线").await.unwrap();
    assert_eq!(first.status(), 303);
    let second = send("新系统上线").await.unwrap();
    assert_eq!(second.status(), 303);
    assert_eq!(first.headers()[LOCATION], second.headers()[LOCATION]);
    assert_eq!(s.all(&clerk, &format!("/api/v1/requests?system_id={system}")).await.len(), 1);
    // Only the role whose turn it is sees the decision form.
    let request_page = first.headers()[LOCATION].to_str().unwrap().to_owned();
    let (_, mine) = page(&s, &cookies, &request_page).await;
    assert!(!mine.contains("id=\"decide\""));
    let (chief, _) = sign_in(&s, "infra_chief", "/").await;
    let (_, theirs) = page(&s, &chief, &request_page).await;
    assert!(!theirs.contains("id=\"decide\""), "not the chief's turn yet");
    let (ca, _) = sign_in(&s, "cloud_admin", "/").await;
    let (_, turn) = page(&s, &ca, &request_page).await;
    assert!(turn.contains("id=\"decide\""));
    s.stop().await;
}

/// An agent that reported once, three hours ago, and then fell silent: its
/// finding's page charts the readings received each hour of the last week,
/// the one hour with a reading and the silence after it.
async fn a_silent_agents_finding_charts_the_readings_received_each_hour(backend: Backend) {
    use serde_json::json;
    let s = TestServer::demo(backend).await;
    let admin = s.login("unit1_admin").await;
    let host = s
        .all(&admin, "/api/v1/resources?state=active")
        .await
        .into_iter()
        .find(|r| r["kind"] == "cloud_host")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let code = s.post(&admin, &format!("/api/v1/resources/{host}/enrollment"), json!(null)).await.expect(201);
    let sm3 = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0";
    let body =
        json!({"code": code.body["code"], "hostname": "web-01", "version": "0.1.0", "binary_sm3": sm3});
    let enrolled =
        s.send(reqwest::Method::POST, None, "/api/v1/agent/enroll", Some(&body), &[]).await.expect(201);
    let credential = enrolled.body["credential"].as_str().unwrap().to_owned();
    let at = s.state().now() - jiff::SignedDuration::from_mins(1);
    let reading = json!({"at": at.to_string(), "cpu_pct": 20.0, "memory_pct": 50.0, "disk_read_bps": 0.0,
        "disk_write_bps": 0.0, "net_rx_bps": 0.0, "net_tx_bps": 0.0, "sessions": 0, "listening": 3});
    let report = json!({"sequence": 1, "version": "0.1.0", "binary_sm3": sm3, "sent_at": at.to_string(), "samples": [reading]});
    s.post(&credential, "/api/v1/agent/report", report).await.expect(202);
    // Three hours pass without another report while the host runs.
    s.clock.advance(jiff::SignedDuration::from_hours(3));
    analyse(&s).await;
    let office = s.login("office").await;
    let finding = s
        .all(&office, "/api/v1/findings?kind=agent_silent")
        .await
        .into_iter()
        .find(|f| f["resource_id"] == host)
        .expect("the silent agent's finding");
    let (cookies, _) = sign_in(&s, "office", "/").await;
    let (status, html) = page(&s, &cookies, &format!("/findings/{}", finding["id"])).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-chart") && html.contains("近7天每小时收到的读数"), "{html}");
    // 168 hours, one of which holds the reading.
    let start = html.find("\"data\":[").expect("the chart's data") + 7;
    let data: Vec<f64> =
        serde_json::from_str(&html[start..start + html[start..].find(']').unwrap() + 1]).unwrap();
    assert_eq!((data.len(), data.iter().sum::<f64>()), (168, 1.0), "{data:?}");
    s.stop().await;
}
