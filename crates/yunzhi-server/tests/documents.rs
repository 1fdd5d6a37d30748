//! Evidence files: upload, list and download within the unit's scope.

mod common;

use common::{Backend, TestServer};
use reqwest::Method;

on_both_backends!(a_unit_files_its_project_approval_and_only_it_and_the_big_data_center_read_it);

async fn upload(
    s: &TestServer,
    token: &str,
    system: i64,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> common::Reply {
    s.post_bytes(token, &format!("/api/v1/systems/{system}/documents?{query}"), content_type, body).await
}

fn pdf(len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.extend((0..len.saturating_sub(9)).map(|i| (i % 251) as u8));
    v
}

const APPROVAL: &str = "kind=project_approval&filename=%E7%AB%8B%E9%A1%B9%E6%89%B9%E5%A4%8D.pdf";

async fn a_unit_files_its_project_approval_and_only_it_and_the_big_data_center_read_it(backend: Backend) {
    let s = TestServer::demo(backend).await;
    let clerk = s.login("unit1_user").await;
    let system = s.all(&clerk, "/api/v1/systems").await[0]["id"].as_i64().unwrap();
    let content = pdf(2 * 1024 * 1024);
    let up = upload(&s, &clerk, system, APPROVAL, "application/pdf", content.clone()).await.expect(201);
    assert_eq!(up.body["filename"], "立项批复.pdf");
    assert_eq!(up.body["size"], content.len());
    assert_eq!(up.body["sm3"].as_str().unwrap().len(), 64);
    let doc = up.body["id"].as_i64().unwrap();

    let list = s.all(&clerk, &format!("/api/v1/systems/{system}/documents")).await;
    assert_eq!(list.len(), 1);
    let got =
        s.client.get(format!("{}/api/v1/documents/{doc}", s.base)).bearer_auth(&clerk).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert!(got.headers()["content-disposition"].to_str().unwrap().contains("filename*=UTF-8''%E7%AB%8B"));
    assert_eq!(got.bytes().await.unwrap().to_vec(), content, "the same bytes come back");

    // Refusals, each naming its field.
    let r = upload(&s, &clerk, system, APPROVAL, "application/pdf", b"MZ\x90\x00not a pdf".to_vec())
        .await
        .expect(422);
    assert_eq!(
        (r.body["field"].as_str(), r.body["errors"][0]["code"].as_str()),
        (Some("body"), Some("content_mismatch"))
    );
    let r =
        upload(&s, &clerk, system, APPROVAL, "application/x-msdownload", b"MZ".to_vec()).await.expect(422);
    assert_eq!(r.body["field"], "Content-Type");
    let r = upload(&s, &clerk, system, "kind=selfie&filename=a.pdf", "application/pdf", pdf(100))
        .await
        .expect(422);
    assert_eq!(r.body["field"], "kind");
    let r = upload(&s, &clerk, system, "kind=other", "application/pdf", pdf(100)).await.expect(400);
    assert_eq!(r.code(), "bad_query");
    // An oversized file is refused from its Content-Length, before its bytes
    // are read (as a client that waits for `100 Continue` sees it).
    let status_line = s
        .post_declaring(
            &clerk,
            &format!("/api/v1/systems/{system}/documents?{APPROVAL}"),
            "application/pdf",
            21 * 1024 * 1024,
        )
        .await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");
    assert_eq!(s.all(&clerk, &format!("/api/v1/systems/{system}/documents")).await.len(), 1);

    // Another unit: as if nothing were there.
    let other = s.login("unit2_user").await;
    s.get(&other, &format!("/api/v1/systems/{system}/documents")).await.expect(404);
    s.send(Method::GET, Some(&other), &format!("/api/v1/documents/{doc}"), None, &[]).await.expect(404);
    upload(&s, &other, system, APPROVAL, "application/pdf", pdf(100)).await.expect(404);

    // The Big Data Center reads it; an approver does not upload.
    let chief = s.login("infra_chief").await;
    s.send(Method::GET, Some(&chief), &format!("/api/v1/documents/{doc}"), None, &[]).await.expect(200);
    upload(&s, &chief, system, APPROVAL, "application/pdf", pdf(100)).await.expect(403);

    let auditor = s.login("audit_admin").await;
    let trail = s
        .all(&auditor, &format!("/api/v1/audit?object_type=system&object_id={system}&action=document.upload"))
        .await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["after"]["sm3"], up.body["sm3"]);
    s.stop().await;
}
