//! A cursor's `statement_timeout`, set on its connection once instead of by a `SET LOCAL`
//! in every transaction: what each transaction sees across commits, rollbacks, cursors of
//! other limits and the pipelined first statement, on one pooled connection.

use super::super::tests::{test_info, TestDb};
use super::super::Pools;
use super::*;
use std::time::Duration;

/// `SHOW statement_timeout` and the backend's pid, in the cursor's transaction.
async fn seen(cr: &mut Cursor) -> (String, i64) {
    let rows = cr
        .execute(
            "SELECT current_setting('statement_timeout'), pg_backend_pid()::bigint",
            &[],
        )
        .await
        .unwrap();
    match (&rows.rows[0][0], &rows.rows[0][1]) {
        (SqlValue::Text(t), SqlValue::Int(pid)) => (t.to_string(), *pid),
        other => panic!("unexpected row {other:?}"),
    }
}

fn limited(pools: &Arc<Pools>, db: &str, ms: Option<u64>) -> Cursor {
    Cursor::new(Arc::clone(pools), db, false).with_statement_timeout(ms.map(Duration::from_millis))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transaction_runs_under_its_cursors_limit() {
    let db = TestDb::create("stmt_timeout").await;
    // One connection: every cursor below gets the same one.
    let pools = Pools::new(test_info(), 1);

    let mut a = limited(&pools, &db.name, Some(300));
    let (limit, pid) = seen(&mut a).await;
    assert_eq!(limit, "300ms");
    a.commit().await.unwrap();

    // Same limit, after a commit: not sent again, still in force; a long statement is
    // cancelled by PostgreSQL (57014), and the transaction rolled back.
    let mut b = limited(&pools, &db.name, Some(300));
    assert_eq!(seen(&mut b).await, ("300ms".into(), pid));
    let e = b.execute("SELECT pg_sleep(3)", &[]).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("57014"), "{e}");
    b.rollback().await.unwrap();

    // After that rollback the connection keeps the limit (it was set outside any
    // transaction), and still cancels.
    let mut c = limited(&pools, &db.name, Some(300));
    assert_eq!(seen(&mut c).await, ("300ms".into(), pid));
    assert_eq!(
        c.conn.as_ref().unwrap().statement_timeout_ms(),
        Some(300),
        "the connection's limit is known"
    );
    let e = c.execute("SELECT pg_sleep(3)", &[]).await.unwrap_err();
    assert_eq!(e.sqlstate(), Some("57014"), "{e}");
    c.rollback().await.unwrap();

    // A cursor without a limit: none on the same connection.
    let mut d = limited(&pools, &db.name, None);
    assert_eq!(seen(&mut d).await, ("0".into(), pid));
    d.execute("SELECT pg_sleep(0.4)", &[]).await.unwrap();
    d.rollback().await.unwrap();

    // Another limit, with the statement pipelined with its BEGIN (async routes).
    let mut e = limited(&pools, &db.name, Some(2000));
    let rows = e
        .execute_pipelined("SELECT current_setting('statement_timeout')", &[])
        .await
        .unwrap();
    assert_eq!(rows.rows[0][0], SqlValue::Text("2s".into()));
    assert_eq!(seen(&mut e).await, ("2s".into(), pid));
    e.commit().await.unwrap();

    // And back, pipelined too, after a rollback.
    let mut f = limited(&pools, &db.name, Some(300));
    let err = f
        .execute_pipelined("SELECT pg_sleep(3)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate(), Some("57014"), "{err}");
    f.rollback().await.unwrap();
    let mut g = limited(&pools, &db.name, Some(300));
    assert_eq!(seen(&mut g).await, ("300ms".into(), pid));
    g.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_dropped_mid_statement_leaves_the_limit_unknown() {
    let db = TestDb::create("stmt_timeout_drop").await;
    let pools = Pools::new(test_info(), 1);
    let mut a = limited(&pools, &db.name, Some(300));
    let (_, pid) = seen(&mut a).await;
    a.commit().await.unwrap();
    // A cursor without a limit is dropped while its first statement, pipelined with its
    // SET and BEGIN, runs (a request cancelled at `limit_time_real`): its SET ran, but the
    // cursor never saw it answered; the connection goes back (after its ROLLBACK) with
    // its limit unknown.
    {
        let mut b = limited(&pools, &db.name, None);
        let run = b.execute_pipelined("SELECT pg_sleep(1)", &[]);
        assert!(tokio::time::timeout(Duration::from_millis(300), run)
            .await
            .is_err());
    }
    // The next cursor sets its own limit again rather than trust a stale record.
    let mut c = limited(&pools, &db.name, Some(300));
    assert_eq!(seen(&mut c).await, ("300ms".into(), pid));
    c.rollback().await.unwrap();
}
