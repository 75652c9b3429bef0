use std::path::Path;

use reqwest::dns::{Name, Resolve, Resolving};

use super::*;

/// A resolver that knows no names, as when DNS fails (the suite sends nothing beyond
/// loopback, so the failure is made here rather than asked of a real resolver).
struct NoSuchHost;

impl Resolve for NoSuchHost {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            Err(format!("failed to lookup address information: Name or service not known ({host})").into())
        })
    }
}

/// A plain GET of `url` as an operator's feed.
async fn get(fetcher: &Fetcher, url: &Url) -> Result<Fetched, FetchError> {
    let request = Request {
        url,
        validators: &Validators::default(),
        headers: &[],
        trust: Trust::Operator,
        timeout: None,
        proxy: None,
    };
    fetcher.fetch(request).await
}

/// HTTPS goes through rustls with its provider installed: a server that answers a TLS
/// hello with plain HTTP is a handshake error, never a panic for want of cryptography.
#[tokio::test]
async fn https_speaks_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut hello = [0u8; 5];
        socket.read_exact(&mut hello).await.unwrap();
        // A TLS record: handshake (22), version 3.x.
        let tls = hello[0] == 22 && hello[1] == 3;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
        tls
    });
    let config = crate::config::Config::parse(
        Path::new("/t/tributary.toml"),
        "[poll]\nallow_networks = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let fetcher = Fetcher::new(&config.poll).unwrap();
    let url = Url::parse(&format!("https://127.0.0.1:{port}/feed")).unwrap();
    let err = get(&fetcher, &url).await.unwrap_err();
    assert!(server.await.unwrap(), "the client sent a TLS hello");
    assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_transient_connection_error() {
    let config = crate::config::Config::parse(
        Path::new("/t/tributary.toml"),
        "[[feed]]\nurl = \"http://feeds.example.invalid/rss\"\n",
    )
    .unwrap();
    let mut fetcher = Fetcher::new(&config.poll).unwrap();
    fetcher.client = reqwest::Client::builder()
        .dns_resolver(Arc::new(NoSuchHost))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = Url::parse("http://feeds.example.invalid/rss").unwrap();
    let err = get(&fetcher, &url).await.unwrap_err();
    assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
    assert!(err.to_string().contains("Name or service not known"), "{err}");
    assert!(err.kind().is_transient(), "DNS failures are retried later");
}

#[test]
fn link_headers_name_the_hub_and_the_topic_relative_ones_resolved() {
    let base = Url::parse("https://pub.example/feeds/a.xml").unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.append(
        header::LINK,
        HeaderValue::from_static("<https://pub.example/>; rel=\"alternate\", </hub>; rel=\"hub\""),
    );
    headers.append(
        header::LINK,
        HeaderValue::from_static("<a.xml?x=1,2>; rel=\"self\""),
    );
    let push = PushLinks::of(&headers, &base);
    assert_eq!(push.hub.unwrap().as_str(), "https://pub.example/hub");
    assert_eq!(
        push.topic.unwrap().as_str(),
        "https://pub.example/feeds/a.xml?x=1,2"
    );
    // One link with both relations; a header that does not parse names nothing.
    let mut both = reqwest::header::HeaderMap::new();
    both.insert(
        header::LINK,
        HeaderValue::from_static("<https://h.example/>; rel=\"hub self\""),
    );
    let push = PushLinks::of(&both, &base);
    assert_eq!(push.hub, push.topic);
    let mut broken = reqwest::header::HeaderMap::new();
    broken.insert(header::LINK, HeaderValue::from_static("not a link"));
    assert_eq!(PushLinks::of(&broken, &base), PushLinks::default());
}
