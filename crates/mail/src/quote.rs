//! Splits a reply from the quoted history below it.
//!
//! The text is scanned line by line from the top. Each line is either the
//! sender's own text, blank, or a *cut*: a `>`-quoted block (with the
//! "On … wrote:" attribution above it, if any), a header that introduces
//! unprefixed history (Outlook's "From:/Sent:" block, "-----Original
//! Message-----", an attribution followed by plain text), or the start of a
//! signature ("-- ", "Sent from my iPhone", a mailing-list footer, a closing
//! "Regards," followed only by a name).
//!
//! Headers and signatures end the reply. A `>` block does not necessarily:
//! if the sender wrote more text below it, the mail is an interleaved
//! (inline) answer and the reply runs down to the last text the sender
//! wrote, quotes included; if the quote is at the very top and only text
//! follows, it is a bottom-post and the reply is the text below it.
//!
//! Every recogniser works on one line or a few joined lines of bounded length
//! (see [`patterns`]), so the whole scan is linear in the input.

mod patterns;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::Range;

use patterns::{
    Field, MAX_HEADER_LEN, field_line, field_line_loose, is_attribution, is_blank, is_filler,
    is_link_reference, is_loose_attribution, is_mobile_signature, is_quoted, is_separator,
    is_sig_delimiter, is_sign_off, is_underscore_rule, looks_like_address, starts_like_attribution,
    trim,
};

/// A reply text split from the quoted part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StrippedReply {
    /// What the sender wrote, trimmed.
    pub reply: String,
    /// The quoted history that was cut off, if any.
    pub quoted: Option<String>,
}

/// Cuts `text` at `marker` (a line such as `===== reply above this line =====`)
/// when given and present, else at the first quote header or quoted block.
///
/// Above the marker, the client's own "On … wrote:" line and signature are
/// stripped too; if nothing is left above it, the marker is ignored (the sender
/// answered below the quote). Without a marker, see the module documentation:
/// signatures are cut, inline answers keep the quotes between the sender's
/// lines, a bottom-post yields the text below the quote, and a forward without
/// a comment is returned whole. `quoted` holds everything that is not in
/// `reply` (the quote above a bottom-post first), or `None` when nothing was cut.
/// Line ends come back as `\n`.
pub fn strip_reply(text: &str, marker: Option<&str>) -> StrippedReply {
    // Work on LF line ends only; the reply comes back with LF line ends.
    // Parsed mail has LF line ends already: copy only when there is a CR.
    let text: Cow<str> = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n").into()
    } else {
        text.into()
    };

    if let Some(marker) = marker.map(str::trim).filter(|m| !m.is_empty()) {
        let marker = marker.to_lowercase();
        let lines = Lines::new(&text);
        if let Some(i) = (0..lines.len()).find(|&i| lines.get(i).to_lowercase().contains(&marker)) {
            // The text above the marker still ends with the client's "On … wrote:"
            // line (and maybe a signature): strip it like any other reply.
            let above = &text[..lines.start(i)];
            let split = Lines::new(above).split();
            if !trim(&above[split.reply.clone()]).is_empty() {
                return assemble(&text, split);
            }
            // Nothing above the marker: the sender answered below the quote.
        }
    }
    let split = Lines::new(&text).split();
    assemble(&text, split)
}

/// Byte ranges of the reply and of quoted text above it (bottom-posts); everything
/// after the reply is quoted too.
struct Split {
    reply: Range<usize>,
    before: Range<usize>,
}

fn assemble(text: &str, split: Split) -> StrippedReply {
    let parts = [&text[split.before], &text[split.reply.end..]];
    let quoted: Vec<&str> = parts
        .iter()
        .map(|p| trim(p))
        .filter(|p| !p.is_empty())
        .collect();
    StrippedReply {
        reply: trim(&text[split.reply]).to_string(),
        quoted: (!quoted.is_empty()).then(|| quoted.join("\n\n")),
    }
}

/// What ends (or interrupts) the sender's own text at a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// A `>` block whose first quoted line is `first_quoted` (the attribution, if
    /// any, is above it).
    Quote { first_quoted: usize },
    /// A header after which the history follows without `>` prefixes.
    History,
    /// A signature, device footer or mailing-list footer.
    Signature,
}

/// The lines of a text, as byte offsets, so results can be sliced out of it.
struct Lines<'a> {
    text: &'a str,
    /// Start offset of each line; a line ends before the next start's '\n'.
    starts: Vec<usize>,
    /// `hard_cut_at` per line, computed at most once: the signature look-ahead
    /// asks again for lines the main scan will reach, and this keeps it linear.
    hard_cuts: Vec<OnceCell<Option<Cut>>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let hard_cuts = vec![OnceCell::new(); starts.len()];
        Lines {
            text,
            starts,
            hard_cuts,
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn start(&self, i: usize) -> usize {
        self.starts[i]
    }

    /// End offset of line `i`, without its '\n'.
    fn end(&self, i: usize) -> usize {
        self.starts
            .get(i + 1)
            .map_or(self.text.len(), |next| next - 1)
    }

    fn get(&self, i: usize) -> &'a str {
        &self.text[self.start(i)..self.end(i)]
    }

    fn next_nonblank(&self, from: usize) -> Option<usize> {
        (from..self.len()).find(|&j| !is_blank(self.get(j)))
    }

    /// Lines `from..to`, trimmed and joined with spaces (for headers that clients
    /// wrap over several lines).
    fn join(&self, from: usize, to: usize) -> String {
        (from..to)
            .map(|j| trim(self.get(j)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Finds the reply: see the module documentation.
    fn split(&self) -> Split {
        let n = self.len();
        let mut blocks: Vec<(usize, usize)> = Vec::new();
        let mut own_before_quote = false;
        let mut own_after_quote: Option<usize> = None;
        // One past the last line of the sender's own text.
        let mut own_end = 0;
        let mut stop = None;

        let mut i = 0;
        while i < n {
            let line = self.get(i);
            if is_blank(line) {
                i += 1;
                continue;
            }
            match self.cut_at(i) {
                Some(Cut::Quote { first_quoted }) => {
                    let end = self.quote_end(first_quoted);
                    blocks.push((i, end));
                    i = end;
                }
                Some(cut) => {
                    stop = Some(cut);
                    break;
                }
                None => {
                    if !is_filler(line) && !is_link_reference(line) {
                        if blocks.is_empty() {
                            own_before_quote = true;
                        } else if own_after_quote.is_none() {
                            own_after_quote = Some(i);
                        }
                        own_end = i + 1;
                    }
                    i += 1;
                }
            }
        }

        let to_own_end = if own_end == 0 {
            0
        } else {
            self.end(own_end - 1)
        };
        let whole = Split {
            reply: 0..self.text.len(),
            before: 0..0,
        };
        match (blocks.len(), own_after_quote) {
            // Nothing was cut.
            (0, _) if stop.is_none() => whole,
            // A forward without a comment: the forwarded mail is the message.
            (0, _) if own_end == 0 && stop == Some(Cut::History) => whole,
            // Bottom-post: the quote is on top and the sender wrote below it.
            (1, Some(first)) if !own_before_quote => Split {
                reply: self.start(first)..to_own_end,
                before: 0..self.start(first),
            },
            // Top-post (the reply ends above the first cut), or an inline answer
            // (the reply runs down to the sender's last line, quotes included).
            _ => Split {
                reply: 0..to_own_end,
                before: 0..0,
            },
        }
    }

    fn cut_at(&self, i: usize) -> Option<Cut> {
        self.hard_cut_at(i)
            .or_else(|| self.sign_off_at(i).then_some(Cut::Signature))
    }

    /// Cuts recognisable from the line itself (and a few lines below it).
    fn hard_cut_at(&self, i: usize) -> Option<Cut> {
        *self.hard_cuts[i].get_or_init(|| self.find_hard_cut(i))
    }

    fn find_hard_cut(&self, i: usize) -> Option<Cut> {
        let line = self.get(i);
        if is_quoted(line) {
            return Some(Cut::Quote { first_quoted: i });
        }
        if is_sig_delimiter(line) {
            return Some(Cut::Signature);
        }
        if is_underscore_rule(line) {
            // Outlook puts one above the forwarded header; mailman above its footer.
            let header_below = self
                .next_nonblank(i + 1)
                .is_some_and(|j| j <= i + 2 && self.header_block_at(j));
            return Some(if header_below {
                Cut::History
            } else {
                Cut::Signature
            });
        }
        if is_separator(line) {
            return Some(Cut::History);
        }
        if let Some(k) = self.attribution_at(i) {
            return Some(self.quote_or_history(i + k));
        }
        if is_loose_attribution(line)
            && let Some(j) = self.next_nonblank(i + 1)
            && j <= i + 2
            && is_quoted(self.get(j))
        {
            return Some(Cut::Quote { first_quoted: j });
        }
        if self.header_block_at(i) {
            return Some(Cut::History);
        }
        if is_mobile_signature(line) {
            return Some(Cut::Signature);
        }
        None
    }

    /// After an attribution: a `>` block, or history pasted without prefixes.
    fn quote_or_history(&self, after: usize) -> Cut {
        match self.next_nonblank(after) {
            Some(j) if is_quoted(self.get(j)) => Cut::Quote { first_quoted: j },
            _ => Cut::History,
        }
    }

    /// Number of lines (1–3) of an attribution starting at line `i`.
    fn attribution_at(&self, i: usize) -> Option<usize> {
        let first_is_lead = starts_like_attribution(self.get(i));
        for k in 1..=3 {
            let last = i + k - 1;
            if last >= self.len() || (k > 1 && !first_is_lead) {
                return None;
            }
            let line = self.get(last);
            // A wrapped address can leave ">:" alone on the last line; it is no quote.
            let quoted = is_quoted(line) && !(k > 1 && matches!(trim(line), ">:" | ">："));
            // A sentence is not the first half of a header ("On it.\nOn Tue, … wrote:").
            let after_sentence = k > 1 && trim(self.get(last - 1)).ends_with(['.', '!', '?']);
            if is_blank(line) || quoted || line.len() > MAX_HEADER_LEN || after_sentence {
                return None;
            }
            let candidate: Cow<str> = if k == 1 {
                trim(line).into()
            } else {
                self.join(i, i + k).into()
            };
            if is_attribution(&candidate) {
                // A header that starts on a later line belongs to that line: don't
                // swallow the line above it ("On it\nOn Tue, … wrote:"). A later line
                // starting with a digit is the rest of a wrapped date instead.
                let later = (i + 1..i + k).any(|s| {
                    let line = self.get(s);
                    !trim(line).starts_with(|c: char| c.is_ascii_digit())
                        && starts_like_attribution(line)
                        && is_attribution(&self.join(s, i + k))
                });
                return (!later).then_some(k);
            }
        }
        None
    }

    /// A forwarded/quoted header block starting at line `i`: "From:" with at least
    /// one more field ("Sent:", "Date:", "To:", "Subject:" in any supported
    /// language), in consecutive lines. A wrapped value may take one extra line.
    fn header_block_at(&self, i: usize) -> bool {
        let first_line = self.get(i);
        let Some((first, value)) = field_line_loose(first_line) else {
            return false;
        };
        let glued = field_line(first_line).is_none();
        let mut fields = vec![first];
        let mut from_address = first == Field::From && looks_like_address(value);
        let mut after_from = first == Field::From;
        let mut wrapped = 0;
        for j in i + 1..self.len().min(i + 12) {
            let line = self.get(j);
            if is_blank(line) {
                break;
            }
            if let Some((field, value)) = field_line(line) {
                if !fields.contains(&field) {
                    fields.push(field);
                }
                from_address |= field == Field::From && looks_like_address(value);
                after_from = field == Field::From;
                wrapped = 0;
            } else {
                wrapped += 1;
                if wrapped > 1 {
                    break;
                }
                // "From: Human Resources\n<hr@example.com>"
                from_address |= after_from && looks_like_address(line);
            }
        }
        let has = |f| fields.contains(&f);
        if glued && fields.len() < 3 {
            return false;
        }
        // "From: Paris / To: London" in prose has no address, no "Sent:" and no subject.
        has(Field::From)
            && fields.len() >= 2
            && (from_address || has(Field::Sent) || (fields.len() >= 3 && has(Field::Subject)))
    }

    /// A closing line ("Regards,") followed only by a few short lines (name, title)
    /// before the end of the text or the next cut.
    fn sign_off_at(&self, i: usize) -> bool {
        if !is_sign_off(self.get(i)) {
            return false;
        }
        let window_end = self.len().min(i + 12);
        let mut lines_after = 0;
        for j in i + 1..window_end {
            let line = self.get(j);
            if is_blank(line) {
                continue;
            }
            if self.hard_cut_at(j).is_some() {
                return true;
            }
            lines_after += 1;
            if lines_after > 6 || trim(line).chars().count() > 80 {
                return false;
            }
        }
        window_end == self.len()
    }

    /// One past the last line of the `>` block starting at `first`. Blank lines
    /// inside the block belong to it.
    fn quote_end(&self, first: usize) -> usize {
        let n = self.len();
        let mut end = first + 1;
        let mut j = end;
        while j < n {
            let line = self.get(j);
            if is_quoted(line) {
                j += 1;
                end = j;
                continue;
            }
            if is_blank(line) {
                j += 1;
                continue;
            }
            // Clients that hard-wrap quoted text leave the continuation of a long
            // line unprefixed ("> … pharetra d\nignissim odio?\n>"): one or two
            // such lines squeezed between quoted lines are part of the quote.
            if j == end && trim(self.get(j - 1)).chars().count() >= 40 {
                let mut k = j;
                while k < n && k < j + 2 && !is_blank(self.get(k)) && !is_quoted(self.get(k)) {
                    k += 1;
                }
                if k < n && is_quoted(self.get(k)) {
                    j = k;
                    continue;
                }
            }
            break;
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> String {
        strip_reply(text, None).reply
    }

    const MARKER: &str = "===== reply above this line =====";

    #[test]
    fn nothing_to_strip() {
        let r = strip_reply("  Hello there.\n\nHow are you?\n", None);
        assert_eq!(r.reply, "Hello there.\n\nHow are you?");
        assert_eq!(r.quoted, None);
        assert_eq!(strip_reply("", None), StrippedReply::default());
        assert_eq!(strip_reply(" \n\t\n", None), StrippedReply::default());
    }

    #[test]
    fn marker_line_cuts_and_drops_the_attribution_above_it() {
        let text = "Thanks, that fixed it.\n\nOn Tue, 3 Jun 2025 at 10:02, Support <help@example.com> wrote:\n> ===== reply above this line =====\n> Did the reset work?\n";
        let r = strip_reply(text, Some(MARKER));
        assert_eq!(r.reply, "Thanks, that fixed it.");
        let quoted = r.quoted.unwrap();
        assert!(quoted.starts_with("On Tue, 3 Jun 2025"), "{quoted}");
        assert!(quoted.contains("Did the reset work?"));
    }

    #[test]
    fn marker_wins_over_quote_detection_below_it() {
        // Without the marker, the unquoted "> " free text would make this an inline reply.
        let text = "Short answer: yes.\n===== Reply above this line =====\n\nTicket #42\n> old\nmore old text\n";
        let r = strip_reply(text, Some(MARKER));
        assert_eq!(r.reply, "Short answer: yes.");
        assert!(
            r.quoted
                .unwrap()
                .starts_with("===== Reply above this line =====")
        );
    }

    #[test]
    fn marker_absent_or_nothing_above_it_falls_back() {
        let text =
            "Hello\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\n\n> Hi\n";
        assert_eq!(strip_reply(text, Some(MARKER)).reply, "Hello");
        assert_eq!(strip_reply(text, Some("  ")).reply, "Hello");
        // The client put the answer below the quoted marker.
        let below = "> ===== reply above this line =====\n> Question?\n\nMy answer.\n";
        assert_eq!(strip_reply(below, Some(MARKER)).reply, "My answer.");
    }

    #[test]
    fn marker_with_crlf_and_signature_above() {
        let text =
            "Done.\r\n\r\nSent from my iPhone\r\n\r\n===== reply above this line =====\r\nold\r\n";
        let r = strip_reply(text, Some(MARKER));
        assert_eq!(r.reply, "Done.");
        assert_eq!(
            r.quoted.as_deref(),
            Some("Sent from my iPhone\n\n===== reply above this line =====\nold")
        );
    }

    #[test]
    fn english_attribution_one_two_and_three_lines() {
        assert_eq!(
            reply("Yes.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <m@example.com> wrote:\n\n> Hi"),
            "Yes."
        );
        assert_eq!(
            reply("Yes.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <\nm@example.com> wrote:\n\n> Hi"),
            "Yes."
        );
        assert_eq!(
            reply("Yes.\nOn Dec 16, 2011, at 12:47 PM, Corey\n<c@example.com>\nwrote:\n\n> Hi"),
            "Yes."
        );
        // No `>` below: the history was pasted plain.
        assert_eq!(
            reply("Yes.\n\nOn Wed, 14 Nov 2018 08:14:43 -0200 John <j@doe.com> wrote\n\nOld text"),
            "Yes."
        );
    }

    #[test]
    fn attribution_does_not_swallow_the_line_above() {
        for above in ["On Monday I'll call you.", "On it", "See you at 5"] {
            let text = format!("{above}\nOn Tue, 2 Mar 2021 at 10:00, Bob <b@x.org> wrote:\n> hi");
            assert_eq!(reply(&text), above);
        }
        // A date wrapped onto the next line is still one header.
        let wrapped = "Ok.\nOn Tue, 2 Mar\n2021 at 10:00, Bob <b@x.org> wrote:\n> hi";
        assert_eq!(reply(wrapped), "Ok.");
    }

    #[test]
    fn language_attributions() {
        let cases = [
            (
                "de",
                "Am 13.12.2017 um 21:11 schrieb Hans Müller <hans@example.de>:",
            ),
            ("de", "Am 14.01.2024 um 10:00 schrieb Hans Mueller:"),
            (
                "fr",
                "Le 15 janv. 2024 à 14:30, Pierre Dubois <pierre@example.fr> a écrit :",
            ),
            (
                "es",
                "El 3 mar 2024, a las 10:15, Ana <ana@example.es> escribió:",
            ),
            (
                "it",
                "Il giorno 8 dic 2016, alle ore 10:35, Marco <m@example.it> ha scritto:",
            ),
            (
                "it",
                "In data 11 ottobre 2017 21:11:31 \"John Doe\" <j@example.com> ha scritto:",
            ),
            (
                "nl",
                "Op 12 december 2016 19:05 schreef Jan Jansen <jan@example.nl>:",
            ),
            (
                "pl",
                "W dniu 2017-01-09 11:59:39 użytkownik Jan <jan@example.pl> pisze:",
            ),
            (
                "pl",
                "Dnia 27 grudnia 2016 12:08 Jan <jan@example.pl> napisał(a):",
            ),
            (
                "pt",
                "Em 10 de julho de 2017 às 16:32, João <joao@example.pt> escreveu:",
            ),
            (
                "da",
                "Den 4. jul. 2024 kl. 17.45 skrev Anders <a@example.dk>:",
            ),
            (
                "no",
                "tir. 18. apr. 2017 kl. 13:09 skrev Test user <test@example.com>:",
            ),
            (
                "sv",
                "Den 5 maj 2023 kl. 09:12 skrev Sven <sven@example.se>:",
            ),
            (
                "fi",
                "pe 20. lokakuuta 2017 klo 17.50 John Coe <j@example.fi> kirjoitti:",
            ),
            (
                "ru",
                "25 мая 2024 г., в 12:00, Иван <ivan@example.ru> написал(а):",
            ),
            (
                "ru",
                "ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:",
            ),
            ("hu", "2013.02.08. 7:31 keltezéssel, \"Eszter\" írta:"),
            ("zh", "在 2024年1月15日 14:30，张三 <z@example.cn> 写道："),
        ];
        for (lang, header) in cases {
            // History quoted with `>`, and pasted plain (only the attribution tells).
            for below in ["> quoted line", "quoted line"] {
                let text = format!("My answer.\n\n{header}\n{below}\n");
                let r = strip_reply(&text, None);
                assert_eq!(r.reply, "My answer.", "{lang}: {header} / {below}");
                assert_eq!(r.quoted.unwrap(), format!("{header}\n{below}"), "{lang}");
            }
            // Wrapped over two lines by the client.
            let space = header
                .match_indices(' ')
                .map(|(at, _)| at)
                .rfind(|&at| at <= header.len() / 2)
                .unwrap();
            let (first, second) = (&header[..space], &header[space + 1..]);
            let text = format!("My answer.\n\n{first}\n{second}\nquoted line\n");
            assert_eq!(reply(&text), "My answer.", "{lang}: wrapped {header}");
        }
    }

    #[test]
    fn language_header_blocks_and_separators() {
        let cases = [
            "From: Bob <bob@example.com>\nSent: Monday, May 5, 2025 10:00 AM\nTo: Me\nSubject: Hi",
            "*From:* Bob [mailto:bob@example.com]\n*Sent:* Monday\n*To:* me@example.com",
            "From: Bob Smith\nSent: Monday, May 5, 2025 10:00 AM",
            "From: Bob <bob@example.com>\nDate: Mon, 5 May 2025\nSubject: Hi",
            "Date: Mon, 5 May 2025\nSubject: Hi\nFrom: bob@example.com\nTo: me@example.com",
            "Von: Max <max@beispiel.de>\nGesendet: Montag, 5. Mai 2025 10:00\nAn: Erika\nBetreff: Anfrage",
            "De : Société <contact@example.fr>\nEnvoyé le : lundi 5 mai 2025 10:00\nÀ : moi@example.fr\nObjet : Question",
            "De: Ana <ana@example.es>\nEnviado el: lunes, 5 de mayo de 2025\nPara: yo\nAsunto: Hola",
            "Da: Marco <m@example.it>\nInviato: lunedì 5 maggio 2025 10:00\nA: io\nOggetto: Ciao",
            "Van: Jan [mailto:jan@example.nl]\nVerzonden: maandag 5 mei 2025 10:00\nAan: ik\nOnderwerp: Vraag",
            "Od: Jan <jan@example.pl>\nWysłano: poniedziałek, 5 maja 2025 10:00\nDo: ja\nTemat: Pytanie",
            "От: Иван <ivan@example.ru>\nОтправлено: 5 мая 2025 г. 10:00\nКому: мне\nТема: Вопрос",
            "-----Original Message-----\nHi",
            "----- Original Message -----\nHi",
            "-----Ursprüngliche Nachricht-----\nHallo",
            "-------- Message d'origine --------\nSalut",
            "-------- Oprindelig besked --------\nHej",
            "---------- Forwarded message ---------\nFrom: Bob <bob@example.com>",
            "________________________________\nFrom: Bob <bob@example.com>\nSent: Monday",
        ];
        for header in cases {
            let text = format!("My answer.\n\n{header}\n\nOld text\n");
            let r = strip_reply(&text, None);
            assert_eq!(r.reply, "My answer.", "{header}");
            assert!(r.quoted.unwrap().contains("Old text"), "{header}");
        }
    }

    #[test]
    fn prose_is_not_a_header() {
        for text in [
            "On your remote host you can run:\n\n  telnet 127.0.0.1 52698\n\nThat's it.",
            "From: Paris\nTo: London\nDate: 5 May",
            "The data comes From: our database, not From: external sources.",
            "In 2019 he wrote:\nthat it worked.",
            "To be honest, on 5 May he wrote:\nthat it was fine.",
            "Check https://example.com/on-date-someone-wrote-about-parsing\nand \"wrote:\" patterns.",
            "I wanted to discuss the issue with regards to the payment.\n\nThanks",
            "The mail was sent from my iPhone app to all users.\nSent from my desk, is much easier then my phone.",
            "Sent from a magnificent torch of pixels",
            "Key points\n----\n1. fast\n====\nmore text",
            "Hello,\n-- first point\n-- second point\nThanks!",
        ] {
            // Text above, so that a cut could not pass as a forward without comment.
            let text = format!("Hello.\n\n{text}");
            let r = strip_reply(&text, None);
            assert_eq!(r.reply, text.trim(), "{text}");
            assert_eq!(r.quoted, None, "{text}");
        }
    }

    #[test]
    fn signatures_end_the_reply() {
        assert_eq!(reply("Hi\n\n-- \nJohn\nACME"), "Hi");
        assert_eq!(reply("Hi\n--\nJohn"), "Hi");
        assert_eq!(reply("Here it is\n\nSent from my iPhone"), "Here it is");
        assert_eq!(
            reply("Here it is\n\nSent from my Verizon Wireless BlackBerry"),
            "Here it is"
        );
        assert_eq!(
            reply("Here it is\n\nVon meinem iPhone gesendet\n\nOld text without header"),
            "Here it is"
        );
        assert_eq!(
            reply("Here it is\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n___\nFrom: x"),
            "Here it is"
        );
        assert_eq!(
            reply("Can you help?\n\nRegards,\n\nJohn Doe\nCEO @ Acme !"),
            "Can you help?"
        );
        assert_eq!(
            reply("Thanks\n\n_______________\nlist-users mailing list\nlist@example.com"),
            "Thanks"
        );
        // A closing followed by real content is not a signature.
        let long = "Can you help?\n\nRegards,\nJohn\n\nP.S. here is the full log of the failing run that I promised you yesterday, all of it:\nline\nline\nline\nline\nline\nline\nline";
        assert_eq!(reply(long), long);
    }

    #[test]
    fn bottom_post_and_inline_answers() {
        let r = strip_reply(
            "On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi \nHello",
            None,
        );
        assert_eq!(r.reply, "Hello");
        assert_eq!(
            r.quoted.as_deref(),
            Some("On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi")
        );

        let inline = "On Dec 15, 2024, Jane <jane@example.com> wrote:\n> Option A?\n\nYes.\n\n> Option B?\n\nNo.";
        assert_eq!(strip_reply(inline, None).reply, inline);

        let with_tail = "Hi,\n> question one\n\nanswer one\n\n> old signature\n\n-- \nme";
        let r = strip_reply(with_tail, None);
        assert_eq!(r.reply, "Hi,\n> question one\n\nanswer one");
        assert_eq!(r.quoted.as_deref(), Some("> old signature\n\n-- \nme"));
    }

    #[test]
    fn html_link_references_after_the_quote_are_not_an_answer() {
        let text = "Hi. I am fine.\n\nOn Thu, Jun 26, 2014 at 2:14 PM, Alexander <[a@example.com][1]> wrote:\n\n> Hello!\n\n[1]: mailto:a@example.com\n";
        assert_eq!(reply(text), "Hi. I am fine.");
    }

    #[test]
    fn hard_wrapped_quote_lines_stay_in_the_quote() {
        let text = "Top answer.\n\nOn Mon, 5 May 2025 at 10:00, Bob <b@example.com> wrote:\n> a fairly long quoted line that the client wrapped in the mid\ndle of a word\n> more\n";
        assert_eq!(reply(text), "Top answer.");
    }

    #[test]
    fn forward_without_comment_keeps_the_forwarded_text() {
        let text = "---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon\n\nPlease help.";
        let r = strip_reply(text, None);
        assert_eq!(r.reply, text);
        assert_eq!(r.quoted, None);
        // A bare quote with nothing new is not a reply.
        assert_eq!(strip_reply("> just a quote", None).reply, "");
    }

    #[test]
    fn html_rendered_headers() {
        let text = "Hi\nthere\nBob **From: **bob@example.com\n**To: **x@example.com\n**Sent: **Friday\n**Subject: **Hello\n\nHello";
        assert_eq!(reply(text), "Hi\nthere");
        let text = "Hi.\n\n**От:**\u{a0}[Alexander L][1]\n**Отправлено:**\u{a0}\u{200e}26 июня\n**Кому:**\u{a0}[Alex][2]\n\nHello";
        assert_eq!(reply(text), "Hi.");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let inputs = [
            "\r",
            "\r\r\n\n",
            ">",
            "--",
            "On",
            "From:",
            ":",
            "é\n> ü\nß",
            "On 1 wrote:",
            "\u{feff}\u{200b}",
            "💥 On 1 Jan 2020, 😀 <a@b> wrote:\n> 💥",
            "From: 💥@💥\nSent: 💥\n💥",
            "Regards,",
            "________________",
        ];
        for input in inputs {
            for marker in [None, Some("💥"), Some("wrote")] {
                let _ = strip_reply(input, marker);
            }
        }
        // Multi-byte text right at every kind of cut.
        let text = "Ünïcödé ✓\n\nAm 1.2.2020 um 10:00 schrieb Jörg <j@ö.de>:\n> Grüße";
        assert_eq!(reply(text), "Ünïcödé ✓");
    }

    /// Random texts made of the tokens the recognisers look at: no panic, nothing
    /// invented or lost (reply and quoted together hold the text's characters).
    #[test]
    fn token_soup_never_panics_and_loses_nothing() {
        const TOKENS: &[&str] = &[
            "On ",
            "Am ",
            " ",
            "\n",
            "\n",
            "\r\n",
            "\r",
            ">",
            "> ",
            "wrote:",
            "schrieb",
            "From: ",
            "Sent: ",
            "To: ",
            "Subject: ",
            "@",
            "<",
            ">:",
            "💥",
            "é",
            "--",
            "__",
            "Regards,",
            "Sent from my iPhone",
            "1",
            "12:30",
            ":",
            "-----Original Message-----",
            "[1]: x",
            "\u{a0}",
            "\u{200e}",
            "napisał(а):",
            "a long line of ordinary words for wrapping ",
            "marker",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let visible = |s: &str| {
            s.chars()
                .filter(|c| !c.is_whitespace() && !patterns::is_space(*c))
                .count()
        };
        for _ in 0..3000 {
            let len = (next() % 40) as usize;
            let text: String = (0..len)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            for marker in [None, Some("marker")] {
                let r = strip_reply(&text, marker);
                let kept = visible(&r.reply) + r.quoted.as_deref().map_or(0, visible);
                assert_eq!(kept, visible(&text), "{text:?} / {marker:?} -> {r:?}");
                if r.quoted.is_none() {
                    assert_eq!(
                        r.reply,
                        trim(&text.replace("\r\n", "\n").replace('\r', "\n"))
                    );
                }
            }
        }
    }

    #[test]
    fn redos_guard_is_linear() {
        let started = std::time::Instant::now();
        let huge_line = "On ".repeat(200_000) + "wrote:";
        let _ = strip_reply(&huge_line, None);
        let many_headers = "On 1 Jan 2020, a <a@b.c> wrote:\n".repeat(20_000);
        let _ = strip_reply(&many_headers, Some("marker"));
        let many_fields = "From: a@b.c\nTo: x\n".repeat(20_000);
        let _ = strip_reply(&many_fields, None);
        let nested = format!("{}x", "> ".repeat(100_000));
        let _ = strip_reply(&nested, None);
        let sign_offs = "Regards,\n".repeat(50_000);
        let _ = strip_reply(&sign_offs, None);
        let wrapped =
            "> a quoted line that is long enough to count as wrapped by the client\nnot quoted\n"
                .repeat(20_000);
        let _ = strip_reply(&wrapped, None);
        let blanks = format!(
            "Hi\nOn 1 Jan 2020, a <a@b.c> wrote:{}x",
            "\n".repeat(200_000)
        );
        let _ = strip_reply(&blanks, None);
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs_f64() < 5.0, "took {elapsed:?}");
    }
}
