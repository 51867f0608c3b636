//! Hostile HTML through `sanitize_html`: what a browser would run or fetch must be
//! gone; what the reader needs (text, links, alt text, cid images) must stay.

use std::time::{Duration, Instant};

use postdesk_mail::sanitize::{MAX_NESTING, html_to_text, sanitize_html, too_deep};

fn clean(html: &str) -> String {
    sanitize_html(html, &|cid| match cid {
        "logo@example.com" => Some("/attachments/0123abcd".to_string()),
        _ => None,
    })
}

/// Nothing executable or fetching survives, whatever the spelling.
fn assert_inert(input: &str) -> String {
    let out = clean(input);
    let lower = out.to_ascii_lowercase();
    for bad in [
        "<script",
        "javascript:",
        "vbscript:",
        "data:",
        " on",
        "<iframe",
        "<object",
        "<embed",
        "<form",
        "<svg",
        "<math",
        "<style",
        "<link",
        "<meta",
        "<base",
        "expression(",
        "tracker",
        "<input",
        "<button",
        "formaction",
        "srcdoc",
        "<frame",
        "<applet",
        "@import",
        "url(",
        "<video",
        "<audio",
        "<template",
        "<noscript",
        "<textarea",
        "<select",
        "<title",
    ] {
        assert!(
            !lower.contains(bad),
            "{bad:?} survived: {input:?} => {out:?}"
        );
    }
    // Links only where we allow them.
    for href in lower.split("href=\"").skip(1) {
        assert!(
            href.starts_with("https://")
                || href.starts_with("http://")
                || href.starts_with("mailto:"),
            "{input:?} => {out:?}"
        );
    }
    out
}

#[test]
fn scripts_are_removed_with_their_content() {
    let out = assert_inert("<p>Hello<script>alert(1)</script> world</p>");
    assert_eq!(out, "<p>Hello world</p>");
    assert_inert("<<script>script>alert(1)<</script>/script>");
    assert_inert("<scr<script>ipt>alert(1)</script>");
    assert_inert("<noscript><p>no js</p></noscript><template><img src=x onerror=1></template>");
}

#[test]
fn event_handlers_are_removed() {
    let out = assert_inert("<img src=x onerror=alert(1) alt=pic>");
    assert_eq!(out, r#"<img alt="pic">"#);
    let out = assert_inert(r#"<div onmouseover="x()" ONCLICK='y()'>t</div><body onload=z()>"#);
    assert!(out.contains(">t</div>"), "{out}");
}

#[test]
fn dangerous_urls_are_removed() {
    for input in [
        r#"<a href="javascript:alert(1)">click</a>"#,
        r#"<a href="JaVaScRiPt:alert(1)">click</a>"#,
        "<a href=\" java\tscript:alert(1)\">click</a>",
        r#"<a href="&#106;avascript:alert(1)">click</a>"#,
        r#"<a href="vbscript:msgbox">click</a>"#,
        r#"<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">click</a>"#,
        r#"<a href="/admin/delete?id=1">click</a>"#,
        r##"<a href="#top">click</a>"##,
    ] {
        let out = assert_inert(input);
        assert!(!out.contains("href"), "{input} => {out}");
        assert!(out.contains(">click</a>"), "link text kept: {out}");
    }
}

#[test]
fn good_links_are_kept_and_hardened() {
    let out = assert_inert(
        r#"<a href="https://example.com/x?a=1&amp;b=2" target="_self" onclick="x()">ok</a>"#,
    );
    assert!(
        out.contains(r#"href="https://example.com/x?a=1&amp;b=2""#),
        "{out}"
    );
    assert!(
        out.contains(r#"rel="noopener noreferrer nofollow""#),
        "{out}"
    );
    assert!(
        out.contains(r#"target="_blank""#) && !out.contains("_self"),
        "{out}"
    );
    let out = assert_inert(r#"<a href="mailto:help@example.com">mail</a>"#);
    assert!(out.contains(r#"href="mailto:help@example.com""#), "{out}");
}

#[test]
fn remote_and_data_images_lose_their_source_but_keep_alt() {
    let out = assert_inert(
        r#"<img src="http://tracker.example/pixel.gif" alt="Tracking pixel" width=1>"#,
    );
    assert!(
        out.contains(r#"alt="Tracking pixel""#) && !out.contains("src"),
        "{out}"
    );
    let out = assert_inert(r#"<img src="HTTPS://tracker.example/p.gif" alt="x">"#);
    assert!(!out.contains("src"), "{out}");
    let out = assert_inert(r#"<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">"#);
    assert_eq!(out, r#"<img alt="inline">"#);
    assert_inert(
        r#"<img srcset="http://tracker/1x.png 1x" alt=a><video poster="http://tracker"></video>"#,
    );
    assert_inert(r#"<table background="http://tracker/bg.png"><tr><td>x</td></tr></table>"#);
    assert_inert(
        r#"<link rel=stylesheet href="http://tracker/s.css"><style>@import url(http://tracker/x.css);</style>"#,
    );
}

#[test]
fn cid_images_point_at_attachments() {
    let out = assert_inert(
        r#"<img src="cid:logo@example.com" alt="Logo"><img src="CID:nope@x" alt="gone">"#,
    );
    assert_eq!(
        out,
        r#"<img src="/attachments/0123abcd" alt="Logo"><img alt="gone">"#
    );
    // Percent-encoded and bracketed forms of the same Content-ID.
    let out =
        clean(r#"<img src="cid:logo%40example.com"><img src="cid:&lt;logo@example.com&gt;">"#);
    assert_eq!(
        out.matches(r#"src="/attachments/0123abcd""#).count(),
        2,
        "{out}"
    );
    // The rewritten URL is only allowed on images, not as a link target.
    let out = clean(r#"<a href="/attachments/0123abcd">x</a><a href="cid:logo@example.com">y</a>"#);
    assert!(!out.contains("href"), "{out}");
}

#[test]
fn svg_math_forms_and_frames_are_removed() {
    let out = assert_inert("<svg><script>alert(1)</script><circle onload=alert(1)/></svg>after");
    assert_eq!(out, "after");
    assert_inert(r#"<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>"#);
    assert_inert(r#"<math><mi xlink:href="javascript:alert(1)">x</mi></math>"#);
    let out = assert_inert(
        r#"<form action="http://evil"><input name=pw><button formaction=x>go</button></form>text"#,
    );
    assert!(out.contains("text"), "{out}");
    assert_eq!(
        assert_inert(r#"<iframe src="http://evil"></iframe><object data=x></object><embed src=y>"#),
        ""
    );
    assert_inert(r#"<iframe srcdoc="<script>alert(1)</script>"></iframe>"#);
    let out = assert_inert(
        r#"<html><head><title>T</title><style>body{}</style><meta http-equiv=refresh content="0;url=http://evil"></head><body>Body</body></html>"#,
    );
    assert_eq!(out, "Body");
    assert_inert(r#"<base href="http://evil/"><a href="/relative">rel</a>"#);
}

#[test]
fn styles_keep_only_harmless_properties() {
    let out = assert_inert(r#"<div style="width: expression(alert(1)); color: red">styled</div>"#);
    assert_eq!(out, "<div>styled</div>");
    let out =
        assert_inert(r#"<div style="color: red; background-image: url(http://tracker/x)">s</div>"#);
    assert_eq!(out, "<div>s</div>");
    let out = assert_inert(r#"<div style="color: re\64; behavior: url(x.htc)">s</div>"#);
    assert_eq!(out, "<div>s</div>");
    let out = assert_inert(
        r#"<p style="color: blue; font-weight: bold; position: fixed; top: 0">nice</p>"#,
    );
    assert_eq!(out, r#"<p style="color:blue;font-weight:bold">nice</p>"#);
}

#[test]
fn formatting_and_broken_markup_survive_as_text() {
    let out = assert_inert("<table border=1><tr><td>cell</td></tr></table>");
    assert!(out.contains("<td>cell</td>"), "{out}");
    let out = assert_inert("<p>unclosed <b>bold <i>both</p> after");
    assert!(
        out.starts_with("<p>unclosed <b>bold <i>both</i></b></p>"),
        "{out}"
    );
    assert!(out.contains(" after"), "{out}");
    let out = assert_inert("<p>a < b && c > d</p>");
    assert_eq!(out, "<p>a &lt; b &amp;&amp; c &gt; d</p>");
    assert_inert("<img src=\"x\" alt=\"\"\"><script>alert(1)</script>\">");
    assert_inert("<a href='javascript:alert(1)'<script>alert(2)</script>x</a>");
    assert_inert("<!--<script>alert(1)</script>--><p>c</p><!-- unterminated");
}

#[test]
fn deep_nesting_is_bounded() {
    // html5ever spends O(depth) per tag: 100k nested divs must not take minutes.
    let deep =
        "<div>".repeat(100_000) + "deep text<script>alert(1)</script>" + &"</div>".repeat(100_000);
    assert!(too_deep(&deep));
    let start = Instant::now();
    let out = assert_inert(&deep);
    assert!(out.contains("deep text"), "text kept");
    let text = html_to_text(&deep);
    assert!(text.contains("deep text"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // Stray end tags of another name do not hide the depth.
    let sneaky = "<div></span></b>".repeat(MAX_NESTING + 10);
    assert!(too_deep(&sneaky));
    // Ordinary documents, void and self-closed tags, many siblings: not too deep.
    let wide = "<p>para<br><img src=x><br/></p>".repeat(50_000);
    assert!(!too_deep(&wide));
    let nested_ok = "<div>".repeat(MAX_NESTING - 10) + &"</div>".repeat(MAX_NESTING - 10);
    assert!(!too_deep(&nested_ok));
    // A flood of unterminated tags stays linear.
    let start = Instant::now();
    let flood = "<a".repeat(200_000);
    let _ = too_deep(&flood);
    let _ = clean(&flood);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn html_to_text_keeps_the_words() {
    let text = html_to_text("<p>Hello <b>world</b></p><ul><li>one</li><li>two</li></ul>");
    assert!(text.contains("Hello") && text.contains("world"), "{text}");
    assert!(text.contains("one") && text.contains("two"), "{text}");
    let text = html_to_text("<style>p{color:red}</style><script>var x=1;</script><p>Body</p>");
    assert!(
        text.contains("Body") && !text.contains("var x") && !text.contains("color:red"),
        "{text:?}"
    );
}
