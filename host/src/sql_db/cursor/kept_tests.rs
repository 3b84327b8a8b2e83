//! Addons' statements kept prepared per connection (`PgConn::prepare_kept`): a statement
//! run again is not prepared again, at most `KEPT_STATEMENTS` are kept (the others closed
//! on the server), none longer than `KEPT_STATEMENT_LEN`, and one gone stale (its result's columns changed, or deallocated) fails
//! once as a retryable error, the connection's statements dropped, and runs on a new try.

use super::super::pool::{KEPT_STATEMENTS, KEPT_STATEMENT_LEN};
use super::super::tests::{test_info, TestDb};
use super::super::Pools;
use super::*;

/// How many statements the connection has prepared whose text is `sql`.
async fn prepared(cr: &mut Cursor, sql: &str) -> i64 {
    let rows = cr
        .execute(
            "SELECT count(*)::bigint FROM pg_prepared_statements WHERE statement = $1",
            &[SqlValue::Text(sql.into())],
        )
        .await
        .unwrap();
    match rows.rows[0][0] {
        SqlValue::Int(n) => n,
        ref other => panic!("unexpected {other:?}"),
    }
}

/// The table `note (id int)` of `db`, with the rows `values` (SQL `VALUES` text).
async fn note_table(pools: &Arc<Pools>, db: &str, values: &str) {
    let mut setup = Cursor::new(Arc::clone(pools), db, false);
    setup
        .execute("CREATE TABLE note (id int)", &[])
        .await
        .unwrap();
    setup
        .execute(&format!("INSERT INTO note VALUES {values}"), &[])
        .await
        .unwrap();
    setup.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_run_again_is_not_prepared_again() {
    let db = TestDb::create("kept").await;
    let pools = Pools::new(test_info(), 1);
    note_table(&pools, &db.name, "(1), (2)").await;

    const COUNT: &str = "SELECT count(*) AS n FROM note";
    for round in 1..=3 {
        // The async routes' path (with the BEGIN) and the plain one.
        let mut cr = Cursor::new(Arc::clone(&pools), &db.name, true);
        let rows = cr.execute_pipelined(COUNT, &[]).await.unwrap();
        assert_eq!(rows.rows[0][0], SqlValue::Int(2));
        assert_eq!(rows.columns[0].as_str(), "n");
        let rows = cr
            .execute("SELECT id FROM note WHERE id > $1", &[SqlValue::Int(1)])
            .await
            .unwrap();
        assert_eq!(rows.rows.len(), 1);
        assert_eq!(prepared(&mut cr, COUNT).await, 1, "round {round}");
        cr.commit().await.unwrap();
    }

    // At most KEPT_STATEMENTS are kept: the oldest are closed on the server.
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, true);
    for i in 0..KEPT_STATEMENTS + 10 {
        cr.execute(&format!("SELECT {i} AS n"), &[]).await.unwrap();
    }
    let rows = cr
        .execute("SELECT count(*)::bigint FROM pg_prepared_statements", &[])
        .await
        .unwrap();
    match rows.rows[0][0] {
        SqlValue::Int(n) => assert!(n <= KEPT_STATEMENTS as i64 + 1, "{n} prepared"),
        ref other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        prepared(&mut cr, "SELECT 0 AS n").await,
        0,
        "the oldest closed"
    );
    // A statement longer than KEPT_STATEMENT_LEN runs, and is not kept.
    let long = format!(
        "SELECT count(*) AS n FROM note WHERE id IN ({})",
        (0..2000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(long.len() > KEPT_STATEMENT_LEN);
    let rows = cr.execute(&long, &[]).await.unwrap();
    assert_eq!(rows.rows[0][0], SqlValue::Int(2));
    assert_eq!(prepared(&mut cr, &long).await, 0, "not kept");
    cr.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_statement_fails_once_as_retryable_then_runs_anew() {
    let db = TestDb::create("kept_stale").await;
    let pools = Pools::new(test_info(), 1);
    note_table(&pools, &db.name, "(1)").await;

    const ALL: &str = "SELECT * FROM note";
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, true);
    assert_eq!(
        cr.execute_pipelined(ALL, &[]).await.unwrap().columns.len(),
        1
    );
    cr.commit().await.unwrap();

    // A column added: the kept plan's result would change shape.
    let mut ddl = Cursor::new(Arc::clone(&pools), &db.name, false);
    ddl.execute("ALTER TABLE note ADD COLUMN name text", &[])
        .await
        .unwrap();
    ddl.commit().await.unwrap();
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, true);
    let e = cr.execute_pipelined(ALL, &[]).await.unwrap_err();
    assert!(e.is_stale_statement(), "{e}");
    assert!(cr.retryable_error().is_some(), "the transaction runs again");
    assert_eq!(super::super::env::retry_wait(&e, 1), 0.0, "at once");
    cr.rollback().await.unwrap();
    // The next try prepares it anew.
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, true);
    let rows = cr.execute_pipelined(ALL, &[]).await.unwrap();
    assert_eq!(rows.columns.len(), 2);
    cr.commit().await.unwrap();

    // Deallocated behind the cursor's back (an addon's DISCARD ALL): the same.
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, false);
    cr.execute(ALL, &[]).await.unwrap();
    cr.commit().await.unwrap();
    let conn = pools.get(&db.name).await.unwrap();
    conn.batch_execute("DEALLOCATE ALL").await.unwrap();
    drop(conn);
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, false);
    let e = cr.execute(ALL, &[]).await.unwrap_err();
    assert!(e.is_stale_statement(), "{e}");
    assert!(cr.retryable_error().is_some());
    cr.rollback().await.unwrap();
    let mut cr = Cursor::new(Arc::clone(&pools), &db.name, false);
    assert_eq!(cr.execute(ALL, &[]).await.unwrap().rows.len(), 1);
    cr.commit().await.unwrap();
}
