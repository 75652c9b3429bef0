use super::*;

fn served(format: OutputFormat) -> Served {
    let bytes = b"<feed>hello</feed>".to_vec();
    Served {
        gzip: gzip(&bytes),
        hash: hex::encode(&Sha256::digest(&bytes)[..16]),
        bytes: Arc::new(bytes),
        modified: UNIX_EPOCH + Duration::from_secs(1_770_000_000),
        format,
    }
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn etag(r: &Response<Body>) -> String {
    r.headers()[header::ETAG].to_str().unwrap().to_string()
}

#[test]
fn conditional_requests_follow_rfc_9110() {
    let s = served(OutputFormat::Atom);
    let plain_tag = etag(&output(&s, &HeaderMap::new()));
    let gzip_tag = etag(&output(&s, &headers(&[(header::ACCEPT_ENCODING, "br, gzip")])));
    assert_ne!(plain_tag, gzip_tag, "each variant has its own validator");
    let status = |h: &[(header::HeaderName, &str)]| output(&s, &headers(h)).status();
    assert_eq!(
        status(&[(header::IF_NONE_MATCH, &plain_tag)]),
        StatusCode::NOT_MODIFIED
    );
    let listed = format!("\"other\", W/{plain_tag}");
    assert_eq!(
        status(&[(header::IF_NONE_MATCH, &listed)]),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(status(&[(header::IF_NONE_MATCH, "*")]), StatusCode::NOT_MODIFIED);
    // The gzip variant's tag does not validate the identity variant.
    assert_eq!(status(&[(header::IF_NONE_MATCH, &gzip_tag)]), StatusCode::OK);
    let since = httpdate::fmt_http_date(s.modified);
    let before = httpdate::fmt_http_date(s.modified - Duration::from_secs(1));
    assert_eq!(
        status(&[(header::IF_MODIFIED_SINCE, &since)]),
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(status(&[(header::IF_MODIFIED_SINCE, &before)]), StatusCode::OK);
    // If-None-Match, when present, decides alone.
    assert_eq!(
        status(&[
            (header::IF_NONE_MATCH, "\"stale\""),
            (header::IF_MODIFIED_SINCE, &since)
        ]),
        StatusCode::OK
    );
}

#[test]
fn bodies_types_and_policies_by_variant_and_format() {
    let atom = served(OutputFormat::Atom);
    let r = output(&atom, &HeaderMap::new());
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        OutputFormat::Atom.content_type()
    );
    assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    assert!(r.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
    let gz = output(&atom, &headers(&[(header::ACCEPT_ENCODING, "gzip;q=1")]));
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    let page = output(&served(OutputFormat::Html), &HeaderMap::new());
    assert_eq!(
        page.headers()[header::CONTENT_SECURITY_POLICY],
        HTML_CSP,
        "no script runs from a served page"
    );
}

#[test]
fn gzip_is_refused_with_q_zero() {
    let takes = |v: &str| accepts_gzip(&headers(&[(header::ACCEPT_ENCODING, v)]));
    assert!(takes("gzip") && takes("deflate, GZIP") && takes("*"));
    assert!(!takes("gzip;q=0") && !takes("gzip; q=0.0") && !takes("br"));
    assert!(!accepts_gzip(&HeaderMap::new()));
}

/// Routing: what each role answers, and what any role refuses before looking.
#[tokio::test(flavor = "multi_thread")]
async fn each_listener_serves_its_side_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        &dir.path().join("t.toml"),
        "[store]\npath = \"t.db\"\n[[output]]\npath = \"out/index.html\"\nformat = \"html\"\n",
    )
    .unwrap();
    let store = Store::open(&config.backend()).await.unwrap();
    let config = Arc::new(config);
    let server = Server::new(config.clone(), store.clone());
    server.publish(&[Ok(OutputReport {
        path: config.outputs[0].path.clone(),
        entries: 0,
        written: true,
        bytes: Arc::new(b"<!doctype html>".to_vec()),
        modified: SystemTime::now(),
        shown: Vec::new(),
        pending: false,
        deliveries: 0,
        hook_error: None,
    })]);
    let get = |role: Role, method: Method, path: &str| {
        let server = server.clone();
        let uri: Uri = path.parse().unwrap();
        async move {
            handle(
                State((server, role)),
                None,
                method,
                uri,
                HeaderMap::new(),
                Body::empty(),
            )
            .await
        }
    };
    for (role, path, status) in [
        (Role::Public, "/", StatusCode::OK),
        (Role::Public, "/index.html", StatusCode::OK),
        (Role::Public, "/healthz", StatusCode::NOT_FOUND),
        (Role::Admin, "/index.html", StatusCode::NOT_FOUND),
        (Role::Admin, "/metrics", StatusCode::OK),
        (Role::Both, "/healthz", StatusCode::OK),
        (Role::Both, "/", StatusCode::OK),
    ] {
        assert_eq!(
            get(role, Method::GET, path).await.status(),
            status,
            "{role:?} {path}"
        );
    }
    let post = get(Role::Both, Method::POST, "/").await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    let long = format!("/{}", "a".repeat(MAX_PATH));
    assert_eq!(
        get(Role::Public, Method::GET, &long).await.status(),
        StatusCode::URI_TOO_LONG
    );
    drop(server);
    store.close().await;
}
