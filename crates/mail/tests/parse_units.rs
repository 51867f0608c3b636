//! `parse` on small hand-made mails: headers, charsets, names, bodies, attachments, warnings.

use postdesk_mail::parse::{MAX_NAME_BYTES, safe_name};
use postdesk_mail::{ParseOptions, ParsedMail, parse, parse_with};

fn raw_mail(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = headers.replace('\n', "\r\n").into_bytes();
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

fn mail(headers: &str, body: &[u8]) -> ParsedMail {
    parse(&raw_mail(headers, body))
}

/// Where these tests pretend attachments are served: not the web's route, to show the caller decides.
fn served_at(sha256: &str) -> String {
    format!("/served/{sha256}")
}

fn plain(charset: &str, cte: &str, body: &[u8]) -> ParsedMail {
    mail(
        &format!(
            "From: A <a@example.com>\nTo: b@example.com\nSubject: s\nDate: Tue, 2 Jan 2024 10:00:00 +0100\n\
             Message-ID: <m1@example.com>\nMIME-Version: 1.0\nContent-Type: text/plain; charset={charset}\n\
             Content-Transfer-Encoding: {cte}\n"
        ),
        body,
    )
}

// ------------------------------------------------------------ safe_name

#[test]
fn safe_name_strips_paths() {
    assert_eq!(safe_name(Some("../../etc/passwd"), "text/plain"), "passwd");
    assert_eq!(
        safe_name(Some("C:\\x\\evil.exe"), "application/octet-stream"),
        "evil.exe"
    );
    assert_eq!(
        safe_name(Some("..\\..\\windows\\system32\\cmd.exe"), ""),
        "cmd.exe"
    );
    assert_eq!(
        safe_name(Some("/absolute/path/report.pdf"), "application/pdf"),
        "report.pdf"
    );
    assert_eq!(safe_name(Some("dir/"), "application/pdf"), "attachment.pdf");
    assert_eq!(safe_name(Some(".."), "text/plain"), "attachment.txt");
}

#[test]
fn safe_name_removes_control_and_reserved_characters() {
    assert_eq!(
        safe_name(Some("a\u{0}b\r\nc\t.txt"), "text/plain"),
        "abc.txt"
    );
    assert_eq!(
        safe_name(Some("bad<>:\"|?*name.txt"), "text/plain"),
        "bad_______name.txt"
    );
    // Right-to-left override disguising "exe.pdf" as "fdp.exe".
    assert_eq!(
        safe_name(Some("invoice\u{202E}fdp.exe"), ""),
        "invoicefdp.exe"
    );
    assert_eq!(
        safe_name(Some("name\";filename=x.exe"), ""),
        "name__filename=x.exe"
    );
}

#[test]
fn safe_name_has_no_leading_dots_or_device_names() {
    assert_eq!(safe_name(Some(".htaccess"), "text/plain"), "htaccess");
    assert_eq!(safe_name(Some("...hidden.txt"), "text/plain"), "hidden.txt");
    assert_eq!(
        safe_name(Some("trailing.txt. . "), "text/plain"),
        "trailing.txt"
    );
    assert_eq!(safe_name(Some("CON"), "text/plain"), "_CON");
    assert_eq!(safe_name(Some("nul.txt"), "text/plain"), "_nul.txt");
    assert_eq!(safe_name(Some("com1.log"), "text/plain"), "_com1.log");
    assert_eq!(safe_name(Some("console.log"), "text/plain"), "console.log");
}

#[test]
fn safe_name_falls_back_to_the_mime_type() {
    assert_eq!(safe_name(None, "image/png"), "attachment.png");
    assert_eq!(safe_name(Some(""), "application/pdf"), "attachment.pdf");
    assert_eq!(safe_name(Some("   "), "message/rfc822"), "attachment.eml");
    assert_eq!(
        safe_name(Some("\u{0}\u{1}"), "application/x-weird-type"),
        "attachment.bin"
    );
    assert_eq!(safe_name(None, "application/x-tar"), "attachment.tar");
    assert_eq!(safe_name(None, ""), "attachment.bin");
}

#[test]
fn safe_name_is_bounded_and_keeps_the_extension() {
    let long = format!("{}.pdf", "a".repeat(400));
    let s = safe_name(Some(&long), "application/pdf");
    assert!(s.len() <= MAX_NAME_BYTES, "{}", s.len());
    assert!(s.ends_with(".pdf") && s.starts_with("aaa"), "{s}");
    // Multi-byte characters are cut on a character boundary.
    let long = format!("{}.docx", "ü".repeat(300));
    let s = safe_name(Some(&long), "");
    assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".docx"), "{s}");
    // No extension: plain truncation.
    let s = safe_name(Some(&"x".repeat(1000)), "");
    assert_eq!(s.len(), MAX_NAME_BYTES);
}

#[test]
fn rfc2231_and_rfc2047_file_names_are_decoded_then_made_safe() {
    let m = mail(
        "From: a@example.com\nSubject: files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n",
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee files\r\n\
--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates%202024.pdf\r\n\r\nPDF\r\n\
--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment;\r\n filename*0*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%20;\r\n filename*1=part.pdf\r\n\r\nPDF\r\n\
--b\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?0J7RgtGH0ZHRgiDQt9CwINC80LDQuS5wZGY=?=\"\r\nContent-Disposition: attachment\r\n\r\nPDF\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd\r\n\r\nroot\r\n\
--b--\r\n",
    );
    let names: Vec<(Option<&str>, &str)> = m
        .attachments
        .iter()
        .map(|a| (a.original_name.as_deref(), a.safe_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (Some("€ rates 2024.pdf"), "€ rates 2024.pdf"),
            (Some("Отчёт part.pdf"), "Отчёт part.pdf"),
            (Some("Отчёт за май.pdf"), "Отчёт за май.pdf"),
            (Some("../../etc/passwd"), "passwd"),
        ]
    );
}

// ------------------------------------------------------------ charsets

#[test]
fn single_byte_charsets() {
    assert_eq!(
        plain("iso-8859-1", "8bit", b"Gr\xfc\xdfe aus K\xf6ln").text,
        "Grüße aus Köln"
    );
    assert_eq!(
        plain("\"ISO-8859-1\"", "quoted-printable", b"Gr=FC=DFe").text,
        "Grüße"
    );
    assert_eq!(
        plain("windows-1252", "8bit", b"\x80 5 \x93quoted\x94").text,
        "€ 5 “quoted”"
    );
    assert_eq!(
        plain("koi8-r", "base64", b"8NLJ18XULCDNydI=").text,
        "Привет, мир"
    );
    assert_eq!(
        plain("windows-1251", "8bit", b"\xcf\xf0\xe8\xe2\xe5\xf2").text,
        "Привет"
    );
    assert_eq!(plain("iso-8859-15", "8bit", b"\xa4").text, "€");
}

#[test]
fn multi_byte_charsets() {
    assert_eq!(
        plain("shift_jis", "8bit", b"\x93\xfa\x96{\x8c\xea").text,
        "日本語"
    );
    assert_eq!(
        plain("euc-jp", "8bit", b"\xc6\xfc\xcb\xdc\xb8\xec").text,
        "日本語"
    );
    assert_eq!(
        plain("iso-2022-jp", "base64", b"GyRCJU8lbSE8ISYlbyE8JWslSRsoQg==").text,
        "ハロー・ワールド"
    );
    assert_eq!(plain("euc-kr", "8bit", b"\xbe\xc8\xb3\xe7").text, "안녕");
    assert_eq!(plain("gb2312", "8bit", b"\xc4\xe3\xba\xc3").text, "你好");
    assert_eq!(plain("big5", "8bit", b"\xa7A\xa6n").text, "你好");
    assert_eq!(plain("utf-8", "base64", b"0J/RgNC40LLQtdGC").text, "Привет");
}

#[test]
fn unknown_charset_is_read_as_utf8_with_a_warning() {
    let m = plain("x-no-such-charset", "8bit", "Grüße ✓".as_bytes());
    assert_eq!(m.text, "Grüße ✓");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("unknown charset") && w.contains("x-no-such-charset")),
        "{:?}",
        m.warnings
    );
    // Bytes that are not UTF-8 under an unknown label: detected, not replaced.
    let m = plain(
        "x-no-such-charset",
        "8bit",
        b"caf\xe9 cr\xe8me br\xfbl\xe9e",
    );
    assert_eq!(m.text, "café crème brûlée");
    assert_eq!(m.detected_charset.as_deref(), Some("windows-1252"));
    // Bytes no charset reads: replaced, and said so.
    let m = plain("utf-8", "8bit", b"ok \xc3\xa9 \xff");
    assert_eq!(m.text, "ok é \u{FFFD}");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("invalid byte sequences")),
        "{:?}",
        m.warnings
    );
    // Known charsets warn about nothing.
    assert!(plain("iso-8859-1", "8bit", b"caf\xe9").warnings.is_empty());
    assert!(plain("UTF8", "8bit", b"ok").warnings.is_empty());
}

#[test]
fn encoded_words_in_subject_and_names() {
    let m = mail(
        "From: =?iso-8859-1?Q?J=F6rg_M=FCller?= <jm@example.com>\nTo: =?koi8-r?B?8NLJ18XU?= <p@example.ru>, b@example.com\n\
         Subject: =?ISO-2022-JP?B?GyRCJU8lbSE8ISYlbyE8JWslSRsoQg==?= and\n =?utf-8?q?=C3=A9t=C3=A9?=\n\tnext line\n\
         Date: Tue, 2 Jan 2024 10:00:00 +0100\n",
        b"body",
    );
    assert_eq!(m.subject, "ハロー・ワールド and été next line");
    let from = m.from.clone().expect("from");
    assert_eq!(from.name.as_deref(), Some("Jörg Müller"));
    assert_eq!(from.email, "jm@example.com");
    assert_eq!(m.to[0].name.as_deref(), Some("Привет"));
    assert_eq!(m.to.len(), 2);
    assert_eq!(
        m.header("Subject"),
        Some("ハロー・ワールド and été next line")
    );
}

// ------------------------------------------------------------ envelope

#[test]
fn ids_dates_and_return_path() {
    let m = mail(
        "Return-Path: <>\nFrom: a@example.com\nTo: b@example.com\nCc: c@example.com, D <d@example.com>\n\
         Bcc: e@example.com\nReply-To: Help <help@example.com>\nSubject:  Re:\tlong\n   subject  \n\
         Date: Tue, 02 Jan 2024 10:00:00 +0100\nMessage-ID: <abc@example.com>\n\
         In-Reply-To: <parent@example.com>\nReferences: <root@example.com>\n <parent@example.com> bare@example.com\n\
         X-Custom: =?utf-8?q?d=C3=A9cod=C3=A9?=\n",
        b"hello\r\n",
    );
    assert_eq!(m.return_path.as_deref(), Some(""));
    assert_eq!(m.message_id.as_deref(), Some("abc@example.com"));
    assert_eq!(m.in_reply_to, ["parent@example.com"]);
    assert_eq!(
        m.references,
        ["root@example.com", "parent@example.com", "bare@example.com"]
    );
    assert_eq!(m.subject, "Re: long subject");
    assert_eq!(m.date, Some(1_704_186_000));
    assert_eq!(m.cc.len(), 2);
    assert_eq!(m.bcc[0].email, "e@example.com");
    assert_eq!(
        m.reply_to.as_ref().map(|a| a.email.as_str()),
        Some("help@example.com")
    );
    assert_eq!(m.header("x-custom"), Some("décodé"));
    assert_eq!(m.text, "hello");
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);

    let m = mail(
        "Return-Path: <Bounce+x@Example.com>\nFrom: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n",
        b"x",
    );
    assert_eq!(m.return_path.as_deref(), Some("Bounce+x@Example.com"));
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n",
        b"x",
    );
    assert_eq!(m.return_path, None);
}

#[test]
fn header_problems_become_warnings() {
    let m = mail(
        "To: b@example.com\nSubject: no sender\nDate: yesterday-ish\n",
        b"x",
    );
    assert!(m.from.is_none());
    assert_eq!(m.date, None);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("no sender: no From")),
        "{:?}",
        m.warnings
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("unparsable Date header")),
        "{:?}",
        m.warnings
    );

    let m = mail(
        "From: Undisclosed\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n",
        b"x",
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("From header has no address")),
        "{:?}",
        m.warnings
    );

    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n",
        b"",
    );
    assert!(
        m.warnings.iter().any(|w| w == "empty body"),
        "{:?}",
        m.warnings
    );
}

#[test]
fn broken_multiparts_become_warnings() {
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed; boundary=zz\n",
        b"--zz\r\nContent-Type: text/plain\r\n\r\nfirst part, then the mail is cut",
    );
    assert_eq!(m.text, "first part, then the mail is cut");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("truncated multipart")),
        "{:?}",
        m.warnings
    );

    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed\n",
        b"no boundary at all",
    );
    assert!(
        m.warnings.iter().any(|w| w.contains("without boundary")),
        "{:?}",
        m.warnings
    );

    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed; boundary=q\n",
        b"--q\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n--q--\r\n",
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.starts_with("encoding problem in MIME part")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn garbage_never_panics() {
    for raw in [
        &b""[..],
        b"\0\0\0\0",
        b"\xff\xfe\xfd",
        b"no headers here, just text",
        b"From:\n\n",
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n",
        b"Subject: =?utf-8?B?====?=\n\n",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\n\n",
    ] {
        let m = parse(raw);
        let _ = postdesk_mail::classify(&m, &[]);
    }
    let m = parse(b"just some words");
    assert_eq!(m.text, "just some words");
    assert!(!m.warnings.is_empty());
    // Deeply nested multiparts and messages.
    let mut nested = String::new();
    for i in 0..500 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\n\ninner\n");
    let _ = parse(nested.as_bytes());
    // 20 000 nested messages would overflow the stack inside mail-parser: defused.
    let chain = "Content-Type: message/rfc822\n\n".repeat(20_000) + "Subject: deep\n\nbody\n";
    let m = parse(chain.as_bytes());
    assert!(
        m.warnings.iter().any(|w| w.contains("embedded messages")),
        "{:?}",
        m.warnings
    );
    let mut nested = String::new();
    for i in 0..5000 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"
        ));
    }
    nested.push_str("Content-Type: text/plain\n\ninner\n");
    assert_eq!(parse(nested.as_bytes()).text, "inner");
}

#[test]
fn many_sibling_messages_are_all_kept() {
    let mut body = String::new();
    for i in 0..250 {
        body.push_str(&format!(
            "--d\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.com\r\nSubject: m{i}\r\n\r\nbody {i}\r\n"
        ));
    }
    body.push_str("--d--\r\n");
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed; boundary=d\n",
        body.as_bytes(),
    );
    assert_eq!(m.attachments.len(), 250);
    assert!(
        m.attachments
            .iter()
            .all(|a| a.mime_type == "message/rfc822" && a.safe_name.ends_with(".eml"))
    );
    assert_eq!(m.attachments[0].safe_name, "m0.eml");
    assert!(
        m.attachments[249].data.ends_with(b"body 249"),
        "{:?}",
        String::from_utf8_lossy(&m.attachments[249].data)
    );
}

// ------------------------------------------------------------ bodies and attachments

const RELATED: &[u8] = b"--outer\r\nContent-Type: multipart/alternative; boundary=alt\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello plain\r\n\
--alt\r\nContent-Type: multipart/related; boundary=rel\r\n\r\n\
--rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=x()>Hello <b>html</b><img src=\"cid:logo.png@01D9\" alt=logo><img src=\"http://tracker/p.gif\"></p>\r\n\
--rel\r\nContent-Type: image/png; name=logo.png\r\nContent-ID: <logo.png@01D9>\r\nContent-Disposition: inline; filename=logo.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
--rel--\r\n--alt--\r\n\
--outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n\
--outer--\r\n";

#[test]
fn alternative_related_mixed() {
    let raw = raw_mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed; boundary=outer\n",
        RELATED,
    );
    let options = ParseOptions {
        attachment_url: Some(served_at),
    };
    let m = parse_with(&raw, &options);
    assert_eq!(m.text, "Hello plain");
    assert_eq!(m.attachments.len(), 2, "{:?}", m.attachments);
    let logo = &m.attachments[0];
    assert_eq!(
        (
            logo.safe_name.as_str(),
            logo.mime_type.as_str(),
            logo.inline
        ),
        ("logo.png", "image/png", true)
    );
    assert_eq!(logo.content_id.as_deref(), Some("logo.png@01D9"));
    assert_eq!(logo.data, b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        logo.sha256,
        "4c4b6a3be1314ab86138bef4314dde022e600960d8689a2c8f8631802d20dab6"
    );
    let pdf = &m.attachments[1];
    assert_eq!(
        (pdf.safe_name.as_str(), pdf.mime_type.as_str(), pdf.inline),
        ("report.pdf", "application/pdf", false)
    );
    assert_eq!(pdf.data, b"%PDF-1.4");

    let html = m.html.expect("html");
    assert!(
        html.contains(&format!("src=\"{}\"", served_at(&logo.sha256))),
        "{html}"
    );
    // Without an attachment URL the inline image has nowhere to point: it is dropped,
    // never left as a `cid:` reference.
    let unserved = parse(&raw).html.expect("html");
    assert!(
        !unserved.contains("cid:") && !unserved.contains(&logo.sha256),
        "{unserved}"
    );
    assert!(
        !html.contains("onclick") && !html.contains("tracker"),
        "{html}"
    );
    assert!(html.contains("Hello <b>html</b>"), "{html}");
}

#[test]
fn html_only_mail_gets_text_from_html() {
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: text/html; charset=utf-8\n",
        b"<html><head><style>p{}</style></head><body><p>Dear support,</p><p>my <b>printer</b> is broken.</p><script>x()</script></body></html>",
    );
    assert!(m.text.contains("Dear support,"), "{:?}", m.text);
    assert!(
        m.text.contains("printer") && m.text.contains("is broken."),
        "{:?}",
        m.text
    );
    assert!(!m.text.contains("x()"), "{:?}", m.text);
    let html = m.html.expect("html");
    assert!(
        html.contains("<p>Dear support,</p>") && !html.contains("script"),
        "{html}"
    );
}

#[test]
fn forwarded_message_is_an_eml_attachment_with_its_ids() {
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: Fwd: hello\nContent-Type: multipart/mixed; boundary=f\n",
        b"--f\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: orig@example.com\r\nSubject: Original\r\n subject\r\nMessage-ID: <orig-1@example.com>\r\n\r\noriginal body\r\n\
--f--\r\n",
    );
    assert_eq!(m.text, "see below");
    assert_eq!(
        m.structure.embedded_message_id.as_deref(),
        Some("orig-1@example.com")
    );
    assert_eq!(
        m.structure.embedded_subject.as_deref(),
        Some("Original subject")
    );
    let eml = &m.attachments[0];
    assert_eq!(
        (eml.mime_type.as_str(), eml.safe_name.as_str()),
        ("message/rfc822", "Original subject.eml")
    );
    assert!(
        eml.data.starts_with(b"From: orig@example.com"),
        "{:?}",
        String::from_utf8_lossy(&eml.data)
    );
    assert!(
        eml.data.ends_with(b"original body"),
        "{:?}",
        String::from_utf8_lossy(&eml.data)
    );
    let again = parse(&eml.data);
    assert_eq!(again.message_id.as_deref(), Some("orig-1@example.com"));
}

#[test]
fn bounce_with_rfc822_headers_part() {
    let m = mail(
        "From: MAILER-DAEMON@mx.example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: Undelivered Mail\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=r\n",
        b"--r\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n\
--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
--r\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.com\r\nSubject: [#42] Your ticket\r\nMessage-ID: <ticket-42-reply@example.com>\r\n\
--r--\r\n",
    );
    assert_eq!(m.structure.content_type, "multipart/report");
    assert_eq!(m.structure.report_type.as_deref(), Some("delivery-status"));
    assert_eq!(
        m.structure.embedded_message_id.as_deref(),
        Some("ticket-42-reply@example.com")
    );
    assert_eq!(
        m.structure.embedded_subject.as_deref(),
        Some("[#42] Your ticket")
    );
    assert_eq!(
        postdesk_mail::classify(&m, &[]),
        postdesk_mail::Classification::Bounce
    );
}

#[test]
fn bounce_quoting_the_original_as_text() {
    let m = mail(
        "From: MAILER-DAEMON@mx.example.com\nReturn-Path: <>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: failure notice\nMessage-ID: <bounce-1@mx.example.com>\n",
        b"Hi. This is the qmail-send program.\r\n\r\n--- Below this line is a copy of the message.\r\n\r\n\
Return-Path: <support@example.com>\r\nFrom: support@example.com\r\nSubject: Re: [#7] Printer\r\nMessage-ID:\r\n <reply-7@example.com>\r\n\r\nbody\r\n",
    );
    assert_eq!(
        m.structure.embedded_message_id.as_deref(),
        Some("reply-7@example.com")
    );
    assert_eq!(
        m.structure.embedded_subject.as_deref(),
        Some("Re: [#7] Printer")
    );
    // A normal mail mentioning a Message-ID line is not scanned.
    let m = mail(
        "From: customer@example.org\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: question\n",
        b"I saw this header:\r\nMessage-ID: <something@example.com>\r\n",
    );
    assert_eq!(m.structure.embedded_message_id, None);
}

#[test]
fn text_attachments_and_inline_text_parts() {
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed; boundary=t\n",
        b"--t\r\nContent-Type: text/plain\r\n\r\nbody text\r\n\
--t\r\nContent-Type: text/plain; charset=iso-8859-1; name=notes.txt\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\nK\xf6ln\r\n\
--t\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n\
--t--\r\n",
    );
    assert_eq!(m.text, "body text");
    let names: Vec<&str> = m.attachments.iter().map(|a| a.safe_name.as_str()).collect();
    // An unnamed part is named after its type and position, as mail clients save it.
    assert_eq!(names, ["notes.txt", "text001.ics"]);
    // Text attachments are stored decoded, as UTF-8.
    assert_eq!(m.attachments[0].data, "Köln".as_bytes());
}

#[test]
fn nested_messages_are_always_eml_files() {
    let m = mail(
        "From: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nContent-Type: multipart/mixed; boundary=f\n",
        b"--f\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--f\r\nContent-Type: message/rfc822; name=\"../original\"\r\n\r\nFrom: o@example.com\r\nSubject: x\r\n\r\nbody\r\n\
--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: o@example.com\r\n\r\nno subject\r\n\
--f--\r\n",
    );
    let names: Vec<&str> = m.attachments.iter().map(|a| a.safe_name.as_str()).collect();
    assert_eq!(names, ["original.eml", "message001.eml"]);
    assert!(
        m.attachments
            .iter()
            .all(|a| a.mime_type == "message/rfc822")
    );
}

#[test]
fn display_names_split_across_encoded_words_are_joined() {
    // "Иван" split inside "а" (0xD0 | 0xB0); a group; a quoted name with a comma; a
    // clean name mail-parser already decodes, which is left as it is.
    let m = mail(
        "From: =?utf-8?B?0JjQstA=?= =?utf-8?B?sNC9?= <ivan@example.ru>\n\
         To: Team: \"Doe, =?utf-8?Q?J=C3?= =?utf-8?Q?=BCrgen?=\" <j@example.de>, plain@example.com;\n\
         Cc: =?utf-8?Q?Ren=C3=A9?= <rene@example.fr>, =?utf-8?B?xQ==?=\n =?utf-8?B?gXVrYXN6?= <l@example.pl>\n\
         Reply-To: =?utf-8?B?0JjQstA=?= =?utf-8?B?sNC9?= <ivan@example.ru>\n",
        b"x",
    );
    let name = |a: Option<&postdesk_mail::Address>| a.and_then(|a| a.name.clone());
    assert_eq!(name(m.from.as_ref()).as_deref(), Some("Иван"));
    assert_eq!(name(m.reply_to.as_ref()).as_deref(), Some("Иван"));
    let to: Vec<_> =
        m.to.iter()
            .map(|a| (a.email.as_str(), a.name.as_deref()))
            .collect();
    assert_eq!(
        to,
        [
            ("j@example.de", Some("Doe, Jürgen")),
            ("plain@example.com", None)
        ]
    );
    let cc: Vec<_> = m.cc.iter().map(|a| a.name.as_deref()).collect();
    assert_eq!(cc, [Some("René"), Some("Łukasz")]);
}
