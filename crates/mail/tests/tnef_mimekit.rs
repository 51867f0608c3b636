//! winmail.dat decoding against MimeKit's TNEF fixtures.
//!
//! `tnef_expected.json` (= the `*.list` files) names the files a decoder must
//! produce. MimeKit's own test only checks that each listed name is found; we
//! check the exact multiset. Where we produce more than the list, the extra file
//! is real content of the stream and is named in [`EXTRA_FILES`] with the reason,
//! so that any other difference fails.

use std::path::{Path, PathBuf};

use postdesk_mail::tnef;

/// Files we extract that the `.list` does not name. Each is genuine content.
const EXTRA_FILES: &[(&str, &str, &str)] = &[
    (
        "tnef/winmail.tnef",
        "body.rtf",
        "the message has PR_RTF_COMPRESSED; the list omits the body here although other lists include body.rtf",
    ),
    (
        "tnef/long-filename.tnef",
        "allproductsmar2000.dat",
        "the attachment ALLPRO~1.DAT carries PR_ATTACH_LONG_FILENAME; the list names only the body",
    ),
    (
        "tnef/unicode-mapi-attr.tnef",
        "body.html",
        "the message has PR_BODY_HTML (MimeKit's extractor saves it as body.html too)",
    ),
    (
        "tnef/unicode-mapi-attr-name.tnef",
        "body.html",
        "the message has PR_BODY_HTML (MimeKit's extractor saves it as body.html too)",
    ),
];

/// Streams that are damaged on purpose: decoding must flag them, and still yield the listed files.
const DAMAGED: &[&str] = &["tnef/panic.tnef", "tnef/garbage-at-end.tnef"];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/mimekit")
}

fn expected() -> Vec<(String, Vec<String>)> {
    let text =
        std::fs::read_to_string(corpus().join("tnef_expected.json")).expect("tnef_expected.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let file = e["file"].as_str().expect("file").to_string();
            let names = e["expected_attachment_names"]
                .as_array()
                .expect("names")
                .iter()
                .map(|n| n.as_str().expect("name").to_string())
                .collect();
            (file, names)
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(corpus().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn json_agrees_with_list_files() {
    for (file, want) in expected() {
        let list = std::fs::read_to_string(corpus().join(file.replace(".tnef", ".list")))
            .expect("list file");
        let names: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(names, want, "{file}");
    }
}

#[test]
fn decodes_exactly_the_listed_files() {
    let cases = expected();
    assert_eq!(cases.len(), 15);
    let mut report = Vec::new();
    for (file, listed) in &cases {
        let t = tnef::decode(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut got: Vec<String> = t.file_names().into_iter().map(str::to_string).collect();
        let mut want = listed.clone();
        want.extend(
            EXTRA_FILES
                .iter()
                .filter(|(f, _, _)| f == file)
                .map(|(_, n, _)| n.to_string()),
        );
        // The lists come from another tool; their order is not the stream order.
        got.sort();
        want.sort();
        if got != want {
            report.push(format!("{file}: got {got:?}, want {want:?}"));
        }
        let damaged = DAMAGED.contains(&file.as_str());
        if t.damaged != damaged {
            report.push(format!("{file}: damaged={} {:?}", t.damaged, t.warnings));
        }
        for f in t.files() {
            if f.name == tnef::BODY_RTF_NAME && !f.data.starts_with(b"{\\rtf") {
                report.push(format!("{file}: body.rtf does not start with {{\\rtf"));
            }
            if f.name == tnef::BODY_HTML_NAME
                && !String::from_utf8_lossy(f.data)
                    .to_lowercase()
                    .contains("<html")
            {
                report.push(format!("{file}: body.html is not HTML"));
            }
        }
    }
    assert!(report.is_empty(), "{report:#?}");
}

#[test]
fn attachment_bytes_are_extracted() {
    let t = tnef::decode(&read("tnef/one-file.tnef")).expect("tnef");
    let authors = &t.attachments[0];
    assert_eq!(authors.name.as_deref(), Some("AUTHORS"));
    let text = String::from_utf8_lossy(&authors.data);
    assert!(text.contains('@') && text.len() > 20, "{text:?}");

    let t = tnef::decode(&read("tnef/long-filename.tnef")).expect("tnef");
    assert_eq!(t.attachments.len(), 1);
    assert_eq!(
        t.attachments[0].name.as_deref(),
        Some("allproductsmar2000.dat"),
        "long name wins over ALLPRO~1.DAT"
    );
    assert_eq!(t.attachments[0].data.len(), 279);

    let t = tnef::decode(&read("tnef/attachments.tnef")).expect("tnef");
    let jpg = t
        .attachments
        .iter()
        .find(|a| a.name.as_deref() == Some("zappa_av1.jpg"))
        .expect("jpg");
    assert!(jpg.data.starts_with(&[0xFF, 0xD8]), "JPEG magic");
}

#[test]
fn damaged_streams_never_panic() {
    // Every fixture cut short at many points, and with bytes flipped, decodes without a panic.
    for (file, _) in expected() {
        let data = read(&file);
        let step = (data.len() / 200).max(1);
        for cut in (0..data.len()).step_by(step) {
            let _ = tnef::decode(&data[..cut]);
        }
        for pos in (6..data.len()).step_by(step) {
            let mut d = data.clone();
            d[pos] ^= 0xFF;
            let _ = tnef::decode(&d);
            d[pos] = 0xFF;
            if pos + 4 <= d.len() {
                d[pos..pos + 4].copy_from_slice(&[0xFF; 4]);
            }
            let _ = tnef::decode(&d);
        }
    }
}

#[test]
fn winmail_dat_in_a_mail_is_unpacked() {
    let raw = read("tnef/ukr.eml");
    let mail = postdesk_mail::parse(&raw);
    assert!(mail.text.contains("шостий"), "{:?}", mail.text);
    // The winmail.dat holds only the HTML version of the body: it becomes the HTML body.
    assert!(
        mail.attachments
            .iter()
            .all(|a| a.safe_name != "winmail.dat"),
        "{:?}",
        mail.attachments
    );
    let html = mail.html.expect("html body from winmail.dat");
    assert!(html.contains("шостий"), "{html}");
}

/// Wraps a TNEF stream into a mail as Outlook sends it.
fn mail_with_winmail(tnef: &[u8]) -> Vec<u8> {
    let mut b64 = String::new();
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in tnef.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
        if b64.len() % 77 == 76 {
            b64.push('\n');
        }
    }
    format!(
        "From: a@example.com\nTo: b@example.com\nSubject: files\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\
         MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n\
         Content-Type: text/plain\n\nSee attached.\n--b\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\n\
         Content-Disposition: attachment; filename=\"winmail.dat\"\nContent-Transfer-Encoding: base64\n\n{b64}\n--b--\n"
    )
    .into_bytes()
}

#[test]
fn parse_replaces_winmail_dat_by_its_files() {
    let mail = postdesk_mail::parse(&mail_with_winmail(&read("tnef/two-files.tnef")));
    let names: Vec<&str> = mail
        .attachments
        .iter()
        .map(|a| a.safe_name.as_str())
        .collect();
    assert_eq!(names, ["AUTHORS", "README"], "{:?}", mail.warnings);
    assert!(
        mail.attachments
            .iter()
            .all(|a| !a.data.is_empty() && a.sha256.len() == 64)
    );
    assert!(mail.warnings.is_empty(), "{:?}", mail.warnings);
}

#[test]
fn parse_keeps_a_damaged_winmail_dat_whole() {
    let data = read("tnef/garbage-at-end.tnef");
    let mail = postdesk_mail::parse(&mail_with_winmail(&data));
    let w = mail
        .attachments
        .iter()
        .find(|a| a.safe_name == "winmail.dat")
        .expect("winmail.dat kept");
    assert_eq!(w.data, data);
    assert!(
        mail.warnings
            .iter()
            .any(|w| w.contains("winmail.dat is damaged")),
        "{:?}",
        mail.warnings
    );

    // Not TNEF at all: kept, with a warning.
    let mail = postdesk_mail::parse(&mail_with_winmail(b"this is not tnef"));
    assert!(
        mail.attachments
            .iter()
            .any(|a| a.safe_name == "winmail.dat")
    );
    assert!(
        mail.warnings.iter().any(|w| w.contains("winmail.dat kept")),
        "{:?}",
        mail.warnings
    );
}
