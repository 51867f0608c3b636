//! `strip_reply` against the expectations shipped with three reply-parser
//! corpora (copied byte-for-byte under `tests/corpus/`, each with its LICENSE):
//!
//! - `talon/` (mailgun/talon, Apache-2.0): reply text of client mails and HTML replies.
//! - `github-email_reply_parser/` (github/email_reply_parser, MIT): `expected.json`,
//!   transcribed from the Ruby tests.
//! - `crisp-email-reply-parser/` (crisp-oss/email-reply-parser, MIT):
//!   `expected.jsonl`, extracted from the JS tests.
//!
//! The upstream parsers split a mail into fragments (quoted / signature /
//! hidden); `strip_reply` returns what the user sees (`reply`) and what was cut
//! (`quoted`). The mapping used here:
//!
//! - `parse_reply` / visible text / first fragment (when the fragments after it
//!   are hidden) → `reply`, compared after trimming each line's end.
//! - A regex or text asserted on fragment `i` → `reply` when fragment `i` is
//!   visible, else `quoted`; the first hidden fragment must start `quoted`, the
//!   first fragment must start `reply`, later ones may be anywhere in them.
//!   Without hidden flags, only fragment 0 is taken as visible (a top-post).
//! - One fragment → nothing cut; several fragments → something cut.
//!
//! Every expectation gets an id. Those we do not meet are listed with the reason
//! in `KNOWN_EXCEPTIONS`; the test fails on any other failure, and also when an
//! excepted case starts passing (so the list stays true).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use postdesk_mail::sanitize::html_to_text;
use postdesk_mail::{StrippedReply, strip_reply};
use regex::Regex;
use serde_json::Value;

/// Expectations we knowingly do not meet: (id, why).
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "talon/standard_replies/iphone.eml#reply",
        "talon's extract_from keeps device footers (it removes signatures in a separate step); we strip \
         \"Sent from my iPhone\" as github and crisp expect (email_iPhone.txt, email_15.txt)",
    ),
    (
        "talon/standard_replies/sparrow.eml#reply",
        "talon keeps the `-- ` signature in the reply; we cut at the RFC 3676 delimiter as github and \
         crisp expect (correct_sig.txt, sig_no_empty_line.txt)",
    ),
    (
        "github/email_1_1.txt#fragment0",
        "github treats the \"-Abhishek Kona\" sign-off as a signature; crisp's copy of the same mail \
         (email_1.txt) expects it in the visible text, and so do we: a name is not a signature delimiter",
    ),
    (
        "github/email_1_1.txt#fragment1",
        "same \"-Name\" sign-off conflict as github/email_1_1.txt#fragment0",
    ),
    (
        "github/email_1_3.txt#fragment_regex1",
        "same \"-Name\" sign-off conflict: crisp's copy (email_3.txt) keeps \"-Abhishek Kona\" in the reply",
    ),
    (
        "crisp/email_2.txt#test_parseReplied_with_multiple_quotes:parseReplied:Hi folks",
        "crisp's getQuotedText collects every quoted fragment, including the quote kept inside an inline \
         answer; our `quoted` is only what was cut below the sender's last line",
    ),
];

fn corpus_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn read_text(path: &PathBuf) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Line ends trimmed, leading/trailing blank lines dropped: the upstream parsers
/// strip trailing whitespace from every line.
fn norm(s: &str) -> String {
    s.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn no_space(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Results of one corpus, checked against the exception list at the end.
struct Report {
    corpus: &'static str,
    results: BTreeMap<String, Result<(), String>>,
}

impl Report {
    fn new(corpus: &'static str) -> Self {
        Report {
            corpus,
            results: BTreeMap::new(),
        }
    }

    fn check(&mut self, id: String, ok: bool, detail: impl FnOnce() -> String) {
        let previous = self
            .results
            .insert(id.clone(), if ok { Ok(()) } else { Err(detail()) });
        assert!(previous.is_none(), "duplicate expectation id {id}");
    }

    fn finish(self) {
        let prefix = format!("{}/", self.corpus);
        let excepted: BTreeMap<&str, &str> = KNOWN_EXCEPTIONS
            .iter()
            .copied()
            .filter(|(id, _)| id.starts_with(&prefix))
            .collect();
        let mut problems = Vec::new();
        for id in excepted.keys() {
            match self.results.get(*id) {
                None => problems.push(format!("{id}: excepted but no such expectation")),
                Some(Ok(())) => problems.push(format!(
                    "{id}: excepted but passes now; remove the exception"
                )),
                Some(Err(_)) => {}
            }
        }
        let mut failed = 0;
        for (id, result) in &self.results {
            if let Err(detail) = result {
                failed += 1;
                if !excepted.contains_key(id.as_str()) {
                    problems.push(format!("{id}: {detail}"));
                }
            }
        }
        println!(
            "{}: {} of {} expectations pass, {} known exceptions",
            self.corpus,
            self.results.len() - failed,
            self.results.len(),
            excepted.len()
        );
        assert!(
            problems.is_empty(),
            "{} corpus:\n{}",
            self.corpus,
            problems.join("\n")
        );
    }
}

/// Where an assertion on fragment `n` lands: `reply` if the fragment is visible
/// (`n <= last_visible`), else `quoted`. Returns the text and whether the
/// fragment starts it.
fn fragment_target(
    out: &StrippedReply,
    n: usize,
    last_visible: usize,
) -> (&'static str, String, bool) {
    if n <= last_visible {
        ("reply", out.reply.clone(), n == 0)
    } else {
        (
            "quoted",
            out.quoted.clone().unwrap_or_default(),
            n == last_visible + 1,
        )
    }
}

fn regex_check(
    r: &mut Report,
    id: String,
    out: &StrippedReply,
    n: usize,
    last_visible: usize,
    pattern: &str,
) {
    let (name, target, anchored) = fragment_target(out, n, last_visible);
    // JS regexes without flags; `^` means "starts the fragment".
    let re = Regex::new(&if anchored {
        pattern.to_string()
    } else {
        format!("(?m){pattern}")
    })
    .unwrap_or_else(|e| panic!("{id}: {e}"));
    r.check(id, re.is_match(&target), || {
        format!("/{pattern}/ does not match {name} {target:?}")
    });
}

fn text_check(
    r: &mut Report,
    id: String,
    out: &StrippedReply,
    n: usize,
    last_visible: usize,
    text: &str,
) {
    let (name, target, anchored) = fragment_target(out, n, last_visible);
    let (target, text) = (norm(&target), norm(text));
    let ok = if n == 0 && last_visible == 0 {
        target == text
    } else if anchored {
        target.starts_with(&text)
    } else {
        target.contains(&text)
    };
    r.check(id, ok, || {
        format!("{name} {target:?} vs fragment {n} {text:?}")
    });
}

fn fragments_check(r: &mut Report, id: String, text: &str, out: &StrippedReply, count: u64) {
    if count == 1 {
        r.check(
            id,
            out.quoted.is_none() && norm(&out.reply) == norm(text),
            || format!("expected nothing cut, got {out:?}"),
        );
    } else {
        r.check(id, out.quoted.is_some(), || {
            format!("expected {count} fragments (a cut), got {out:?}")
        });
    }
}

/// Last visible fragment from upstream `hidden` flags (only trailing fragments are hidden).
fn last_visible(hidden: Option<&Value>) -> Option<usize> {
    let flags = hidden?.as_array()?;
    flags.iter().rposition(|h| h == &Value::Bool(false))
}

#[test]
fn talon_corpus() {
    let dir = corpus_dir("talon");
    let expected: Vec<Value> =
        serde_json::from_str(&read_text(&dir.join("expected.json"))).unwrap();
    let mut r = Report::new("talon");
    for e in &expected {
        let file = e["file"].as_str().unwrap();
        let path = dir.join(file);
        let id = |what: &str| format!("talon/{file}#{what}");
        match e["kind"].as_str().unwrap() {
            "eml_text_plain_part" => {
                let raw = std::fs::read(&path).unwrap();
                let mail = mail_parser::MessageParser::default()
                    .parse(&raw[..])
                    .expect(file);
                let body = mail.body_text(0).expect(file);
                let out = strip_reply(&body, None);
                let want = e["expected_reply"].as_str().unwrap().trim();
                r.check(id("reply"), out.reply == want, || {
                    format!("reply {:?}, want {want:?}", out.reply)
                });
            }
            "html_body" => {
                let out = strip_reply(&html_to_text(&read_text(&path)), None);
                let want = match (
                    e["expected_reply"].as_str(),
                    e["expected_reply_html"].as_str(),
                ) {
                    (Some(text), _) => text.to_string(),
                    (None, Some(html)) => html_to_text(html),
                    _ => panic!("{file}: no expectation"),
                };
                r.check(id("reply"), no_space(&out.reply) == no_space(&want), || {
                    format!("reply {:?}, want {want:?}", out.reply)
                });
            }
            "raw_text_passed_to_extract_from_plain" => {
                let out = strip_reply(&read_text(&path), None);
                r.check(id("nonempty"), !out.reply.trim().is_empty(), || {
                    "empty reply".into()
                });
                let needle = e["expected_reply_not_contains"].as_str().unwrap();
                r.check(id("not_contains"), !out.reply.contains(needle), || {
                    format!("reply contains {needle:?}: {:?}", out.reply)
                });
            }
            kind => panic!("{file}: unknown kind {kind}"),
        }
    }
    r.finish();
}

#[test]
fn github_corpus() {
    let dir = corpus_dir("github-email_reply_parser");
    let expected: Vec<Value> =
        serde_json::from_str(&read_text(&dir.join("expected.json"))).unwrap();
    let mut r = Report::new("github");
    for e in &expected {
        let file = e["file"].as_str().unwrap();
        let text = read_text(&dir.join("emails").join(file));
        let id = |what: &str| format!("github/{file}#{what}");
        let started = Instant::now();
        let out = strip_reply(&text, None);
        let seconds = started.elapsed().as_secs_f64();
        let visible = last_visible(e.get("hidden")).unwrap_or(0);

        if let Some(max) = e["max_seconds"].as_f64() {
            r.check(id("max_seconds"), seconds < max, || {
                format!("took {seconds:.3} s")
            });
        }
        if let Some(want) = e["parse_reply"].as_str() {
            r.check(id("parse_reply"), norm(&out.reply) == norm(want), || {
                format!("reply {:?}, want {want:?}", out.reply)
            });
        }
        if let Some(count) = e["fragments"].as_u64() {
            fragments_check(&mut r, id("fragments"), &text, &out, count);
        }
        for (key, value) in e.as_object().unwrap() {
            if let Some(n) = key
                .strip_prefix("fragment")
                .and_then(|n| n.parse::<usize>().ok())
            {
                text_check(&mut r, id(key), &out, n, visible, value.as_str().unwrap());
            }
        }
        for (n, pattern) in e["fragment_regex"].as_object().into_iter().flatten() {
            let n: usize = n.parse().unwrap();
            regex_check(
                &mut r,
                id(&format!("fragment_regex{n}")),
                &out,
                n,
                visible,
                pattern.as_str().unwrap(),
            );
        }
        for (n, needle) in e["fragment_contains"].as_object().into_iter().flatten() {
            let n: usize = n.parse().unwrap();
            let (name, target, _) = fragment_target(&out, n, visible);
            let needle = needle.as_str().unwrap();
            r.check(
                id(&format!("fragment_contains{n}")),
                target.contains(needle),
                || format!("{name} {target:?} lacks {needle:?}"),
            );
        }
    }
    r.finish();
}

/// Assertions that `expected.jsonl` keeps only in a record's raw `assertions`
/// (JS source), transcribed by hand: (file, test, check).
enum Check {
    ReplyMatches(&'static str),
    QuotedMatches(&'static str),
    QuotedContains(&'static str),
    Cut,
}

const CRISP_RAW_ASSERTIONS: &[(&str, &str, Check)] = &[
    // test_reads_simple_body: 2 fragments, the second hidden.
    ("email_1.txt", "test_reads_simple_body", Check::Cut),
    // /^On/.test(fragments[1]) (the extracted fragment_regex kept only /Loader/ and /Was this/).
    (
        "email_4.txt",
        "test_recognizes_data_string_above_quote",
        Check::QuotedMatches("^On"),
    ),
    (
        "email_6.txt",
        "test_deals_with_multiline_reply_headers",
        Check::QuotedMatches("^On"),
    ),
    // firstFragmentRegex / secondFragmentRegex, defined in the test body.
    (
        "email_reply_header.txt",
        "text_email_reply_header",
        Check::ReplyMatches("(?m)^On the other hand"),
    ),
    (
        "email_reply_header.txt",
        "text_email_reply_header",
        Check::QuotedMatches("^On Wed, Dec 9"),
    ),
    (
        "email_2.txt",
        "test_parseReplied_with_multiple_quotes",
        Check::QuotedContains("Hi folks"),
    ),
    (
        "email_2.txt",
        "test_parseReplied_with_multiple_quotes",
        Check::QuotedContains("riak-users mailing list"),
    ),
    (
        "email_tricky_2_url_with_wrote.txt",
        "test_tricky_url_with_wrote",
        Check::ReplyMatches("Check out this article"),
    ),
    // fragments.length >= 2 / fragments.some(f => f.isSignature())
    (
        "email_tricky_5_mixed_languages.txt",
        "test_tricky_mixed_languages",
        Check::Cut,
    ),
    (
        "email_tricky_9_nested_quotes.txt",
        "test_tricky_nested_quotes",
        Check::Cut,
    ),
    (
        "email_tricky_11_double_signature.txt",
        "test_tricky_double_signature",
        Check::Cut,
    ),
];

/// Fragment indexes up to which crisp's fragments are visible, where
/// `expected.jsonl` has no hidden flags: email_2.txt is github's email_1_2.txt
/// (an inline answer), whose flags are [false, false, false, true, true, true].
const CRISP_LAST_VISIBLE: &[(&str, usize)] = &[("email_2.txt", 2)];

fn run_check(r: &mut Report, id: String, out: &StrippedReply, check: &Check) {
    let quoted = out.quoted.clone().unwrap_or_default();
    match check {
        Check::ReplyMatches(p) => {
            let ok = Regex::new(p).unwrap().is_match(&out.reply);
            r.check(id, ok, || {
                format!("/{p}/ does not match reply {:?}", out.reply)
            });
        }
        Check::QuotedMatches(p) => {
            let ok = Regex::new(p).unwrap().is_match(&quoted);
            r.check(id, ok, || format!("/{p}/ does not match quoted {quoted:?}"));
        }
        Check::QuotedContains(s) => {
            r.check(id, quoted.contains(s), || {
                format!("quoted lacks {s:?}: {quoted:?}")
            });
        }
        Check::Cut => r.check(id, out.quoted.is_some(), || format!("nothing cut: {out:?}")),
    }
}

#[test]
fn crisp_corpus() {
    let dir = corpus_dir("crisp-email-reply-parser");
    let mut r = Report::new("crisp");
    for line in read_text(&dir.join("expected.jsonl"))
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let e: Value = serde_json::from_str(line).unwrap();
        let file = e["file"].as_str().unwrap();
        let test = e["test"].as_str().unwrap();
        let text = read_text(&dir.join("fixtures").join(file));
        let out = strip_reply(&text, None);
        let id = |what: &str| format!("crisp/{file}#{test}:{what}");
        let visible = CRISP_LAST_VISIBLE
            .iter()
            .find(|(f, _)| *f == file)
            .map_or(0, |&(_, n)| n);

        for key in ["expected_first_fragment", "expected_first_fragment_trimmed"] {
            if let Some(want) = e[key].as_str() {
                text_check(&mut r, id(key), &out, 0, visible, want);
            }
        }
        for key in ["expected_visible_text", "expected_visible_text_trimmed"] {
            if let Some(want) = e[key].as_str() {
                r.check(id(key), norm(&out.reply) == norm(want), || {
                    format!("reply {:?}, want {want:?}", out.reply)
                });
            }
        }
        if let Some(count) = e["expected_fragment_count"].as_u64() {
            fragments_check(&mut r, id("expected_fragment_count"), &text, &out, count);
        }
        for (n, pattern) in e["fragment_regex"].as_object().into_iter().flatten() {
            let n: usize = n.parse().unwrap();
            regex_check(
                &mut r,
                id(&format!("fragment_regex{n}")),
                &out,
                n,
                visible,
                pattern.as_str().unwrap(),
            );
        }
        for (_, _, check) in CRISP_RAW_ASSERTIONS
            .iter()
            .filter(|(f, t, _)| *f == file && *t == test)
        {
            let what = match check {
                Check::ReplyMatches(p) => format!("reply~{p}"),
                Check::QuotedMatches(p) => format!("quoted~{p}"),
                Check::QuotedContains(s) => format!("parseReplied:{s}"),
                Check::Cut => "cut".to_string(),
            };
            run_check(&mut r, id(&what), &out, check);
        }
    }
    r.finish();
}

/// Postdesk's own expectations for corpus mails that upstream asserts only weakly
/// (or not at all): what a helpdesk agent should see.
enum Want {
    /// Nothing to cut: the reply is the whole text.
    Whole,
    /// This reply, and `quoted` starting with the given text.
    Cut(&'static str, &'static str),
    /// A reply starting and ending with these lines (long inline answers), and
    /// `quoted` starting with the given text.
    Span(&'static str, &'static str, &'static str),
}

const OWN_EXPECTATIONS: &[(&str, Want)] = &[
    (
        "crisp-email-reply-parser/fixtures/email_tricky_4_from_in_body.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_18_inline_reply.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_19_quote_without_header.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_8_sent_from_in_content.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_6_regards_in_sentence.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_3_code_block.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_7_multiple_dashes.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_21.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_emoji.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_sent_from_my_not_signature.txt",
        Want::Whole,
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_17_forward_header.txt",
        Want::Cut(
            "See the forwarded message below.",
            "---------- Forwarded message",
        ),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_11_double_signature.txt",
        Want::Cut("Thanks for your help!", "Best regards,"),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_tricky_9_nested_quotes.txt",
        Want::Cut("I agree with the points below.", "On Dec 15"),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_20.txt",
        Want::Cut("On Thursday.", "> On May 17"),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_unquoted_reply.txt",
        Want::Cut("This is my reply.", "On Nov 26, 2013"),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_custom_quote_header.txt",
        Want::Cut("Thank you!", "2013.02.08."),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_customer_quote_header_2.txt",
        Want::Cut("Thank you very much.", "From: somedude"),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_customer_quote_header_3.txt",
        Want::Cut(
            "bonjour,\nje n'ai pas eu de retour sur ma précision..\nmerci d'avance",
            "De : Someone",
        ),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_thread.txt",
        Want::Cut(
            "This is new email reply in thread from bellow.",
            "On Nov 21, 2014,",
        ),
    ),
    (
        "crisp-email-reply-parser/fixtures/email_19.txt",
        Want::Cut(
            "On Thursday, I get proper rendering.\n\nSent from a magnificent torch of pixels",
            "On Dec 16, 2011",
        ),
    ),
    (
        "talon/standard_replies/thunderbird.eml",
        Want::Cut("Hello", "On 04/02/2012 06:26 PM, Megan One wrote:"),
    ),
    (
        // Inline answers: the reply runs to the sender's last line, quotes included.
        "github-email_reply_parser/emails/email_1_8.txt",
        Want::Span(
            "On Tue, Apr 29, 2014 at 4:22 PM, Example Dev <sugar@example.com>wrote:",
            "and under this.",
            ">\n> -- Tim",
        ),
    ),
    (
        "github-email_reply_parser/emails/email_1_2.txt",
        Want::Span(
            "Hi,",
            "the keys in a bucket, you’ll need to delete them all individually.\"",
            "> \n> -Abhishek Kona",
        ),
    ),
];

#[test]
fn postdesk_expectations() {
    let mut r = Report::new("postdesk");
    for (path, want) in OWN_EXPECTATIONS {
        let full = corpus_dir(path);
        let text = if path.ends_with(".eml") {
            let raw = std::fs::read(&full).unwrap();
            let mail = mail_parser::MessageParser::default()
                .parse(&raw[..])
                .expect(path);
            mail.body_text(0).expect(path).into_owned()
        } else {
            read_text(&full)
        };
        let out = strip_reply(&text, None);
        let reply = norm(&out.reply);
        let (ok, quoted_start) = match want {
            Want::Whole => (reply == norm(&text), None),
            Want::Cut(want, quoted) => (reply == norm(want), Some(*quoted)),
            Want::Span(first, last, quoted) => (
                reply.starts_with(first) && reply.ends_with(last),
                Some(*quoted),
            ),
        };
        r.check(format!("postdesk/{path}#reply"), ok, || {
            format!("reply {:?}", out.reply)
        });
        let ok_quoted = match (quoted_start, &out.quoted) {
            (None, None) => true,
            (Some(start), Some(q)) => q.starts_with(start),
            _ => false,
        };
        r.check(format!("postdesk/{path}#quoted"), ok_quoted, || {
            format!("quoted {:?}, want start {quoted_start:?}", out.quoted)
        });
    }
    r.finish();
}
