//! Attachments: kept by content hash under the data folder, listed on their entry,
//! found for download only through a ticket the agent may see; refused ones are
//! listed with the reason and their bytes not kept.

use sha2::{Digest, Sha256};

use postdesk_store::blobs;

use crate::{Engine, mail};

engine_tests! {
    an_attachment_is_stored_and_read_back_by_its_hash,
}

/// A few bytes that are not text, so any re-encoding would show.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x02\x03\xfe\xff";

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn an_attachment_is_stored_and_read_back_by_its_hash(engine: Engine) {
    let desk = engine.desk().await;
    let report = desk
        .import(
            &mail("Alice <alice@acme.example>", "Screenshot")
                .attach("chart.png", "image/png", PNG)
                .attach("tools.zip", "application/zip", b"PK\x03\x04zip"),
        )
        .await;
    let ticket = desk
        .store
        .ticket_by_id(report.ticket_id.unwrap())
        .await
        .unwrap();
    let attachments = &ticket.entries[0].attachments;
    assert_eq!(attachments.len(), 2, "{attachments:?}");
    let (png, zip) = (&attachments[0], &attachments[1]);
    assert_eq!(
        (
            png.safe_name.as_str(),
            png.mime_type.as_str(),
            png.size,
            png.refused.as_deref()
        ),
        ("chart.png", "image/png", PNG.len() as i64, None)
    );
    let hash = sha256_hex(PNG);
    assert_eq!(png.sha256.as_deref(), Some(hash.as_str()));
    assert_eq!(
        zip.sha256, None,
        "a refused attachment's bytes are not kept"
    );
    assert!(zip.refused.is_some());

    let file = desk
        .store
        .attachment_file(&hash, &[desk.helpdesk("Support")])
        .await
        .unwrap()
        .expect("downloadable from Support");
    assert_eq!(
        (file.safe_name.as_str(), file.mime_type.as_str(), file.size),
        ("chart.png", "image/png", PNG.len() as i64)
    );
    let path = blobs::attachment_path(desk.store.data_dir(), &hash);
    assert_eq!(std::fs::read(&path).unwrap(), PNG);
    assert!(
        desk.store
            .attachment_file(&hash, &[desk.helpdesk("Sales")])
            .await
            .unwrap()
            .is_none(),
        "not through another helpdesk"
    );

    // The same bytes in another mail: one file, listed on both entries.
    let second = desk
        .import(&mail("Bob <bob@other.example>", "Same chart").attach("copy.png", "image/png", PNG))
        .await;
    let ticket = desk
        .store
        .ticket_by_id(second.ticket_id.unwrap())
        .await
        .unwrap();
    assert_eq!(
        ticket.entries[0].attachments[0].sha256.as_deref(),
        Some(hash.as_str())
    );
    let files = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(files, 1);
}
