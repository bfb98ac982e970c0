//! The team desk's data at scale: a fresh database (made by `Store::connect`, so migrated)
//! filled through plain bulk SQL, deterministic from a seed.
//!
//! Shape, for `n` conversations: `n / 5` contacts; `3 n` messages on average (1 to 5 per
//! conversation: `email_in`, `email_out`, `internal`), texts of 8 to 32 words drawn from a
//! Zipf-distributed vocabulary of 50,000 words (a few filler words in nearly every message,
//! support words in a few percent, a long tail of rare words), so search meets posting lists of
//! every length; four inboxes, three of them in a department (Support, Billing, Sales) and one
//! without; ten agents per department, one manager, one admin. The newest 5 % of the
//! conversations hold the live ones: 0.3 % of `n` queued, 0.5 % open, 0.1 % on hold, 0.05 %
//! snoozed, and 300 open ones of one agent (Support's first, "the agent with hundreds"); all
//! the others are closed and have an assignee. A tenth of the conversations carry tags, one in
//! a hundred an invited member.
//!
//! Rows go in as multi-row `INSERT`s (500 rows each), 10,000 conversations per transaction,
//! on one connection. The search indexes are filled by the migrations' triggers as the
//! product fills them, except that on PostgreSQL the two GIN indexes are dropped while loading
//! and built again at the end (the triggers still write every `tsvector`); the time of both is
//! reported. SQLite loads with a 512 MiB page cache and `synchronous = OFF` on the loading
//! connection only. No raw emails or attachments are stored.

use std::fmt::Write as _;
use std::time::Instant;

use postdesk_core::ids::{DepartmentId, InboxId, UserId};
use postdesk_core::model::Role;
use postdesk_store::{Backend, NewUser, Store};

/// A small deterministic random generator (splitmix64): the same seed gives the same database.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 10_000.0 < percent
    }
}

/// Words in nearly every message: the top of the Zipf ranks.
const FILLER: &[&str] = &[
    "the", "to", "and", "i", "you", "a", "is", "my", "for", "it", "of", "in", "please", "on",
    "this", "we", "have", "thanks", "can", "with", "be", "not", "your", "hello", "that", "was",
    "me", "our", "at", "regards",
];

/// Support vocabulary: the next ranks, each in a few percent of the messages.
const SUPPORT: &[&str] = &[
    "order",
    "invoice",
    "refund",
    "delivery",
    "printer",
    "password",
    "account",
    "broken",
    "payment",
    "shipping",
    "return",
    "warranty",
    "subscription",
    "login",
    "error",
    "update",
    "cancel",
    "address",
    "package",
    "tracking",
    "receipt",
    "discount",
    "replacement",
    "charge",
    "battery",
    "screen",
    "cable",
    "manual",
    "install",
    "license",
    "upgrade",
    "contract",
    "rechnung",
    "commande",
    "envoi",
    "garantie",
    "lieferung",
    "factura",
    "pedido",
    "urgent",
    "tomorrow",
    "monday",
    "yesterday",
    "customer",
    "support",
    "ticket",
    "product",
    "price",
    "email",
    "phone",
    "website",
    "app",
    "device",
    "settings",
    "download",
    "shop",
    "store",
    "credit",
    "card",
    "bank",
    "transfer",
    "missing",
    "damaged",
    "late",
    "wrong",
    "size",
];

const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Carla", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Karin",
    "Lars", "Maria", "Noah", "Olga", "Pablo", "Quentin", "Rosa", "Sven", "Tanja", "Ulrich", "Vera",
    "Wei", "Xenia", "Yusuf", "Zoë", "José", "Søren", "Chloé", "Łukasz", "Aoife", "Björn",
];

const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Garcia",
    "Rossi",
    "Dubois",
    "Nowak",
    "Jensen",
    "Silva",
    "O'Brien",
    "Kowalski",
    "Novak",
    "Yilmaz",
    "Smith",
    "Jones",
    "Brown",
    "Martin",
    "Bernard",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Lopez",
    "Sánchez",
    "Ivanova",
    "Chen",
    "Wang",
    "Kim",
    "Sato",
    "Andersson",
];

const DOMAINS: &[&str] = &[
    "example.org",
    "example.com",
    "mail.example.net",
    "firma.example.de",
    "shop.example.fr",
];

const TAGS: &[&str] = &[
    "vip", "refund", "bug", "urgent", "invoice", "shipping", "feedback", "partner",
];

/// Vocabulary size (the Zipf ranks).
const VOCABULARY: usize = 50_000;

/// The heavy agent's open conversations ("the agent with hundreds").
pub const HEAVY_OPEN: usize = 300;

/// Agents per department.
const AGENTS_PER_DEPARTMENT: usize = 10;

/// Conversations per transaction, and rows per `INSERT`.
const CHUNK: usize = 10_000;
const ROWS_PER_INSERT: usize = 500;

/// Time of the first conversation (2023-11-01) and the span they cover (three years).
const START_MS: i64 = 1_698_796_800_000;
const SPAN_MS: i64 = 3 * 365 * 24 * 3600 * 1000;

/// The vocabulary and a Zipf sampler over it.
pub struct Words {
    words: Vec<String>,
    /// Cumulative weights 1/(rank+1), for sampling by binary search.
    cumulative: Vec<f64>,
}

impl Words {
    pub fn new() -> Self {
        let consonants = b"bdfgklmnprstvz";
        let vowels = b"aeiou";
        let syllable = |n: usize| {
            let c = consonants[n % consonants.len()] as char;
            let v = vowels[(n / consonants.len()) % vowels.len()] as char;
            format!("{c}{v}")
        };
        let syllables = consonants.len() * vowels.len();
        let mut words: Vec<String> = FILLER
            .iter()
            .chain(SUPPORT)
            .map(|w| (*w).to_owned())
            .collect();
        let mut n = 0;
        while words.len() < VOCABULARY {
            // Three two-letter syllables: unique, pronounceable, never a real word above.
            words.push(format!(
                "{}{}{}",
                syllable(n % syllables),
                syllable((n / syllables) % syllables),
                syllable(n / (syllables * syllables) % syllables)
            ));
            n += 1;
        }
        let mut cumulative = Vec::with_capacity(VOCABULARY);
        let mut total = 0.0;
        for rank in 0..VOCABULARY {
            total += 1.0 / (rank as f64 + 1.0);
            cumulative.push(total);
        }
        Words { words, cumulative }
    }

    /// A word by Zipf rank.
    pub fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative[VOCABULARY - 1];
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let rank = self
            .cumulative
            .partition_point(|c| *c < x)
            .min(VOCABULARY - 1);
        &self.words[rank]
    }

    /// The word of a rank.
    pub fn at(&self, rank: usize) -> &str {
        &self.words[rank]
    }

    /// Support words searched as common ones (each in a few percent of the messages).
    pub fn common(&self) -> Vec<String> {
        (FILLER.len()..FILLER.len() + 10)
            .map(|r| self.words[r].clone())
            .collect()
    }

    /// Words of the long tail searched as rare ones (about 1 in 200,000 words).
    pub fn rare(&self) -> Vec<String> {
        (20_000..20_010).map(|r| self.words[r].clone()).collect()
    }

    /// `count` words appended to `out`, separated by spaces.
    fn text(&self, rng: &mut Rng, count: usize, out: &mut String) {
        for i in 0..count {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.sample(rng));
        }
    }
}

/// A contact's name and address, from its id alone (so the bench can find it again).
pub fn contact(id: usize) -> (String, String) {
    let first = FIRST_NAMES[id % FIRST_NAMES.len()];
    let last = LAST_NAMES[(id / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let domain = DOMAINS[id % DOMAINS.len()];
    let local: String = format!("{first}.{last}")
        .to_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    (format!("{first} {last}"), format!("{local}{id}@{domain}"))
}

/// A string as an SQL literal.
fn q(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What the bench needs to know about the generated desk.
pub struct Desk {
    pub contacts: usize,
    pub messages: usize,
    pub queued: usize,
    pub open: usize,
    /// Every agent, Support's first: the heavy one.
    pub agents: Vec<UserId>,
    pub heavy: UserId,
    pub support: DepartmentId,
    pub support_inbox: InboxId,
    pub words: Words,
    /// Seconds: loading rows (search index included, on SQLite), building PostgreSQL's GIN
    /// indexes, and `VACUUM ANALYZE` (PostgreSQL).
    pub load_seconds: f64,
    pub index_seconds: f64,
    pub analyze_seconds: f64,
}

struct Setup {
    /// Per department (Support, Billing, Sales): its agents.
    departments: Vec<(DepartmentId, Vec<UserId>)>,
    /// The inboxes with their department: support, billing, sales, info (none).
    inboxes: Vec<(InboxId, Option<usize>)>,
}

async fn setup(store: &Store) -> anyhow::Result<Setup> {
    let user = |username: String, role: Role| NewUser {
        name: username.clone(),
        email: format!("{username}@desk.example"),
        username,
        // Nobody signs in: any string will do.
        password_hash: "$argon2id$bench".into(),
        roles: vec![role],
    };
    store
        .create_user(&user("admin".into(), Role::Admin))
        .await?;
    store
        .create_user(&user("manager".into(), Role::Manager))
        .await?;
    let mut departments = Vec::new();
    for name in ["Support", "Billing", "Sales"] {
        let department = store.create_department(name).await?.id;
        let mut agents = Vec::new();
        for a in 0..AGENTS_PER_DEPARTMENT {
            let username = format!("{}{a}", name.to_lowercase());
            let id = store.create_user(&user(username, Role::Agent)).await?.id;
            store.add_department_member(department, id).await?;
            agents.push(id);
        }
        departments.push((department, agents));
    }
    let mut inboxes = Vec::new();
    for (i, address) in ["support", "billing", "sales", "info"].iter().enumerate() {
        let mut settings = crate::common::inbox_settings(&format!("{address}@desk.example"));
        settings.name = (*address).to_owned();
        let department = (i < 3).then_some(i);
        settings.department_id = department.map(|d| departments[d].0.0);
        inboxes.push((store.create_inbox(&settings).await?.id, department));
    }
    // Load balancing with room to spare; every agent but the last of each team available.
    for statement in [
        "UPDATE departments SET routing = 'load_balancing', max_chats_per_agent = 1000",
        "UPDATE users SET availability = 'available'",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(store.raw_pool())
            .await?;
    }
    for (_, agents) in &departments {
        sqlx::query("UPDATE users SET availability = 'away' WHERE id = $1")
            .bind(agents[AGENTS_PER_DEPARTMENT - 1].0)
            .execute(store.raw_pool())
            .await?;
    }
    Ok(Setup {
        departments,
        inboxes,
    })
}

/// Statuses of the live window, shuffled: the newest conversations.
fn live_statuses(n: usize, rng: &mut Rng) -> (Vec<&'static str>, usize, usize) {
    let queued = n * 3 / 1000;
    let open = n / 200;
    let mut live = Vec::new();
    live.extend(std::iter::repeat_n("queued", queued));
    live.extend(std::iter::repeat_n("heavy", HEAVY_OPEN));
    live.extend(std::iter::repeat_n("open", open));
    live.extend(std::iter::repeat_n("on_hold", n / 1000));
    live.extend(std::iter::repeat_n("snoozed", n / 2000));
    let window = (n / 20).max(live.len());
    live.resize(window, "closed");
    for i in (1..live.len()).rev() {
        live.swap(i, rng.below(i + 1));
    }
    (live, queued, open + HEAVY_OPEN)
}

/// Rows of one table, flushed as multi-row `INSERT`s.
struct Rows {
    head: &'static str,
    sql: String,
    count: usize,
    statements: Vec<String>,
}

impl Rows {
    fn new(head: &'static str) -> Self {
        Rows {
            head,
            sql: String::new(),
            count: 0,
            statements: Vec::new(),
        }
    }

    /// Starts a row: the caller writes `(…)` into the returned buffer.
    fn row(&mut self) -> &mut String {
        if self.count == ROWS_PER_INSERT {
            self.flush();
        }
        if self.count == 0 {
            self.sql.push_str(self.head);
            self.sql.push_str(" VALUES ");
        } else {
            self.sql.push_str(", ");
        }
        self.count += 1;
        &mut self.sql
    }

    fn flush(&mut self) {
        if self.count > 0 {
            self.statements.push(std::mem::take(&mut self.sql));
            self.count = 0;
        }
    }

    fn take(&mut self) -> Vec<String> {
        self.flush();
        std::mem::take(&mut self.statements)
    }
}

async fn execute_all(
    conn: &mut sqlx::AnyConnection,
    statements: Vec<String>,
) -> anyhow::Result<()> {
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Fills `store`'s fresh database with `n` conversations; prints progress.
pub async fn generate(store: &Store, n: usize, seed: u64) -> anyhow::Result<Desk> {
    let began = Instant::now();
    let setup = setup(store).await?;
    let mut rng = Rng::new(seed);
    let words = Words::new();
    let contacts = (n / 5).max(1);
    let backend = store.backend();
    let mut conn = store.raw_pool().acquire().await?;
    let conn: &mut sqlx::AnyConnection = &mut conn;
    let gin = ["message_search_document", "conversation_search_document"];
    match backend {
        Backend::Sqlite => {
            for pragma in ["PRAGMA cache_size = -524288", "PRAGMA synchronous = OFF"] {
                sqlx::raw_sql(pragma).execute(&mut *conn).await?;
            }
        }
        Backend::Postgres => {
            sqlx::raw_sql("SET synchronous_commit = off")
                .execute(&mut *conn)
                .await?;
            for index in gin {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP INDEX {index}")))
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }

    // Contacts, created over the first year.
    let mut rows = Rows::new("INSERT INTO contacts (id, email, name, created_at)");
    for id in 1..=contacts {
        let (name, email) = contact(id);
        let at = START_MS + (id as i64 * (SPAN_MS / 3) / contacts as i64);
        let _ = write!(rows.row(), "({id}, {}, {}, {at})", q(&email), q(&name));
        if id % CHUNK == 0 || id == contacts {
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
            execute_all(conn, rows.take()).await?;
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
        }
    }
    println!(
        "  {contacts} contacts ({:.1} s)",
        began.elapsed().as_secs_f64()
    );

    let (live, queued, open) = live_statuses(n, &mut rng);
    let live_from = n - live.len();
    let agents_of = |department: Option<usize>| -> Vec<UserId> {
        match department {
            Some(d) => setup.departments[d].1.clone(),
            None => setup
                .departments
                .iter()
                .flat_map(|(_, a)| a.clone())
                .collect(),
        }
    };
    let heavy = setup.departments[0].1[0];
    let all_agents = agents_of(None);
    let mut conversations = Rows::new(
        "INSERT INTO conversations (id, inbox_id, contact_id, subject, status, assignee_id, \
         created_at, updated_at, last_message_at, closed_at, tags, department_id, queued_at, \
         snoozed_until)",
    );
    let mut messages = Rows::new(
        "INSERT INTO messages (id, conversation_id, inbox_id, kind, author_user_id, \
         author_contact_id, text, message_id, from_json, subject, email_date, created_at)",
    );
    let mut tags = Rows::new("INSERT INTO conversation_tags (conversation_id, tag, tag_key)");
    let mut members = Rows::new(
        "INSERT INTO conversation_members (conversation_id, user_id, added_by, added_at)",
    );
    let mut message_id = 0usize;
    let step = SPAN_MS / n as i64;
    // A week from now: still snoozed while the bench runs.
    let snoozed_until = postdesk_store::now_ms() + 7 * 24 * 3600 * 1000;
    let mut chunk_began = Instant::now();
    for i in 0..n {
        let id = i + 1;
        let (inbox, department) = match rng.below(100) {
            0..50 => setup.inboxes[0],
            50..75 => setup.inboxes[1],
            75..90 => setup.inboxes[2],
            _ => setup.inboxes[3],
        };
        let mut status = if i >= live_from {
            live[i - live_from]
        } else {
            "closed"
        };
        let assignee = match status {
            "queued" => None,
            "heavy" => {
                status = "open";
                Some(heavy)
            }
            _ => {
                let agents = agents_of(department);
                // The heavy agent gets no more beyond their 300.
                let agents: Vec<_> = agents.into_iter().filter(|a| *a != heavy).collect();
                Some(if agents.is_empty() {
                    all_agents[1]
                } else {
                    agents[rng.below(agents.len())]
                })
            }
        };
        // Support's inbox for the heavy agent's conversations, so they are of their department.
        let (inbox, department) = if assignee == Some(heavy) {
            setup.inboxes[0]
        } else {
            (inbox, department)
        };
        let contact_id = 1 + rng.below(contacts);
        let (contact_name, contact_email) = contact(contact_id);
        let created = START_MS + i as i64 * step;
        let count = 1 + rng.below(5);
        let mut subject = String::new();
        for w in 0..2 + rng.below(4) {
            if w > 0 {
                subject.push(' ');
            }
            subject.push_str(words.at(FILLER.len() + rng.below(2000)));
        }
        let mut at = created;
        for m in 0..count {
            message_id += 1;
            let kind = if m == 0 || assignee.is_none() {
                "email_in"
            } else if rng.percent(15.0) {
                "internal"
            } else if m % 2 == 1 {
                "email_out"
            } else {
                "email_in"
            };
            let mut text = String::new();
            let count = 8 + rng.below(25);
            words.text(&mut rng, count, &mut text);
            let row = messages.row();
            let _ = write!(row, "({message_id}, {id}, {}, '{kind}', ", inbox.0);
            match kind {
                "email_in" => {
                    let from = serde_json::json!({"name": contact_name, "email": contact_email});
                    let _ = write!(
                        row,
                        "NULL, {contact_id}, '{text}', 'm{message_id}@desk.example', {}, {}, {at}, {at})",
                        q(&from.to_string()),
                        q(&subject)
                    );
                }
                "email_out" => {
                    let _ = write!(
                        row,
                        "{}, NULL, '{text}', 'm{message_id}@desk.example', NULL, {}, {at}, {at})",
                        assignee.map_or(0, |a| a.0),
                        q(&format!("Re: {subject}"))
                    );
                }
                _ => {
                    let _ = write!(
                        row,
                        "{}, NULL, '{text}', NULL, NULL, NULL, NULL, {at})",
                        assignee.map_or(0, |a| a.0)
                    );
                }
            }
            at += 60_000 + rng.below(3_600_000) as i64;
        }
        let last = at;
        let mut tag_list: Vec<&str> = Vec::new();
        if rng.percent(10.0) {
            tag_list.push(TAGS[rng.below(TAGS.len())]);
            if rng.percent(30.0) {
                let second = TAGS[rng.below(TAGS.len())];
                if !tag_list.contains(&second) {
                    tag_list.push(second);
                }
            }
        }
        for tag in &tag_list {
            let _ = write!(tags.row(), "({id}, '{tag}', '{tag}')");
        }
        if assignee.is_some() && rng.percent(1.0) {
            let invited = all_agents[rng.below(all_agents.len())];
            if Some(invited) != assignee {
                let _ = write!(
                    members.row(),
                    "({id}, {}, {}, {last})",
                    invited.0,
                    assignee.map_or(0, |a| a.0)
                );
            }
        }
        let null = || "NULL".to_owned();
        let _ = write!(
            conversations.row(),
            "({id}, {}, {contact_id}, {}, '{status}', {}, {created}, {last}, {last}, {}, {}, {}, {}, {})",
            inbox.0,
            q(&subject),
            assignee.map_or_else(null, |a| a.0.to_string()),
            if status == "closed" {
                last.to_string()
            } else {
                null()
            },
            q(&serde_json::to_string(&tag_list)?),
            department.map_or_else(null, |d| setup.departments[d].0.0.to_string()),
            if status == "queued" {
                last.to_string()
            } else {
                null()
            },
            if status == "snoozed" {
                (snoozed_until).to_string()
            } else {
                null()
            },
        );
        if id % CHUNK == 0 || id == n {
            sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
            // Conversations first: the messages refer to them.
            execute_all(conn, conversations.take()).await?;
            execute_all(conn, messages.take()).await?;
            execute_all(conn, tags.take()).await?;
            execute_all(conn, members.take()).await?;
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            if id % (CHUNK * 10) == 0 || id == n {
                println!(
                    "  {id} conversations, {message_id} messages ({:.1} s; last 10 chunks {:.1} s)",
                    began.elapsed().as_secs_f64(),
                    chunk_began.elapsed().as_secs_f64()
                );
                chunk_began = Instant::now();
            }
        }
    }
    let load_seconds = began.elapsed().as_secs_f64();

    let mut index_seconds = 0.0;
    let mut analyze_seconds = 0.0;
    match backend {
        Backend::Sqlite => {
            for pragma in [
                "PRAGMA wal_checkpoint(TRUNCATE)",
                "PRAGMA cache_size = -2000",
                "PRAGMA synchronous = NORMAL",
            ] {
                sqlx::raw_sql(pragma).execute(&mut *conn).await?;
            }
        }
        Backend::Postgres => {
            let started = Instant::now();
            sqlx::raw_sql(
                "CREATE INDEX message_search_document ON message_search USING GIN (document);
                 CREATE INDEX conversation_search_document ON conversation_search USING GIN (document);",
            )
            .execute(&mut *conn)
            .await?;
            index_seconds = started.elapsed().as_secs_f64();
            println!("  GIN indexes built ({index_seconds:.1} s)");
            // The ids were given: the identity columns continue after them.
            for table in ["contacts", "conversations", "messages"] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
                )))
                .execute(&mut *conn)
                .await?;
            }
            let started = Instant::now();
            sqlx::raw_sql("VACUUM ANALYZE").execute(&mut *conn).await?;
            analyze_seconds = started.elapsed().as_secs_f64();
            println!("  VACUUM ANALYZE ({analyze_seconds:.1} s)");
        }
    }
    Ok(Desk {
        contacts,
        messages: message_id,
        queued,
        open,
        agents: all_agents,
        heavy,
        support: setup.departments[0].0,
        support_inbox: setup.inboxes[0].0,
        words,
        load_seconds,
        index_seconds,
        analyze_seconds,
    })
}
