//! PostgreSQL helpers for the store tests: the test cluster's URL, one fresh
//! database per test, and plain queries.
#![allow(dead_code)] // each test crate uses a different subset

/// The test cluster (`TRAILMILL_PG_URL`, set by `scripts/test`). Missing is a
/// failure, not a skip: the tests need a real server.
pub fn base_url() -> String {
    std::env::var("TRAILMILL_PG_URL").expect(
        "TRAILMILL_PG_URL is not set: run scripts/test, which starts PostgreSQL \
         (scripts/setup-postgres.sh) and exports it",
    )
}

/// `url` with its database replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `sql` (simple protocol) on `url`; returns every row's text values.
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let rt = runtime();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        let driver = tokio::spawn(conn);
        let messages = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| match e.as_db_error() {
                Some(db) => panic!("{sql}: {}", db.message()),
                None => panic!("{sql}: {e}"),
            });
        drop(client);
        let _ = driver.await;
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// The single value of a one-row, one-column query.
pub fn scalar(url: &str, sql: &str) -> String {
    let rows = query(url, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone().unwrap_or_default()
}

/// A new, empty database named `name` (dropped first if a previous run left
/// it); returns its URL.
pub fn fresh_db(name: &str) -> String {
    let base = base_url();
    // Two queries: one simple query would be one transaction, which
    // DROP DATABASE and CREATE DATABASE refuse to run in.
    query(
        &base,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    query(&base, &format!("CREATE DATABASE {name}"));
    with_db(&base, name)
}
