//! Everything about a mail that needs no database: runs in parallel on all cores.

use postdesk_core::id::TicketNumber;
use std::path::Path;
use std::sync::LazyLock;

use postdesk_core::route::{self, Route};
use postdesk_core::search::IndexText;
use postdesk_core::{RawMail, attachments};
use postdesk_mail::{
    Classification, ParseOptions, ParsedMail, StrippedReply, Verdict, classify_with_signal,
    parse_with, strip_reply,
};
use postdesk_store::{IncomingMail, RegisteredHelpdesk, StoredAttachment, blobs, now};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct Limits {
    /// Larger mails are kept raw and failed, not parsed.
    pub max_mail_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_mail_bytes: 50 * 1024 * 1024,
        }
    }
}

/// Parses, classifies and routes one mail and writes its kept attachments (made
/// durable in the background: `IncomingMail::await_files` before committing it).
/// Never fails: a problem becomes `IncomingMail::failure`, recorded in the ledger.
pub fn prepare(
    raw: RawMail,
    helpdesks: &[RegisteredHelpdesk],
    fixed_helpdesk: Option<usize>,
    data_dir: &Path,
    limits: &Limits,
    parse_options: &ParseOptions,
) -> IncomingMail {
    let (mut incoming, kept) = analyse(raw, helpdesks, fixed_helpdesk, limits, parse_options);
    for a in kept {
        match blobs::stage_attachment(data_dir, &a.sha256, &a.data) {
            Ok(None) => {}
            Ok(Some(staged)) => {
                let (done, pending) = std::sync::mpsc::sync_channel(1);
                FLUSH_POOL.spawn(move || {
                    let _ = done.send(staged.finish());
                });
                incoming.files_pending.push(pending);
            }
            Err(e) => {
                incoming.failure.get_or_insert_with(|| e.to_string());
            }
        }
    }
    incoming
}

/// Threads that make attachments durable (fsync, then rename into place). Waiting
/// for the disk here rather than on the prepare threads keeps those parsing; the
/// writer waits for a batch's files before it commits (`IncomingMail::await_files`).
static FLUSH_POOL: LazyLock<rayon::ThreadPool> = LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .thread_name(|i| format!("flush-{i}"))
        .build()
        .expect("the attachment flush threads start")
});

/// Everything `prepare` does except writing: the mail, ready to apply, and the
/// attachments whose bytes are to be kept. The rules simulator stops here.
pub fn analyse(
    raw: RawMail,
    helpdesks: &[RegisteredHelpdesk],
    fixed_helpdesk: Option<usize>,
    limits: &Limits,
    parse_options: &ParseOptions,
) -> (IncomingMail, Vec<Attachment>) {
    let sha256 = hex::encode(Sha256::digest(&raw.bytes));
    let mut failure = None;
    let raw_compressed = blobs::compress(&raw.bytes).unwrap_or_else(|e| {
        failure = Some(format!("cannot compress the mail for keeping: {e}"));
        raw.bytes.clone()
    });
    let too_large = raw.bytes.len() > limits.max_mail_bytes;
    let mut mail = if too_large {
        failure = Some(format!(
            "the mail is {} bytes, more than the limit of {} (max_mail_mb)",
            raw.bytes.len(),
            limits.max_mail_bytes
        ));
        ParsedMail::default()
    } else {
        // Parsing is written never to panic; should a bug make it, this mail is kept
        // in the failed queue instead of taking its whole batch down.
        std::panic::catch_unwind(|| parse_with(&raw.bytes, parse_options)).unwrap_or_else(|_| {
            failure = Some(
                "the mail parser crashed on this mail; this is a postdesk bug, please report it"
                    .into(),
            );
            ParsedMail::default()
        })
    };
    mail.remove_nul_chars();
    let mut helpdesk = fixed_helpdesk.unwrap_or_else(|| choose_helpdesk(&mail, helpdesks));
    let mut verdict = classify_with_signal(&mail, &helpdesks[helpdesk].config.own_addresses);
    // A mail that already failed goes to the failed queue of the helpdesk it came to.
    let mut route = if failure.is_none() {
        route::route(&helpdesks[helpdesk].config, &mail, verdict.class)
    } else {
        Route::default()
    };
    if let Some(name) = &route.helpdesk
        && let Some(index) = helpdesks
            .iter()
            .position(|h| h.config.settings.name.eq_ignore_ascii_case(name))
    {
        route.routed_from = Some(helpdesks[helpdesk].config.settings.name.clone());
        helpdesk = index;
        // Our own addresses are the new helpdesk's: a loop is judged against them.
        verdict = classify_with_signal(&mail, &helpdesks[helpdesk].config.own_addresses);
    }
    let Verdict {
        class: classification,
        signal: class_signal,
    } = verdict;
    let hd = &helpdesks[helpdesk].config;
    let subject_numbers = hd.reference.find_all(&mail.subject);
    let reply = if too_large {
        Some(StrippedReply::default())
    } else if could_follow_up(&mail, classification, &subject_numbers) {
        Some(strip_reply(&mail.text, hd.settings.reply_marker.as_deref()))
    } else {
        None // split by the store should threading append it after all
    };
    let mut stored = Vec::with_capacity(mail.attachments.len());
    let mut kept = Vec::new();
    for mut a in std::mem::take(&mut mail.attachments) {
        let refused = attachments::refusal(&hd.settings.attachments, &a.mime_type, a.data.len());
        let size = a.data.len();
        let data = std::mem::take(&mut a.data);
        stored.push(StoredAttachment {
            sha256: a.sha256.clone(),
            original_name: a.original_name,
            safe_name: a.safe_name,
            mime_type: a.mime_type,
            size,
            content_id: a.content_id,
            inline: a.inline,
            refused: refused.clone(),
        });
        if refused.is_none() {
            kept.push(Attachment {
                sha256: a.sha256,
                data,
            });
        }
    }
    // Tokenized here, on all cores, rather than by the one writer thread.
    let indexed = Some(IndexText::of(&mail.text));
    let incoming = IncomingMail {
        indexed,
        helpdesk,
        source: raw.source,
        location: raw.location,
        sha256,
        raw_size: raw.bytes.len(),
        raw_compressed,
        mail,
        attachments: stored,
        classification,
        class_signal,
        subject_numbers,
        indexed_reply: reply.as_ref().map(|r| IndexText::of(&r.reply)),
        reply,
        route,
        received_at: now(),
        failure,
        files_pending: Vec::new(),
    };
    (incoming, kept)
}

/// Whether threading could append the mail to a ticket: only then is its reply
/// split from the quoted history (see `store::ingest::candidates`).
fn could_follow_up(
    mail: &ParsedMail,
    classification: Classification,
    numbers: &[TicketNumber],
) -> bool {
    !numbers.is_empty()
        || !mail.in_reply_to.is_empty()
        || !mail.references.is_empty()
        || (classification == Classification::Bounce
            && (mail.structure.embedded_message_id.is_some()
                || mail.structure.embedded_subject.is_some()))
}

/// The bytes of an attachment to keep, named by their SHA-256.
#[derive(Debug)]
pub struct Attachment {
    pub sha256: String,
    pub data: Vec<u8>,
}

/// The helpdesk one of whose addresses the mail was sent to (envelope headers
/// first, then To and CC); the first helpdesk when none matches.
pub fn choose_helpdesk(mail: &ParsedMail, helpdesks: &[RegisteredHelpdesk]) -> usize {
    route::recipient_helpdesk(mail, helpdesks.iter().map(|h| &h.config)).unwrap_or(0)
}
