use super::items::end_tag;
use super::*;

fn xml(text: &str) -> String {
    match prepare(text, &mut Default::default()).unwrap() {
        Prepared::Xml(s) => s.into_owned(),
        Prepared::Json(..) => panic!("expected XML"),
    }
}

#[test]
fn an_end_tag_with_space_before_its_bracket_ends_its_description() {
    // The first description is plain; the second has markup to escape. The first one's
    // end tag, written `</description\n>`, must end it, not the second's.
    let out = xml("<rss version=\"2.0\"><channel><title>T</title>\
             <item><title>One</title><description>&lt;b&gt;one&lt;/b&gt;</description\n></item>\
             <item><title>Two</title><description><img src=\"x.png\"/> two</description></item>\
             </channel></rss>");
    assert_eq!(out.matches("<item>").count(), 2, "{out}");
    assert!(out.contains("<title>Two</title>"), "{out}");
    assert!(
        out.contains("&lt;img src=&quot;x.png&quot;/&gt; two</description>"),
        "{out}"
    );
    assert_eq!(end_tag("a</description \t>b", "description"), Some((1, 16)));
    assert_eq!(end_tag("a</descriptionx>", "description"), None);
}

#[test]
fn rss_without_version_gets_one() {
    let out = xml("<?xml version=\"1.0\" encoding=\"koi8-r\"?>\n<rss><channel/></rss>");
    assert!(out.contains("<rss version=\"2.0\">"), "{out}");
    assert!(!out.contains("koi8-r"));
    let out = xml("<rss version=\"0.94\" xmlns:dc=\"x\"><channel/></rss>");
    assert!(out.contains("<rss xmlns:dc=\"x\" version=\"2.0\">"), "{out}");
}

#[test]
fn stray_declarations_are_removed_outside_cdata() {
    let doc = "<feed><entry><title>a</title><?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
                   <summary><![CDATA[<?xml version=\"1.0\"?>]]></summary></entry></feed>";
    let out = xml(doc);
    assert_eq!(out.matches("<?xml").count(), 1, "{out}");
    assert!(out.contains("<![CDATA[<?xml version=\"1.0\"?>]]>"), "{out}");
}

#[test]
fn atom03_becomes_atom10() {
    let out = xml(
        "<feed version=\"0.3\" xmlns=\"http://purl.org/atom/ns#\"><entry><issued>2004-01-01T00:00:00Z</issued>\
             <content type=\"text/html\" mode=\"escaped\">&lt;b&gt;x&lt;/b&gt;</content></entry></feed>",
    );
    assert!(out.contains(ATOM_10_NS));
    assert!(
        out.contains("<published>2004-01-01T00:00:00Z</published>"),
        "{out}"
    );
    assert!(out.contains("<content type=\"html\">"), "{out}");
}

#[test]
fn embedded_feed_is_extracted() {
    let out =
        xml("<html><body><feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title></feed></body></html>");
    assert!(out.starts_with("<feed"), "{out}");
    assert!(out.ends_with("</feed>"), "{out}");
}

#[test]
fn not_a_feed() {
    assert!(matches!(
        prepare("<note><to>x</to></note>", &mut Default::default()),
        Err(ParseError::NotAFeed(_))
    ));
    assert!(matches!(
        prepare("   ", &mut Default::default()),
        Err(ParseError::NotAFeed(_))
    ));
    assert!(matches!(
        prepare("{\"rss\": {}}", &mut Default::default()),
        Err(ParseError::NotAFeed(_))
    ));
}

#[test]
fn json_fields_are_coerced() {
    let Prepared::Json(out, _) = prepare(
        r#"{"version":"http://jsonfeed.org/version/1","items":[{"id":7,"tags":"a, b","title":3,
                "attachments":[{"url":"http://x/a.mp3","size_in_bytes":"12"}]}]}"#,
        &mut Default::default(),
    )
    .unwrap() else {
        panic!()
    };
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(v["items"][0]["id"], "7");
    assert_eq!(v["items"][0]["tags"], serde_json::json!(["a", "b"]));
    assert!(v["items"][0].get("title").is_none());
    assert_eq!(v["items"][0]["attachments"][0]["size_in_bytes"], 12);
}
