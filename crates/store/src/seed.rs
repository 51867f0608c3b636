//! Generated helpdesk data for benches and trials (`postdesk dev seed`, issue 19): N
//! tickets with about three entries each, written through intake's own path.
//!
//! Each ticket's first mail, and the customer's follow-up most tickets get, is built as
//! an [`IncomingMail`] (the mail already "parsed": no MIME is read) and applied by
//! [`Batch::ingest`](crate::Batch::ingest), so the ledger row, the contact, the ticket,
//! its participants, the entry and its attachments are written exactly as an import
//! writes them, and whatever the store keeps in step with those writes (an index, a
//! trigger) stays right. An agent's note and a status change follow through
//! `entries` in the same transaction; only the fields intake never sets by itself
//! (final status, priority, assignee, dates spread over months) are set here, on the
//! `tickets` row, afterwards.
//!
//! Everything a ticket holds comes from its own random stream (SplitMix64 seeded by
//! the seed and the ticket's index), so a seed always gives the same data, whatever
//! the batch size. Texts are in English, German, French, Spanish, Russian, Japanese
//! and Chinese; contacts recur over several tickets.

use std::time::Instant;

use postdesk_core::MailSource;
use postdesk_core::id::{AgentId, TicketId};
use postdesk_mail::{Address, Classification, ParsedMail, StrippedReply};
use sha2::{Digest, Sha256};

use crate::access::Role;
use crate::engine::{Db, params};
use crate::incoming::{IncomingMail, Outcome, StoredAttachment};
use crate::{RegisteredHelpdesk, Result, Store, StoreError, blobs, entries};

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// Tickets to make.
    pub tickets: u64,
    /// How many of the registered helpdesks (the first ones) get tickets.
    pub helpdesks: usize,
    /// Same seed, same data.
    pub seed: u64,
    /// Seed into a database that already holds tickets (adding to them).
    pub force: bool,
    /// Tickets per transaction.
    pub batch: u64,
}

impl SeedPlan {
    /// `tickets` tickets over `helpdesks` helpdesks from `seed`, in batches of 2,000.
    pub fn new(tickets: u64, helpdesks: usize, seed: u64) -> Self {
        Self {
            tickets,
            helpdesks,
            seed,
            force: false,
            batch: 2_000,
        }
    }
}

/// How far a seeding is, after each committed batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeedProgress {
    pub tickets: u64,
    pub entries: u64,
}

/// What a seeding made.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub tickets: u64,
    /// Incoming mails, notes and events.
    pub entries: u64,
    pub attachments: u64,
    /// The agents tickets are assigned to (created when missing), by helpdesk.
    pub agents: Vec<String>,
    pub seconds: f64,
}

/// Agents made per helpdesk.
const AGENTS_PER_HELPDESK: usize = 8;

impl Store {
    /// Tickets and ledger rows in the database: what `seed` refuses to add to
    /// unless forced.
    pub async fn ticket_and_mail_counts(&self) -> Result<(i64, i64)> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT (SELECT COUNT(*) FROM tickets), (SELECT COUNT(*) FROM intake)",
            )?
            .query_row((), |r| Ok((r.get(0)?, r.get(1)?)))
        })
        .await
    }

    /// Seeds `plan.tickets` tickets into the first `plan.helpdesks` of `helpdesks`
    /// (see the module's doc), calling `progress` after each committed batch.
    pub async fn seed(
        &self,
        helpdesks: &[RegisteredHelpdesk],
        plan: SeedPlan,
        progress: impl FnMut(SeedProgress) + Send + 'static,
    ) -> Result<SeedReport> {
        if plan.tickets == 0 {
            return Err(StoreError::Invalid("seed at least one ticket".into()));
        }
        if plan.helpdesks == 0 || plan.helpdesks > helpdesks.len() {
            return Err(StoreError::Invalid(format!(
                "cannot seed {} helpdesks: the config names {} ([[helpdesk]] tables); add more, or ask for fewer",
                plan.helpdesks,
                helpdesks.len()
            )));
        }
        if plan.batch == 0 {
            return Err(StoreError::Invalid(
                "a seeding batch holds at least one ticket".into(),
            ));
        }
        let (tickets, mails) = self.ticket_and_mail_counts().await?;
        if (tickets > 0 || mails > 0) && !plan.force {
            return Err(StoreError::Conflict(format!(
                "the database is not empty ({tickets} tickets, {mails} mails in the ledger): seed an empty database, or pass --force to add to it"
            )));
        }
        let started = Instant::now();
        let used = &helpdesks[..plan.helpdesks];
        let mut agents_of = Vec::new();
        let mut names = Vec::new();
        for (h, hd) in used.iter().enumerate() {
            let mut ids = Vec::new();
            for a in 0..AGENTS_PER_HELPDESK {
                let (name, email) = agent_name(h * AGENTS_PER_HELPDESK + a);
                let id = self
                    .save_agent(
                        &name,
                        Some(&email),
                        Role::Agent,
                        None,
                        std::slice::from_ref(&hd.config.settings.name),
                    )
                    .await?;
                ids.push((id, name.clone()));
                names.push(name);
            }
            agents_of.push(ids);
        }
        let files = stage_attachment_files(self.data_dir())?;
        let store = self.clone();
        let used = used.to_vec();
        let mut report = tokio::task::spawn_blocking(move || {
            let seeder = Seeder {
                plan: &plan,
                helpdesks: &used,
                agents: &agents_of,
                files: &files,
                first_index: tickets.max(0) as u64,
            };
            seeder.run(&store, progress)
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("seeding stopped: {e}")))??;
        self.settle_after_bulk_load().await?;
        report.agents = names;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// The seeding's fixed inputs, on the writer's thread.
struct Seeder<'a> {
    plan: &'a SeedPlan,
    helpdesks: &'a [RegisteredHelpdesk],
    /// Per helpdesk: its agents' ids and names.
    agents: &'a [Vec<(AgentId, String)>],
    files: &'a [AttachmentFile],
    /// Tickets already in the database: the index of the first new one, so that a
    /// forced seed makes new Message-IDs.
    first_index: u64,
}

/// One generated ticket: its mails and what agents did on it.
struct TicketDraft {
    first: IncomingMail,
    follow_up: Option<IncomingMail>,
    note: Option<(usize, String, i64)>,
    status: String,
    priority: String,
    /// Index into the helpdesk's agents; `None`: unassigned.
    assignee: Option<usize>,
    /// The agent who changed the status, when it changed.
    changed_by: Option<usize>,
    /// The status intake left: the new ticket's, or the reply status after a follow-up.
    status_before: String,
    created_at: i64,
    modified_at: i64,
}

impl Seeder<'_> {
    fn run(&self, store: &Store, mut progress: impl FnMut(SeedProgress)) -> Result<SeedReport> {
        let mut writer = store.writer()?;
        let mut report = SeedReport::default();
        let mut start = 0;
        while start < self.plan.tickets {
            let end = (start + self.plan.batch).min(self.plan.tickets);
            let drafts: Vec<TicketDraft> = (start..end)
                .map(|t| self.draft(self.first_index + t))
                .collect();
            let mails: Vec<&IncomingMail> = drafts
                .iter()
                .flat_map(|d| std::iter::once(&d.first).chain(d.follow_up.as_ref()))
                .collect();
            let mut batch = writer.begin_batch(self.helpdesks, false, &mails, None)?;
            for draft in &drafts {
                let created = batch.ingest(self.helpdesks, &draft.first, None)?;
                let ticket_id = match (created.outcome, created.ticket_id) {
                    (Outcome::Created, Some(id)) => id,
                    (outcome, _) => {
                        return Err(StoreError::Invalid(format!(
                            "a seeded mail did not make a ticket ({}: {})",
                            outcome.as_str(),
                            created.reason.unwrap_or_default()
                        )));
                    }
                };
                report.entries += 1;
                report.attachments += draft.first.attachments.len() as u64;
                if let Some(follow_up) = &draft.follow_up {
                    let appended = batch.ingest(self.helpdesks, follow_up, None)?;
                    if appended.outcome != Outcome::Appended
                        || appended.ticket_id != Some(ticket_id)
                    {
                        return Err(StoreError::Invalid(format!(
                            "a seeded follow-up did not thread to its ticket ({}: {})",
                            appended.outcome.as_str(),
                            appended.reason.unwrap_or_default()
                        )));
                    }
                    report.entries += 1;
                    report.attachments += follow_up.attachments.len() as u64;
                }
                let conn = batch.connection().conn();
                report.entries += self.agents_work(&conn, draft, ticket_id)?;
            }
            batch.commit()?;
            report.tickets += end - start;
            progress(SeedProgress {
                tickets: report.tickets,
                entries: report.entries,
            });
            start = end;
        }
        Ok(report)
    }

    /// The note, the status change and the ticket's fields; returns the entries written.
    fn agents_work(&self, conn: &Db, draft: &TicketDraft, ticket_id: TicketId) -> Result<u64> {
        let helpdesk = draft.first.helpdesk;
        let agents = &self.agents[helpdesk];
        let mut written = 0;
        if let Some((agent, text, at)) = &draft.note {
            entries::insert_note(conn, ticket_id, agents[*agent].0, text, *at)?;
            written += 1;
        }
        if let Some(agent) = draft.changed_by {
            let (id, name) = &agents[agent];
            let text = format!(
                "Status changed from {} to {} by {name}.",
                draft.status_before, draft.status
            );
            entries::insert_event(conn, ticket_id, Some(*id), &text, draft.modified_at)?;
            written += 1;
        }
        let assignee = draft.assignee.map(|a| agents[a].0);
        let modified_by = draft
            .changed_by
            .map_or(self.helpdesks[helpdesk].default_agent_id, |a| agents[a].0);
        conn.prepare_cached(
            "UPDATE tickets SET status = ?1, priority = ?2, assignee_id = ?3, created_at = ?4,
                 modified_at = ?5, modified_by = ?6 WHERE id = ?7",
        )?
        .execute(params![
            draft.status,
            draft.priority,
            assignee,
            draft.created_at,
            draft.modified_at,
            modified_by,
            ticket_id
        ])?;
        Ok(written)
    }

    /// Ticket `index` of the seed: the same every time.
    fn draft(&self, index: u64) -> TicketDraft {
        let mut rng = Rng::new(self.plan.seed, index);
        let helpdesk = rng.below(self.helpdesks.len() as u64) as usize;
        let hd = &self.helpdesks[helpdesk];
        let settings = &hd.config.settings;
        let own = settings.addresses.first().cloned().unwrap_or_default();
        // About four tickets per contact: a quarter of the tickets' count, at least 10.
        let contacts = (self.plan.tickets / 4).max(10);
        let contact = Contact::of(self.plan.seed, rng.below(contacts));
        let lang = contact.lang;
        let thing = rng.pick(lang.things());
        let subject = rng.pick(lang.subjects()).replace("{}", thing);
        let reported = SPAN_START + rng.below(SPAN_SECONDS as u64) as i64;
        let mut body = String::new();
        body.push_str(&lang.greeting());
        body.push_str("\n\n");
        for _ in 0..2 + rng.below(3) {
            body.push_str(&rng.pick(lang.sentences()).replace("{}", thing));
            body.push(' ');
        }
        body.push_str("\n\n");
        body.push_str(lang.closing());
        body.push('\n');
        body.push_str(&contact.signature());
        let attachments = if rng.chance(15) {
            (0..1 + rng.below(2))
                .map(|_| rng.pick(self.files).stored())
                .collect()
        } else {
            Vec::new()
        };
        let cc = rng.chance(20).then(|| {
            let colleague = Contact::of(self.plan.seed, rng.below(contacts));
            Address {
                name: Some(colleague.display_name()),
                email: colleague.email,
            }
        });
        let message_id = format!("seed-{}-{index}@{}", self.plan.seed, MESSAGE_ID_DOMAIN);
        let first = SeedMail {
            helpdesk,
            index,
            part: 0,
            from: contact.address(),
            to: own.clone(),
            cc: cc.clone(),
            subject: subject.clone(),
            text: body.clone(),
            reply: None,
            message_id: message_id.clone(),
            in_reply_to: None,
            date: reported,
            attachments,
        }
        .build();
        let mut last = reported;
        let follow_up = rng.chance(80).then(|| {
            last += 600 + rng.below(5 * 86_400) as i64;
            let reply = format!(
                "{}\n\n{}\n{}",
                rng.pick(lang.follow_ups()).replace("{}", thing),
                lang.closing(),
                contact.display_name()
            );
            let quoted: String = body.lines().map(|l| format!("> {l}\n")).collect();
            let attachments = if rng.chance(5) {
                vec![rng.pick(self.files).stored()]
            } else {
                Vec::new()
            };
            SeedMail {
                helpdesk,
                index,
                part: 1,
                from: contact.address(),
                to: own.clone(),
                cc: cc.clone(),
                subject: format!("{} {subject}", lang.re()),
                text: format!(
                    "{reply}\n\n{}\n{quoted}",
                    lang.wrote(&contact.display_name())
                ),
                reply: Some(StrippedReply {
                    reply,
                    quoted: Some(quoted),
                }),
                message_id: format!("seed-{}-{index}-1@{MESSAGE_ID_DOMAIN}", self.plan.seed),
                in_reply_to: Some(message_id),
                date: last,
                attachments,
            }
            .build()
        });
        let agents = self.agents[helpdesk].len() as u64;
        let note = rng.chance(45).then(|| {
            last += 300 + rng.below(2 * 86_400) as i64;
            let text = rng.pick(NOTES).replace("{}", thing);
            (rng.below(agents) as usize, text, last)
        });
        let status = weighted(&mut rng, &statuses(settings));
        let status_before = if follow_up.is_some() {
            settings.reply_status.clone()
        } else {
            settings.new_ticket_status.clone()
        };
        // Every change of status is recorded, as the desk records it.
        let changed_by = (status != status_before).then(|| {
            last += 300 + rng.below(3 * 86_400) as i64;
            rng.below(agents) as usize
        });
        let priorities = if settings.priorities.is_empty() {
            vec![
                "low".to_string(),
                "normal".into(),
                "high".into(),
                "urgent".into(),
            ]
        } else {
            settings.priorities.clone()
        };
        let priority = weighted(
            &mut rng,
            &priorities
                .into_iter()
                .zip([20, 55, 18, 7].into_iter().chain(std::iter::repeat(10)))
                .collect::<Vec<_>>(),
        );
        let assignee = (!rng.chance(20)).then(|| rng.below(agents) as usize);
        TicketDraft {
            status_before,
            first,
            follow_up,
            note,
            status,
            priority,
            assignee,
            changed_by,
            created_at: reported,
            modified_at: last,
        }
    }
}

/// The right-hand side of seeded Message-IDs.
const MESSAGE_ID_DOMAIN: &str = "seed.postdesk.invalid";

/// Seeded tickets are reported over the six months before 2026-12-01.
const SPAN_START: i64 = 1_780_272_000; // 2026-06-01 00:00 UTC
const SPAN_SECONDS: i64 = 183 * 86_400;

/// A ticket's final status, with how often: mostly closed, as in a desk that has run a while.
fn statuses(settings: &postdesk_core::settings::HelpdeskSettings) -> Vec<(String, u64)> {
    let mut list = vec![
        (settings.new_ticket_status.clone(), 8),
        (settings.reply_status.clone(), 8),
    ];
    let open: Vec<String> = if settings.statuses.is_empty() {
        vec!["open".into(), "pending".into()]
    } else {
        settings.statuses.clone()
    };
    list.extend(open.into_iter().map(|s| (s, 12)));
    list.extend(settings.closed_statuses.iter().cloned().zip([40, 10]));
    list
}

fn weighted(rng: &mut Rng, choices: &[(String, u64)]) -> String {
    let total: u64 = choices.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total.max(1));
    for (choice, weight) in choices {
        if roll < *weight {
            return choice.clone();
        }
        roll -= weight;
    }
    choices[0].0.clone()
}

/// SplitMix64: small, fast, and the same on every platform and version.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The languages seeded texts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    English,
    German,
    French,
    Spanish,
    Russian,
    Japanese,
    Chinese,
}

/// How often each language is a contact's: (language, weight).
const LANGS: [(Lang, u64); 7] = [
    (Lang::English, 35),
    (Lang::German, 20),
    (Lang::French, 12),
    (Lang::Spanish, 8),
    (Lang::Russian, 12),
    (Lang::Japanese, 7),
    (Lang::Chinese, 6),
];

/// A name as people write it and as it goes into an address.
type Name = (&'static str, &'static str);

impl Lang {
    fn first_names(self) -> &'static [Name] {
        match self {
            Self::English => &[
                ("James", "james"),
                ("Emily", "emily"),
                ("Oliver", "oliver"),
                ("Sophie", "sophie"),
                ("Michael", "michael"),
                ("Grace", "grace"),
                ("Daniel", "daniel"),
                ("Hannah", "hannah"),
            ],
            Self::German => &[
                ("Jürgen", "juergen"),
                ("Anna", "anna"),
                ("Lukas", "lukas"),
                ("Sabine", "sabine"),
                ("Matthias", "matthias"),
                ("Käthe", "kaethe"),
                ("Stefan", "stefan"),
                ("Jörg", "joerg"),
            ],
            Self::French => &[
                ("Élodie", "elodie"),
                ("François", "francois"),
                ("Camille", "camille"),
                ("Hélène", "helene"),
                ("Luc", "luc"),
                ("Amélie", "amelie"),
                ("Théo", "theo"),
                ("Margaux", "margaux"),
            ],
            Self::Spanish => &[
                ("José", "jose"),
                ("María", "maria"),
                ("Lucía", "lucia"),
                ("Javier", "javier"),
                ("Sofía", "sofia"),
                ("Andrés", "andres"),
            ],
            Self::Russian => &[
                ("Иван", "ivan"),
                ("Мария", "maria"),
                ("Дмитрий", "dmitry"),
                ("Ольга", "olga"),
                ("Сергей", "sergey"),
                ("Наталья", "natalia"),
                ("Алексей", "alexey"),
                ("Екатерина", "ekaterina"),
            ],
            Self::Japanese => &[
                ("太郎", "taro"),
                ("花子", "hanako"),
                ("健", "ken"),
                ("由美", "yumi"),
                ("翔太", "shota"),
                ("さくら", "sakura"),
            ],
            Self::Chinese => &[
                ("伟", "wei"),
                ("芳", "fang"),
                ("磊", "lei"),
                ("静", "jing"),
                ("强", "qiang"),
                ("敏", "min"),
            ],
        }
    }

    fn last_names(self) -> &'static [Name] {
        match self {
            Self::English => &[
                ("Smith", "smith"),
                ("Johnson", "johnson"),
                ("Walker", "walker"),
                ("O'Brien", "obrien"),
                ("Clarke", "clarke"),
                ("Patel", "patel"),
                ("Hughes", "hughes"),
                ("Turner", "turner"),
            ],
            Self::German => &[
                ("Müller", "mueller"),
                ("Schmidt", "schmidt"),
                ("Weiß", "weiss"),
                ("Schäfer", "schaefer"),
                ("Becker", "becker"),
                ("Hoffmann", "hoffmann"),
                ("Groß", "gross"),
                ("Köhler", "koehler"),
            ],
            Self::French => &[
                ("Dubois", "dubois"),
                ("Lefèvre", "lefevre"),
                ("Moreau", "moreau"),
                ("Girard", "girard"),
                ("Faure", "faure"),
                ("Chevalier", "chevalier"),
                ("Rousseau", "rousseau"),
            ],
            Self::Spanish => &[
                ("García", "garcia"),
                ("Fernández", "fernandez"),
                ("López", "lopez"),
                ("Martínez", "martinez"),
                ("Núñez", "nunez"),
                ("Ruiz", "ruiz"),
            ],
            Self::Russian => &[
                ("Петров", "petrov"),
                ("Смирнова", "smirnova"),
                ("Иванов", "ivanov"),
                ("Кузнецова", "kuznetsova"),
                ("Соколов", "sokolov"),
                ("Попова", "popova"),
                ("Волков", "volkov"),
            ],
            Self::Japanese => &[
                ("山田", "yamada"),
                ("佐藤", "sato"),
                ("鈴木", "suzuki"),
                ("高橋", "takahashi"),
                ("田中", "tanaka"),
                ("渡辺", "watanabe"),
            ],
            Self::Chinese => &[
                ("王", "wang"),
                ("李", "li"),
                ("张", "zhang"),
                ("刘", "liu"),
                ("陈", "chen"),
                ("杨", "yang"),
            ],
        }
    }

    /// Family name first, as these languages write it.
    fn family_first(self) -> bool {
        matches!(self, Self::Japanese | Self::Chinese)
    }

    fn domains(self) -> &'static [&'static str] {
        match self {
            Self::English => &[
                "brightpath.co.uk",
                "northwind-traders.com",
                "gmail.com",
                "outlook.com",
                "harbourview.org",
            ],
            Self::German => &[
                "nordwind-logistik.de",
                "müller-bau.de",
                "gmx.de",
                "web.de",
                "stadtwerke-hameln.de",
            ],
            Self::French => &[
                "atelier-lumiere.fr",
                "orange.fr",
                "boulangerie-dupont.fr",
                "free.fr",
            ],
            Self::Spanish => &["ferreteria-garcia.es", "telefonica.net", "gmail.com"],
            Self::Russian => &["sibtrans.ru", "yandex.ru", "mail.ru", "uralstal.ru"],
            Self::Japanese => &["sakura-denki.co.jp", "yahoo.co.jp", "tokyo-shoji.jp"],
            Self::Chinese => &["huaxin-tech.cn", "qq.com", "163.com"],
        }
    }

    fn places(self) -> &'static [&'static str] {
        match self {
            Self::English => &[
                "14 Harbour Street, Bristol BS1 4DJ",
                "220 Market St, Suite 5, San Francisco, CA 94105",
                "7 Kings Road, Leeds LS1 2AB",
            ],
            Self::German => &[
                "Hauptstraße 12, 10115 Berlin",
                "Königsallee 3, 40212 Düsseldorf",
                "Am Marktplatz 7, 31785 Hameln",
            ],
            Self::French => &[
                "12 rue de la Paix, 75002 Paris",
                "5 place Bellecour, 69002 Lyon",
            ],
            Self::Spanish => &[
                "Calle Mayor 23, 28013 Madrid",
                "Avinguda Diagonal 410, 08037 Barcelona",
            ],
            Self::Russian => &[
                "ул. Ленина, д. 15, Новосибирск, 630099",
                "Невский проспект, 28, Санкт-Петербург",
            ],
            Self::Japanese => &["東京都千代田区丸の内1-1-1", "大阪府大阪市北区梅田3-2-1"],
            Self::Chinese => &["北京市朝阳区建国路88号", "上海市浦东新区世纪大道100号"],
        }
    }

    fn things(self) -> &'static [&'static str] {
        match self {
            Self::English => &[
                "printer",
                "invoice",
                "VPN access",
                "laptop",
                "password reset",
                "delivery",
                "license key",
                "mailbox",
            ],
            Self::German => &[
                "Drucker",
                "Rechnung",
                "VPN-Zugang",
                "Laptop",
                "Passwort",
                "Lieferung",
                "Lizenzschlüssel",
                "Postfach",
            ],
            Self::French => &[
                "imprimante",
                "facture",
                "accès VPN",
                "ordinateur portable",
                "mot de passe",
                "livraison",
                "clé de licence",
            ],
            Self::Spanish => &[
                "impresora",
                "factura",
                "acceso VPN",
                "portátil",
                "contraseña",
                "entrega",
            ],
            Self::Russian => &[
                "принтер",
                "счёт",
                "доступ к VPN",
                "ноутбук",
                "пароль",
                "доставка",
                "лицензионный ключ",
            ],
            Self::Japanese => &[
                "プリンター",
                "請求書",
                "VPN接続",
                "ノートパソコン",
                "パスワード",
                "配送",
                "ライセンスキー",
            ],
            Self::Chinese => &[
                "打印机",
                "发票",
                "VPN访问",
                "笔记本电脑",
                "密码",
                "快递",
                "许可证密钥",
            ],
        }
    }

    fn subjects(self) -> &'static [&'static str] {
        match self {
            Self::English => &[
                "Problem with the {}",
                "{} not working since this morning",
                "Question about our {}",
                "Urgent: {} issue",
                "Request: new {}",
            ],
            Self::German => &[
                "Problem mit dem {}",
                "{} funktioniert nicht mehr",
                "Frage zu unserer {}",
                "Dringend: {}",
                "Anfrage: {}",
            ],
            Self::French => &[
                "Problème avec {}",
                "{} ne fonctionne plus",
                "Question concernant {}",
                "Urgent : {}",
            ],
            Self::Spanish => &[
                "Problema con la {}",
                "La {} no funciona",
                "Consulta sobre {}",
            ],
            Self::Russian => &[
                "Проблема: {}",
                "Не работает {}",
                "Вопрос про {}",
                "Срочно: {}",
            ],
            Self::Japanese => &[
                "{}の不具合について",
                "{}が使えません",
                "{}に関するお問い合わせ",
            ],
            Self::Chinese => &["{}出现问题", "{}无法使用", "关于{}的咨询"],
        }
    }

    fn sentences(self) -> &'static [&'static str] {
        match self {
            Self::English => &[
                "Since yesterday the {} stops with an error.",
                "We already restarted everything, without success.",
                "Could you please have a look at the {} as soon as possible?",
                "Three colleagues in the accounting team are affected.",
                "The error message says \"access denied\".",
                "I attached a screenshot of what we see.",
                "Our order number is 4471-B.",
            ],
            Self::German => &[
                "Seit gestern bricht der {} mit einem Fehler ab.",
                "Wir haben schon alles neu gestartet, leider ohne Erfolg.",
                "Könnten Sie sich das bitte möglichst bald ansehen?",
                "Betroffen sind drei Kolleginnen in der Buchhaltung.",
                "Die Fehlermeldung lautet „Zugriff verweigert“.",
                "Im Anhang finden Sie einen Screenshot.",
            ],
            Self::French => &[
                "Depuis hier, {} affiche une erreur.",
                "Nous avons déjà tout redémarré, sans succès.",
                "Pourriez-vous regarder cela rapidement ?",
                "Trois collègues du service comptable sont concernés.",
                "Vous trouverez une capture d'écran en pièce jointe.",
            ],
            Self::Spanish => &[
                "Desde ayer la {} muestra un error.",
                "Ya reiniciamos todo, sin éxito.",
                "¿Podrían revisarlo lo antes posible?",
                "Adjunto una captura de pantalla.",
            ],
            Self::Russian => &[
                "Со вчерашнего дня {} выдаёт ошибку.",
                "Мы уже всё перезагрузили, но это не помогло.",
                "Посмотрите, пожалуйста, как можно скорее.",
                "Проблема затрагивает трёх сотрудников бухгалтерии.",
                "Скриншот ошибки во вложении.",
            ],
            Self::Japanese => &[
                "昨日から{}でエラーが発生しています。",
                "再起動しましたが改善しません。",
                "至急ご確認いただけますでしょうか。",
                "経理部の3名が影響を受けています。",
                "スクリーンショットを添付します。",
            ],
            Self::Chinese => &[
                "从昨天开始{}一直报错。",
                "我们已经重启了所有设备，但没有效果。",
                "请尽快帮忙检查一下。",
                "财务部有三位同事受到影响。",
                "附件是错误截图。",
            ],
        }
    }

    fn follow_ups(self) -> &'static [&'static str] {
        match self {
            Self::English => &[
                "Thanks, the {} works again.",
                "Any news on this? The {} is still down.",
                "We tried your suggestion, but the problem remains.",
            ],
            Self::German => &[
                "Danke, der {} geht wieder.",
                "Gibt es schon Neuigkeiten? {} geht immer noch nicht.",
                "Wir haben Ihren Vorschlag probiert, das Problem bleibt.",
            ],
            Self::French => &[
                "Merci, {} fonctionne de nouveau.",
                "Des nouvelles ? Le problème persiste.",
            ],
            Self::Spanish => &[
                "Gracias, ya funciona.",
                "¿Hay novedades? Sigue sin funcionar.",
            ],
            Self::Russian => &[
                "Спасибо, {} снова работает.",
                "Есть новости? {} всё ещё не работает.",
            ],
            Self::Japanese => &[
                "ありがとうございます。{}が復旧しました。",
                "その後いかがでしょうか。まだ{}が使えません。",
            ],
            Self::Chinese => &["谢谢，{}已经恢复正常。", "请问有进展吗？{}仍然无法使用。"],
        }
    }

    fn greeting(self) -> String {
        match self {
            Self::English => "Hello,",
            Self::German => "Guten Tag,",
            Self::French => "Bonjour,",
            Self::Spanish => "Hola:",
            Self::Russian => "Здравствуйте!",
            Self::Japanese => "お世話になっております。",
            Self::Chinese => "您好，",
        }
        .to_string()
    }

    fn closing(self) -> &'static str {
        match self {
            Self::English => "Kind regards,",
            Self::German => "Mit freundlichen Grüßen",
            Self::French => "Cordialement,",
            Self::Spanish => "Saludos,",
            Self::Russian => "С уважением,",
            Self::Japanese => "よろしくお願いいたします。",
            Self::Chinese => "谢谢！",
        }
    }

    fn re(self) -> &'static str {
        match self {
            Self::German => "AW:",
            Self::Russian => "Re:",
            Self::Chinese => "回复：",
            _ => "Re:",
        }
    }

    fn wrote(self, name: &str) -> String {
        match self {
            Self::German => format!("{name} schrieb:"),
            Self::French => format!("{name} a écrit :"),
            Self::Russian => format!("{name} писал(а):"),
            _ => format!("{name} wrote:"),
        }
    }
}

/// What agents write in their notes.
const NOTES: &[&str] = &[
    "Called the customer, the {} is being replaced.",
    "Checked the logs: the {} fails at sign-in. Escalated to second level.",
    "Waiting for the supplier about the {}.",
    "Kunde zurückgerufen, {} wird getauscht.",
    "Передал вопрос про {} в бухгалтерию.",
    "{}の件、担当者に確認中。",
    "已联系客户，{}问题转交二线处理。",
];

/// A generated contact: the same for the same seed and index.
struct Contact {
    lang: Lang,
    first: Name,
    last: Name,
    email: String,
    place: &'static str,
}

impl Contact {
    fn of(seed: u64, index: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0xC0DE, index);
        let total: u64 = LANGS.iter().map(|(_, w)| w).sum();
        let mut roll = rng.below(total);
        let mut lang = Lang::English;
        for (l, w) in LANGS {
            if roll < w {
                lang = l;
                break;
            }
            roll -= w;
        }
        let first = *rng.pick(lang.first_names());
        let last = *rng.pick(lang.last_names());
        let domain = rng.pick(lang.domains());
        Self {
            lang,
            first,
            last,
            email: format!("{}.{}{index}@{domain}", first.1, last.1),
            place: *rng.pick(lang.places()),
        }
    }

    fn display_name(&self) -> String {
        if self.lang.family_first() {
            format!("{}{}", self.last.0, self.first.0)
        } else {
            format!("{} {}", self.first.0, self.last.0)
        }
    }

    fn address(&self) -> Address {
        Address {
            name: Some(self.display_name()),
            email: self.email.clone(),
        }
    }

    fn signature(&self) -> String {
        format!("{}\n{}\n{}", self.display_name(), self.place, self.email)
    }
}

/// Agent `index`'s name and address.
fn agent_name(index: usize) -> (String, String) {
    const NAMES: [&str; 16] = [
        "anna.keller",
        "dmitri.volkov",
        "yuki.tanaka",
        "lea.martin",
        "tom.baker",
        "wei.zhang",
        "sara.lopez",
        "jonas.berg",
        "olga.ivanova",
        "ken.sato",
        "nina.weber",
        "paul.girard",
        "mia.fischer",
        "li.na",
        "omar.haddad",
        "eva.novak",
    ];
    let base = NAMES[index % NAMES.len()];
    let name = match index / NAMES.len() {
        0 => base.to_string(),
        n => format!("{base}{}", n + 1),
    };
    let email = format!("{name}@helpdesk.example");
    (name, email)
}

/// One of the attachment files seeded mails carry.
#[derive(Debug, Clone)]
struct AttachmentFile {
    name: &'static str,
    mime_type: &'static str,
    sha256: String,
    size: usize,
}

impl AttachmentFile {
    fn stored(&self) -> StoredAttachment {
        StoredAttachment {
            sha256: self.sha256.clone(),
            original_name: Some(self.name.to_string()),
            safe_name: self.name.to_string(),
            mime_type: self.mime_type.to_string(),
            size: self.size,
            content_id: None,
            inline: false,
            refused: None,
        }
    }
}

/// Writes the attachments' files once (their bytes are made up; their names are not).
fn stage_attachment_files(data_dir: &std::path::Path) -> Result<Vec<AttachmentFile>> {
    const FILES: [(&str, &str); 12] = [
        ("invoice-2026-0413.pdf", "application/pdf"),
        ("screenshot.png", "image/png"),
        ("error-log.txt", "text/plain"),
        ("Rechnung_Oktober.pdf", "application/pdf"),
        ("Lieferschein 7781.pdf", "application/pdf"),
        ("facture-été.pdf", "application/pdf"),
        ("скриншот_ошибки.png", "image/png"),
        (
            "счёт-фактура.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            "見積書.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("エラー画面.jpg", "image/jpeg"),
        ("发票扫描件.pdf", "application/pdf"),
        ("config-backup.zip", "application/zip"),
    ];
    FILES
        .iter()
        .map(|(name, mime_type)| {
            let data = format!("postdesk seed attachment: {name}\n").repeat(40);
            let sha256 = hex(&Sha256::digest(data.as_bytes()));
            if let Some(staged) = blobs::stage_attachment(data_dir, &sha256, data.as_bytes())? {
                staged.finish()?;
            }
            Ok(AttachmentFile {
                name,
                mime_type,
                sha256,
                size: data.len(),
            })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What a seeded mail says; [`SeedMail::build`] makes the intake's mail of it.
struct SeedMail {
    helpdesk: usize,
    index: u64,
    /// 0: the first mail, 1: the follow-up.
    part: u8,
    from: Address,
    to: String,
    cc: Option<Address>,
    subject: String,
    text: String,
    reply: Option<StrippedReply>,
    message_id: String,
    in_reply_to: Option<String>,
    date: i64,
    attachments: Vec<StoredAttachment>,
}

impl SeedMail {
    fn build(self) -> IncomingMail {
        let raw = self.raw();
        let to = vec![Address {
            name: None,
            email: self.to,
        }];
        let in_reply_to: Vec<String> = self.in_reply_to.into_iter().collect();
        let mail = ParsedMail {
            message_id: Some(self.message_id),
            in_reply_to: in_reply_to.clone(),
            references: in_reply_to,
            subject: self.subject,
            from: Some(self.from),
            sender_source: Some(postdesk_mail::SenderSource::From),
            to,
            cc: self.cc.into_iter().collect(),
            date: Some(self.date),
            text: self.text,
            structure: postdesk_mail::Structure {
                content_type: "text/plain".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        IncomingMail {
            helpdesk: self.helpdesk,
            source: MailSource::File,
            location: format!(
                "postdesk dev seed: ticket {} mail {}",
                self.index, self.part
            ),
            sha256: hex(&Sha256::digest(raw.as_bytes())),
            raw_size: raw.len(),
            raw_compressed: blobs::compress(raw.as_bytes()).unwrap_or_default(),
            mail,
            attachments: self.attachments,
            classification: Classification::Normal,
            class_signal: String::new(),
            subject_numbers: Vec::new(),
            reply: self.reply,
            route: Default::default(),
            indexed: None,
            indexed_reply: None,
            received_at: self.date,
            failure: None,
            files_pending: Vec::new(),
        }
    }

    /// The mail as it would have arrived (UTF-8 headers, RFC 6532; attachments named only).
    fn raw(&self) -> String {
        let mut raw = String::with_capacity(self.text.len() + 512);
        let name = self.from.name.as_deref().unwrap_or_default();
        raw.push_str(&format!("From: \"{name}\" <{}>\r\n", self.from.email));
        raw.push_str(&format!("To: {}\r\n", self.to));
        if let Some(cc) = &self.cc {
            raw.push_str(&format!(
                "Cc: \"{}\" <{}>\r\n",
                cc.name.as_deref().unwrap_or_default(),
                cc.email
            ));
        }
        raw.push_str(&format!("Subject: {}\r\n", self.subject));
        raw.push_str(&format!(
            "Date: {}\r\n",
            postdesk_core::time::format_rfc2822(self.date)
        ));
        raw.push_str(&format!("Message-ID: <{}>\r\n", self.message_id));
        if let Some(parent) = &self.in_reply_to {
            raw.push_str(&format!(
                "In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"
            ));
        }
        raw.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
        raw.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        raw.push_str(&self.text.replace('\n', "\r\n"));
        raw.push_str("\r\n");
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_mail_writes_them() {
        assert_eq!(
            postdesk_core::time::format_rfc2822(0),
            "Thu, 01 Jan 1970 00:00:00 +0000"
        );
        assert_eq!(
            postdesk_core::time::format_rfc2822(SPAN_START),
            "Mon, 01 Jun 2026 00:00:00 +0000"
        );
        assert_eq!(
            postdesk_core::time::format_rfc2822(1_796_641_182),
            "Mon, 07 Dec 2026 10:59:42 +0000"
        );
    }

    #[test]
    fn the_same_seed_and_index_make_the_same_contact() {
        let a = Contact::of(7, 42);
        let b = Contact::of(7, 42);
        assert_eq!(a.email, b.email);
        assert_eq!(a.display_name(), b.display_name());
        assert_ne!(Contact::of(8, 42).email, a.email);
    }
}
