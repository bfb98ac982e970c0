use postdesk_testkit::{PgDatabase, init};
use sqlx::{Connection, PgConnection, Row};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("POSTDESK_TEST_PG_URL").unwrap_or_else(|_| ADMIN_URL.to_string())
}

async fn database_exists(name: &str) -> bool {
    let mut admin = PgConnection::connect(&admin_url()).await.unwrap();
    let row = sqlx::query("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    row.get::<i64, _>(0) == 1
}

#[tokio::test]
async fn creates_a_fresh_database_and_cleans_it_up() {
    init();
    let db = PgDatabase::create().await.expect("create test database");
    assert!(db.name().starts_with("postdesk_test_"), "{}", db.name());
    assert!(
        db.url().ends_with(&format!("/{}", db.name())),
        "{}",
        db.url()
    );

    let mut conn = PgConnection::connect(db.url()).await.unwrap();
    let one: i32 = sqlx::query("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    let current: String = sqlx::query("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(current, db.name());
    let tables: i64 =
        sqlx::query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
    assert_eq!(tables, 0, "a fresh database is empty");

    let name = db.name().to_string();
    assert!(database_exists(&name).await);
    // cleanup() drops it even with our connection still open (WITH (FORCE)).
    db.cleanup().await.unwrap();
    assert!(!database_exists(&name).await);
    drop(conn);
}

#[tokio::test]
async fn each_test_gets_its_own_database_dropped_on_drop() {
    init();
    let (a, b) = (
        PgDatabase::create().await.unwrap(),
        PgDatabase::create().await.unwrap(),
    );
    assert_ne!(a.name(), b.name());
    let mut conn = PgConnection::connect(a.url()).await.unwrap();
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut conn_b = PgConnection::connect(b.url()).await.unwrap();
    let in_b: i64 = sqlx::query("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
        .fetch_one(&mut conn_b)
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_b, 0, "databases are isolated");

    let (name_a, name_b) = (a.name().to_string(), b.name().to_string());
    drop(a);
    drop(b);
    assert!(!database_exists(&name_a).await, "dropped on Drop");
    assert!(!database_exists(&name_b).await, "dropped on Drop");
}
