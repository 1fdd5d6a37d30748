//! The console in a real headless Chromium against the real server: what a
//! clerk, the office and an approver do in the browser, in Chinese and in
//! English, with no error in the browser's console. Screenshots of the key
//! pages are kept in `target/screenshots` (see `browser::screenshot_dir`).

mod browser;
mod common;

use browser::Browser;
use common::{Backend, DEMO_PASSWORD, TestServer, analyse, zombie_host};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_signs_in_and_sees_its_work_and_a_locked_account_is_told_until_when() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.goto("/").await;
    // Not signed in: the sign-in page, in Chinese.
    b.wait_for_path("/login").await;
    assert_eq!(b.find("html").await.attr("lang").await.unwrap().as_deref(), Some("zh-CN"));
    b.screenshot("sign-in").await;
    b.sign_in("office", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.wait_for_text("待审核的效能发现").await;
    b.wait_for_text("待批准的暂停建议").await;
    b.find("#home-findings").await;
    b.screenshot("home-office").await;
    b.click("#sign-out").await;
    b.wait_for_path("/login").await;

    // Five wrong passwords lock the account; the page says until when.
    for _ in 0..4 {
        b.sign_in("unit2_user", "not-the-password").await;
        assert!(b.text("#password-error").await.contains("用户名或密码错误"));
        assert_eq!(b.find("#username").await.prop("value").await.unwrap().as_deref(), Some("unit2_user"));
    }
    b.sign_in("unit2_user", "not-the-password").await;
    let message = b.text("#form-error").await;
    assert!(message.contains("已锁定至"), "{message}");
    // Even the right password is refused while locked.
    b.sign_in("unit2_user", DEMO_PASSWORD).await;
    assert!(b.text("#form-error").await.contains("已锁定至"));
    b.screenshot("sign-in-locked").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_confirms_a_zombie_finding_into_a_warning_and_accepts_the_units_explanation() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let host = zombie_host(&s).await;
    analyse(&s).await;
    let name = host["name"].as_str().unwrap().to_owned();
    let b = Browser::start(&s.base).await;
    b.sign_in("office", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/findings']").await;
    b.wait_for_path("/findings").await;
    // Narrowing to zombies updates the table in place and the address.
    b.find("#filter-kind").await.select_by_value("zombie").await.unwrap();
    b.wait_for_path("/findings?kind=zombie&state=open").await;
    let row = format!("//table[@id='findings-table']//a[normalize-space(text())='{name}']");
    let link = b
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(fantoccini::Locator::XPath(&row))
        .await
        .expect("the zombie host in the table");
    link.click().await.unwrap();
    b.find("#finding-summary").await;
    // The evidence: its figures and a drawn chart of the thirty days.
    assert!(b.text("#finding-facts").await.contains("30"));
    b.find(".chart[data-drawn] svg").await;
    b.screenshot("finding-evidence").await;
    let finding_page = b.wait_for_path_under("/findings/").await;
    // The host's system shows its utilisation over the same days.
    b.goto(&format!("/systems/{}", host["system_id"])).await;
    b.find("#system-resources").await;
    b.find(".chart[data-drawn] svg").await;
    b.goto(&finding_page).await;

    // Sending the review without a decision keeps the comment and says why.
    b.type_into("#comment", "连续30天无人使用，请整改").await;
    b.click("#review-submit").await;
    assert!(b.text("#decision-error").await.contains("请选择确认或驳回"));
    assert_eq!(
        b.find("#comment").await.prop("value").await.unwrap().as_deref(),
        Some("连续30天无人使用，请整改")
    );
    b.click("#decision-confirm").await;
    b.click("#review-submit").await;
    b.wait_for_text("已向单位发出整改通知").await;
    assert_eq!(b.text("#finding-state").await, "已确认");
    b.click("#sign-out").await;

    // The unit's administrator finds the warning on the home page, with
    // the office's words and the evidence, and explains.
    b.sign_in("unit1_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.find("#home-warnings a").await;
    // The inbox has the notice, which leads to the warning.
    b.find("#unread-badge").await;
    b.click("nav a[href='/notifications']").await;
    b.wait_for_text("整改通知").await;
    b.find("#inbox li.unread button").await.click().await.unwrap();
    b.find("#warning-requirement").await;
    b.wait_for_path_under("/warnings/").await;
    assert!(b.text("#warning-requirement").await.contains("连续30天无人使用"));
    b.find(".chart[data-drawn] svg").await;
    // The system's documents are offered as evidence for the answer.
    let unit_admin = s.login("unit1_admin").await;
    let system =
        s.all(&unit_admin, "/api/v1/warnings").await.iter().find(|w| w["resource_id"] == host["id"]).unwrap()
            ["system_id"]
            .as_i64()
            .unwrap();
    let doc = s
        .post_bytes(
            &unit_admin,
            &format!("/api/v1/systems/{system}/documents?kind=other&filename=enrolment-season.pdf"),
            "application/pdf",
            b"%PDF-1.7\nMarch enrolment".to_vec(),
        )
        .await
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let here = b.wait_for_path_under("/warnings/").await;
    b.goto(&here).await;
    b.click(&format!("#doc-{doc}")).await;
    b.click("#answer-explained").await;
    b.click("#answer-submit").await;
    b.find("#answer-comment-error").await;
    b.type_into("#answer-comment", "该系统为年度报名系统，每年三月集中使用，已申报周期性负载").await;
    b.click("#answer-submit").await;
    b.wait_for_text_of("#warning-state", Some("已答复")).await;
    assert_eq!(b.text("#warning-history .cited-document").await, "enrolment-season.pdf");
    b.screenshot("warning-answered").await;
    let warning_page = b.wait_for_path_under("/warnings/").await;
    b.click("#sign-out").await;

    // The office accepts the explanation: the warning is settled.
    b.sign_in("office", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.goto(&warning_page).await;
    b.click("#action-accept_explanation").await;
    b.type_into("#action-comment", "说明属实，予以采纳").await;
    b.click("#action-submit").await;
    b.wait_for_text_of("#warning-state", Some("已关闭")).await;
    b.finish().await;

    let clerk = s.login("unit1_user").await;
    let warnings = s.all(&clerk, "/api/v1/warnings").await;
    let w = warnings.iter().find(|w| w["resource_id"] == host["id"]).expect("a warning to the unit");
    assert_eq!(w["state"], "closed");
    assert_eq!(w["answer"], "explained");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_files_a_request_the_three_levels_approve_it_and_an_expansion_past_120_percent_is_refused() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let clerk = s.login("unit1_user").await;
    let system =
        s.approved_system(&clerk, "区图书馆预约系统", (8, 16, 200), Some("青发改投〔2026〕88号")).await;
    let host = s.catalog_id(&clerk, "ecs.x86.c4m8").await;

    let b = Browser::start(&s.base).await;
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/requests']").await;
    b.click("#new-request").await;
    b.find("#system_id").await.select_by_value(&system.to_string()).await.unwrap();
    // Choosing the system re-renders the form with its catalog and quota.
    b.find("#quota-preview").await;
    b.find("#item_0").await.select_by_value(&host.to_string()).await.unwrap();
    b.type_into("#qty_0", "2").await;
    b.type_into("#justification", "读者预约量增长，需新增两台云主机").await;
    // The quota effect follows what is typed: two 4-vCPU hosts fill the 8.
    b.wait_for_text("100 %").await;
    b.screenshot("request-form").await;
    b.click("#submit-request").await;
    b.find("#request-state").await;
    assert_eq!(b.text("#request-state").await, "审批中");
    assert_eq!(b.text("#request-turn").await, "云资源管理员");
    let path = b.wait_for_path_under("/requests/").await;
    let id: i64 = path.trim_start_matches("/requests/").parse().expect("the new request's page");
    // The clerk attaches the feasibility study; a file that only claims to
    // be a PDF is refused with the reason.
    let files = tempfile::tempdir().unwrap();
    let fake = files.path().join("伪造.pdf");
    std::fs::write(&fake, b"MZ not a pdf at all").unwrap();
    b.find("#doc-file").await.send_keys(fake.to_str().unwrap()).await.unwrap();
    b.click("#doc-upload").await;
    let refused = b.text("#documents-error").await;
    assert!(refused.contains("格式"), "{refused} at {}", b.path().await);
    let study = files.path().join("可研报告.pdf");
    std::fs::write(&study, b"%PDF-1.4\n% feasibility study\n%%EOF\n").unwrap();
    b.find("#doc-kind").await.select_by_value("quota_basis").await.unwrap();
    b.find("#doc-file").await.send_keys(study.to_str().unwrap()).await.unwrap();
    b.click("#doc-upload").await;
    b.find("#documents-notice").await;
    assert!(b.text("#documents-list").await.contains("可研报告.pdf"));
    b.click("#sign-out").await;

    // The three levels approve in turn, each from the request's page.
    for (who, next) in
        [("cloud_admin", Some("基础设施科科长")), ("infra_chief", Some("分管领导")), ("bdc_leader", None)]
    {
        b.sign_in(who, DEMO_PASSWORD).await;
        b.wait_for_path("/").await;
        // The request waits in the approver's queue on the home page.
        b.find(&format!("#home-queue a[href='/requests/{id}']")).await.click().await.unwrap();
        b.click("#decision-approve").await;
        b.click("#decision-submit").await;
        // The page comes back with the next level's turn (none after the last).
        b.wait_for_text_of("#request-turn", next).await;
        if who == "infra_chief" {
            b.screenshot("request-approval").await;
        }
        b.click("#sign-out").await;
    }

    // The jobs deliver the hosts; the clerk sees them on the request.
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    s.wait_for_request(&clerk, id, "fulfilled").await;
    b.goto(&format!("/requests/{id}")).await;
    assert_eq!(b.text("#request-state").await, "已交付");
    let delivered = b.text("#request-resources").await;
    assert_eq!(delivered.matches("运行中").count(), 2, "{delivered}");

    // One more host would take the system to 150 % of its quota: refused
    // on the form, with the limit and the article, and nothing is filed.
    b.goto("/requests/new").await;
    b.find("#system_id").await.select_by_value(&system.to_string()).await.unwrap();
    b.find("#quota-preview").await;
    b.find("#kind").await.select_by_value("expansion").await.unwrap();
    b.wait_for_text("120").await;
    b.find("#item_0").await.select_by_value(&host.to_string()).await.unwrap();
    b.type_into("#qty_0", "1").await;
    b.type_into("#justification", "高峰期扩容").await;
    b.find("#quota-refusal").await;
    b.click("#submit-request").await;
    let message = b.text("#items-error").await;
    assert!(message.contains("120%") && message.contains("第10条"), "{message}");
    assert_eq!(b.find("#justification").await.prop("value").await.unwrap().as_deref(), Some("高峰期扩容"));
    assert_eq!(b.find("#qty_0").await.prop("value").await.unwrap().as_deref(), Some("1"));
    b.screenshot("expansion-refused").await;
    b.finish().await;
    let filed = s.all(&clerk, &format!("/api/v1/requests?system_id={system}")).await;
    assert_eq!(filed.len(), 1, "the refused expansion was not filed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_registers_a_system_the_big_data_center_approves_it_and_its_terms_are_then_locked() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/systems']").await;
    b.click("#register-system").await;
    b.type_into("#name", "区社区养老服务平台").await;
    b.find("#mlps_level").await.select_by_value("4").await.unwrap();
    b.click("#classified").await;
    b.type_into("#vcpu", "16").await;
    b.type_into("#memory_gib", "32").await;
    b.type_into("#storage_gib", "500").await;
    b.type_into("#quota_basis", "可研报告第五章资源测算").await;
    b.type_into("#periodic", "每年重阳节前后集中办理").await;
    b.type_into("#months", "10").await;
    b.click("#system-submit").await;
    // Both refusals of Art. 5, each beside its field; what was typed stays.
    assert!(b.text("#mlps_level-error").await.contains("第5条"));
    assert!(b.text("#classified-error").await.contains("涉密"));
    assert_eq!(
        b.find("#quota_basis").await.prop("value").await.unwrap().as_deref(),
        Some("可研报告第五章资源测算")
    );
    b.screenshot("system-refused").await;
    b.find("#mlps_level").await.select_by_value("2").await.unwrap();
    b.click("#classified").await;
    b.type_into("#project_ref", "青发改投〔2026〕101号").await;
    b.click("#system-submit").await;
    b.wait_for_text_of("#system-state", Some("草稿")).await;
    let page = b.wait_for_path_under("/systems/").await;
    b.click("#sign-out").await;

    // The Big Data Center approves the registration.
    b.sign_in("cloud_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.goto(&page).await;
    b.click("#edit-system").await;
    b.find("#state").await.select_by_value("approved").await.unwrap();
    b.click("#system-submit").await;
    b.wait_for_text_of("#system-state", Some("已批准")).await;
    b.click("#sign-out").await;

    // Now the unit may not change its quota: it asks for an expansion.
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.goto(&format!("{page}/edit")).await;
    b.type_into("#vcpu", "32").await;
    b.click("#system-submit").await;
    assert!(b.text("#quota-error").await.contains("扩容"));
    b.type_into("#vcpu", "16").await;
    b.type_into("#description", "为全区老年人提供线上服务").await;
    b.click("#system-submit").await;
    b.wait_for_text("为全区老年人提供线上服务").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_switches_to_english_and_the_choice_follows_the_account() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_text("本单位信息系统").await;
    b.click("#switch-lang").await;
    b.wait_for_text("Our information systems").await;
    assert_eq!(b.find("html").await.attr("lang").await.unwrap().as_deref(), Some("en"));
    assert!(b.text("nav").await.contains("Home"));
    b.screenshot("home-unit-en").await;
    b.finish().await;

    // Another browser, nothing remembered in it: the account's choice holds.
    let b = Browser::start(&s.base).await;
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_text("Our information systems").await;
    b.click("#switch-lang").await;
    b.wait_for_text("本单位信息系统").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_enrols_a_second_factor_by_qr_code_and_changes_the_password() {
    let s = TestServer::demo(Backend::Sqlite).await;
    // Not a demo account: demo accounts skip the second factor in demo mode.
    let sys = s.login("sys_admin").await;
    let unit = s.get(&s.login("unit1_user").await, "/api/v1/session").await.body["unit_id"].clone();
    let body = serde_json::json!({"username": "clerk_wang", "display_name": "王经办", "password": "Staff-Pass-2026",
        "roles": ["unit_user"], "unit_id": unit});
    s.post(&sys, "/api/v1/users", body).await.expect(201);

    let b = Browser::start(&s.base).await;
    b.sign_in("clerk_wang", "Staff-Pass-2026").await;
    b.wait_for_path("/").await;
    b.click("#account-link").await;
    assert_eq!(b.text("#totp-status").await, "未启用");
    b.find("img.qr").await;
    b.screenshot("account-totp").await;
    let secret = b.text("#totp-secret").await;
    let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).expect("a base32 seed on the page");
    let now = yunzhi_domain::clock::Clock::now(s.clock.as_ref()).as_second();
    b.type_into("#totp-password", "Staff-Pass-2026").await;
    b.type_into("#totp-code", "000000").await;
    b.click("#totp-submit").await;
    b.find("#totp-code-error").await;
    // The page offers the same seed again, so the phone's entry still works.
    assert_eq!(b.text("#totp-secret").await, secret);
    b.type_into("#totp-password", "Staff-Pass-2026").await;
    b.type_into("#totp-code", &yunzhi_server::auth::totp_code(&raw, now)).await;
    b.click("#totp-submit").await;
    b.find("#account-done").await;
    assert_eq!(b.text("#totp-status").await, "已启用");

    // The password: the repeat must match and the current one is asked.
    b.type_into("#current_password", "Staff-Pass-2026").await;
    b.type_into("#new_password", "Brand-New-Pass-2026").await;
    b.type_into("#repeat_password", "Brand-New-Pass-2027").await;
    b.click("#password-submit").await;
    assert!(b.text("#repeat_password-error").await.contains("不一致"));
    b.type_into("#current_password", "Not-My-Pass-2026").await;
    b.type_into("#new_password", "Brand-New-Pass-2026").await;
    b.type_into("#repeat_password", "Brand-New-Pass-2026").await;
    b.click("#password-submit").await;
    assert!(b.text("#current_password-error").await.contains("密码不正确"));
    b.type_into("#current_password", "Staff-Pass-2026").await;
    b.type_into("#new_password", "Brand-New-Pass-2026").await;
    b.type_into("#repeat_password", "Brand-New-Pass-2026").await;
    b.click("#password-submit").await;
    assert!(b.text("#account-done").await.contains("密码已修改"));
    b.click("#sign-out").await;

    // Signing in now asks for the app's code, beside its field.
    b.sign_in("clerk_wang", "Brand-New-Pass-2026").await;
    assert!(b.text("#totp-error").await.contains("6位动态验证码"));
    b.type_into("#password", "Brand-New-Pass-2026").await;
    b.type_into("#totp", &yunzhi_server::auth::totp_code(&raw, now + 30)).await;
    b.click("#sign-in").await;
    b.wait_for_path("/").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_demo_mode_the_system_administrator_moves_the_clock_from_the_banner() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    assert!(b.text(".demo-banner").await.contains("演示模式"));
    assert!(b.client.find(fantoccini::Locator::Css("#demo-today")).await.is_err(), "only sys_admin moves it");
    b.click("#sign-out").await;
    b.sign_in("sys_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    let today = yunzhi_domain::clock::Clock::today(s.clock.as_ref());
    let later = today.checked_add(jiff::Span::new().days(10)).unwrap().to_string();
    // A date input takes keys in the browser's locale; set it as a script would.
    b.client
        .execute("document.getElementById('demo-today').value = arguments[0];", vec![later.clone().into()])
        .await
        .unwrap();
    b.click("#demo-move").await;
    b.wait_for_text(&later).await;
    assert_eq!(yunzhi_domain::clock::Clock::today(s.clock.as_ref()).to_string(), later);
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_big_data_center_sees_capacity_per_platform_and_architecture_resources_and_jobs() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("cloud_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/platforms']").await;
    let by_arch = b.text("#capacity-by-arch").await;
    assert!(by_arch.contains("x86") && by_arch.contains("ARM"), "{by_arch}");
    b.find(".chart[data-drawn] svg").await;
    let ca = s.login("cloud_admin").await;
    for p in s.all(&ca, "/api/v1/platforms").await {
        assert!(b.text("#platforms-table").await.contains(p["name"].as_str().unwrap()));
    }
    b.screenshot("platforms").await;
    b.click("nav a[href='/resources']").await;
    b.find("#resources-table").await;
    b.click("nav a[href='/jobs']").await;
    b.find(".tabs").await;
    b.click(".tabs a[href='/jobs?state=done']").await;
    b.find("#jobs-table").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_admin_reads_the_log_newest_first_under_the_chain_status() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("audit_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    // The audit admin reads the log and nothing else.
    let nav = b.text("nav").await;
    assert!(nav.contains("审计日志") && !nav.contains("信息系统"), "{nav}");
    b.click("nav a[href='/audit']").await;
    assert!(b.text("#chain-status").await.contains("哈希链完整"));
    let first_row = b.text("#audit-table tbody tr").await;
    assert!(first_row.contains("audit_admin") && first_row.contains("session.login"), "{first_row}");
    b.type_into("#filter-action", "session.login").await;
    b.click("#audit-filter").await;
    b.wait_for_path("/audit?actor=&action=session.login&object_type=").await;
    b.screenshot("audit-log").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_administrator_loads_next_years_calendar_and_deadlines_use_it() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("sys_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/calendar']").await;
    let years = b.text("#years-table").await;
    assert!(years.contains("2026"), "{years}");
    b.click("#load-year").await;
    let year: i16 = b
        .wait_for_path_under("/calendar/")
        .await
        .trim_start_matches("/calendar/")
        .parse()
        .expect("a year's page");
    b.find("#year-unknown").await;
    b.type_into("#source", "国务院办公厅关于节假日安排的通知").await;
    b.type_into("#holidays", &format!("{year}-01-01\n{year}-02-30")).await;
    b.click("#calendar-submit").await;
    let message = b.text("#holidays-error").await;
    assert!(!message.is_empty());
    // What was typed is still there to correct.
    assert!(b.find("#holidays").await.prop("value").await.unwrap().unwrap().contains("-02-30"));
    b.type_into("#holidays", &format!("{year}-01-01\n{year}-10-01\n{year}-10-02")).await;
    b.type_into("#workdays", &format!("{year}-09-26")).await;
    b.click("#calendar-submit").await;
    b.find("#calendar-saved").await;
    b.find(&format!("#months .day.holiday[title='{year}-10-01']")).await;
    b.find(&format!("#months .day.workday[title='{year}-09-26']")).await;
    b.screenshot("calendar").await;
    b.finish().await;
    // Deadlines into that year are counted on it now.
    let path = format!("/api/v1/calendar/working-days/count?from={year}-09-30&to={year}-10-08");
    let r = s.send(reqwest::Method::GET, None, &path, None, &[]).await.expect(200);
    // Counted by hand: the weekdays of Oct 1–8 but the two holidays.
    let expected = (3..=8)
        .map(|d| jiff::civil::date(year, 10, d))
        .filter(|d| !matches!(d.weekday(), jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday))
        .count();
    assert_eq!(r.body["days"], expected, "the loaded holidays are off");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_1366_screen_and_a_tablet_and_the_keyboard_reaches_the_content_first() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("unit1_user", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    // The first Tab lands on "skip to content".
    b.find("body").await.send_keys("\u{E004}").await.unwrap();
    let focused = b.client.execute("return document.activeElement.className;", vec![]).await.unwrap();
    assert_eq!(focused, serde_json::json!("skip"));
    let clerk_pages =
        ["/", "/systems", "/requests", "/requests/new", "/warnings", "/account", "/notifications"];
    let bdc_pages = ["/", "/platforms", "/jobs", "/resources", "/findings", "/requests"];
    for (who, pages) in [("unit1_user", &clerk_pages[..]), ("cloud_admin", &bdc_pages[..])] {
        if who != "unit1_user" {
            b.click("#sign-out").await;
            b.sign_in(who, DEMO_PASSWORD).await;
            b.wait_for_path("/").await;
        }
        for (w, h) in [(1366, 768), (768, 1024)] {
            b.client.set_window_size(w, h).await.unwrap();
            for p in pages {
                b.goto(p).await;
                b.find("main h1").await;
                assert!(b.fits_the_width().await, "{p} is wider than {w}×{h} for {who}");
            }
        }
        b.client.set_window_size(1366, 768).await.unwrap();
    }
    b.client.set_window_size(768, 1024).await.unwrap();
    b.goto("/platforms").await;
    b.find(".chart[data-drawn] svg").await;
    b.screenshot("platforms-tablet").await;
    b.finish().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_administrator_tunes_the_efficiency_rules_and_the_office_reads_them() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.sign_in("office", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/settings']").await;
    assert!(b.text("#rule-low_utilization").await.contains("Trusted Advisor"));
    assert!(b.client.find(fantoccini::Locator::Css("#settings-submit")).await.is_err(), "read only");
    b.click("#sign-out").await;
    b.sign_in("sys_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.goto("/settings").await;
    assert_eq!(
        b.find("#low_utilization-net_max_bytes").await.prop("value").await.unwrap().as_deref(),
        Some("5")
    );
    b.type_into("#zombie-window_days", "thirty").await;
    b.click("#settings-submit").await;
    b.find("#rule-zombie .field-error").await;
    b.type_into("#zombie-window_days", "45").await;
    b.type_into("#low_utilization-net_max_bytes", "8").await;
    b.click("#settings-submit").await;
    b.find("#settings-saved").await;
    b.finish().await;
    let t = s.login("office").await;
    let rules = s.get(&t, "/api/v1/efficiency/rules").await.expect(200).body;
    assert_eq!(rules["zombie"]["window_days"], 45);
    assert_eq!(rules["low_utilization"]["net_max_bytes"], 8 * 1024 * 1024);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_administrator_makes_an_approver_whose_second_factor_is_scanned_on_the_spot() {
    let s = TestServer::demo(Backend::Sqlite).await;
    // unit2_user locked out by five wrong passwords.
    for _ in 0..5 {
        s.login_with("unit2_user", "wrong-password", None).await;
    }
    let b = Browser::start(&s.base).await;
    b.sign_in("sys_admin", DEMO_PASSWORD).await;
    b.wait_for_path("/").await;
    b.click("nav a[href='/users']").await;
    b.click("#unlock-unit2_user").await;
    // The page comes back without the lock (and so without its button).
    b.wait_for_text_of("#unlock-unit2_user", None).await;
    // Separation of duties: the audit admin holds no other role.
    b.type_into("#new-username", "chief_zhao").await;
    b.type_into("#new-display_name", "赵科长").await;
    b.type_into("#new-password", "Chief-Pass-2026").await;
    b.click("#role-infra_chief").await;
    b.click("#role-audit_admin").await;
    b.click("#new-user-submit").await;
    b.find("#new-roles-error").await;
    assert_eq!(b.find("#new-username").await.prop("value").await.unwrap().as_deref(), Some("chief_zhao"));
    b.click("#role-audit_admin").await;
    b.type_into("#new-password", "Chief-Pass-2026").await;
    b.click("#new-user-submit").await;
    b.find("#user-created img.qr").await;
    let secret = b.text("#new-user-secret").await;
    b.finish().await;
    // The new chief signs in with the scanned seed's code.
    s.login_with("unit2_user", DEMO_PASSWORD, None).await.expect(201);
    let raw = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let now = yunzhi_domain::clock::Clock::now(s.clock.as_ref()).as_second();
    let code = yunzhi_server::auth::totp_code(&raw, now);
    s.login_with("chief_zhao", "Chief-Pass-2026", Some(&code)).await.expect(201);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_with_a_notice_and_sign_in_returns_to_the_page() {
    let s = TestServer::demo(Backend::Sqlite).await;
    let b = Browser::start(&s.base).await;
    b.goto("/findings?state=all").await;
    b.wait_for_path("/login?next=/findings%3Fstate%3Dall").await;
    b.type_into("#username", "cloud_admin").await;
    b.type_into("#password", DEMO_PASSWORD).await;
    b.click("#sign-in").await;
    b.wait_for_path("/findings?state=all").await;
    s.clock.advance(jiff::SignedDuration::from_mins(31));
    b.goto("/").await;
    b.find("#expired-notice").await;
    assert!(b.text("#expired-notice").await.contains("过期"));
    b.finish().await;
    s.stop().await;
}
