//! Tests of the session ids, the filesystem store, its sweep and the cookie.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn store() -> (tempfile::TempDir, FilesystemSessionStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = FilesystemSessionStore::new(tmp.path().join("data/sessions")).unwrap();
    (tmp, store)
}

/// A store whose root was replaced by a regular file: any file access under it fails.
fn store_over_a_file() -> (tempfile::TempDir, FilesystemSessionStore) {
    let (tmp, store) = store();
    fs::remove_dir(store.dir()).unwrap();
    fs::write(store.dir(), b"x").unwrap();
    (tmp, store)
}

#[test]
fn new_creates_the_folder_0700_or_fails() {
    let (tmp, store) = store();
    assert!(store.dir().is_dir());
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&tmp.path().join("data")), 0o700);
    FilesystemSessionStore::new(store.dir()).unwrap();
    let file = tmp.path().join("file");
    fs::write(&file, b"").unwrap();
    assert!(FilesystemSessionStore::new(file.join("sessions")).is_err());
}

fn set_mtime(path: &Path, age: Duration) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn ids_are_84_url_safe_characters_and_unique() {
    let a = generate_sid();
    let b = generate_sid();
    assert_eq!(a.len(), SID_LEN);
    assert!(is_valid_sid(&a) && is_valid_sid(&b));
    assert_ne!(a, b);
    assert!(a
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 63);
}

#[test]
fn validation_rejects_bad_shapes() {
    let good = "A".repeat(84);
    assert!(is_valid_sid(&good));
    assert!(is_valid_sid(&format!("{}-_", "a".repeat(82))));
    assert!(!is_valid_sid(&"A".repeat(83)));
    assert!(!is_valid_sid(&"A".repeat(85)));
    assert!(!is_valid_sid(""));
    assert!(!is_valid_sid("../../etc/passwd"));
    assert!(!is_valid_sid(&format!("../{}", "A".repeat(81))));
    assert!(!is_valid_sid(&format!("{}+/", "A".repeat(82))));
    assert!(!is_valid_sid(&format!("{}=", "A".repeat(83))));
    assert!(!is_valid_sid(&format!("{}\0", "A".repeat(83))));
    // 84 bytes but multi-byte characters.
    assert!(!is_valid_sid(&format!("{}é", "A".repeat(82))));
}

#[test]
fn default_session_has_odoo_keys() {
    let d = SessionData::default_session();
    assert_eq!(
        serde_json::to_value(&d).unwrap(),
        serde_json::json!({"context": {}, "db": null, "debug": "", "login": null,
            "uid": null, "session_token": null, "_trace": []})
    );
    let mut partial = SessionData::default();
    partial.insert("uid".into(), serde_json::json!(2));
    partial.fill_defaults();
    assert_eq!(partial["uid"], serde_json::json!(2));
    assert_eq!(partial.len(), 7);
}

#[test]
fn save_get_layout_and_modes() {
    let (_tmp, store) = store();
    let sid = store.new_sid();
    assert!(store.get(&sid).unwrap().is_none());
    assert!(
        fs::read_dir(store.dir()).unwrap().next().is_none(),
        "reading must not create anything"
    );

    let mut data = SessionData::default_session();
    data.insert("login".into(), serde_json::json!("admin"));
    store.save(&sid, &data).unwrap();

    let file = store.dir().join(&sid[..2]).join(&sid);
    assert!(file.is_file());
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&store.dir().join(&sid[..2])), 0o700);
    let on_disk: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(on_disk["login"], "admin");
    assert_eq!(
        store.get(&sid).unwrap().map(|s| (*s.data).clone()),
        Some(data.clone())
    );

    // Overwrite: no temporary file left behind, content replaced.
    data.insert("uid".into(), serde_json::json!(2));
    store.save(&sid, &data).unwrap();
    assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 2);
    let names: Vec<_> = fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from(&sid)]);
}

#[test]
fn invalid_ids_never_touch_the_filesystem() {
    // The store root is a *file*: any file access under it would fail with an error,
    // and a save would fail creating the folder. Invalid ids must not get that far.
    let (tmp, store) = store_over_a_file();
    let passwd_like = tmp.path().join("data/etc_passwd");
    fs::write(&passwd_like, b"{}").unwrap();
    let bad = [
        "../../etc/passwd".to_owned(),
        "../etc_passwd".to_owned(),
        format!("../{}", "A".repeat(81)),
        "A".repeat(83),
        "A".repeat(85),
        format!("{}+", "A".repeat(83)),
        format!("{}.", "A".repeat(83)),
        String::new(),
    ];
    for sid in &bad {
        assert!(store.get(sid).unwrap().is_none(), "{sid}");
        assert!(matches!(
            store.save(sid, &SessionData::default()),
            Err(SessionError::InvalidSid)
        ));
        store.delete(sid).unwrap();
        assert!(is_valid_sid(&store.rotate(sid).unwrap()));
    }
    assert_eq!(fs::read(store.dir()).unwrap(), b"x");
    assert_eq!(fs::read(&passwd_like).unwrap(), b"{}");
    // A valid id does reach the filesystem (and fails there), proving the setup.
    assert!(matches!(
        store.save(&generate_sid(), &SessionData::default()),
        Err(SessionError::Io(_))
    ));
    assert!(store.delete(&generate_sid()).is_err());
}

#[test]
fn corrupt_or_unreadable_files_count_as_no_session() {
    let (_tmp, store) = store();
    let sid = generate_sid();
    store.save(&sid, &SessionData::default_session()).unwrap();
    let file = store.dir().join(&sid[..2]).join(&sid);

    fs::write(&file, b"{\"db\": tru").unwrap();
    assert!(store.get(&sid).unwrap().is_none());
    fs::write(&file, b"[1, 2]").unwrap();
    assert!(store.get(&sid).unwrap().is_none());
    fs::write(&file, b"").unwrap();
    assert!(store.get(&sid).unwrap().is_none());

    // A directory where the file should be: unreadable, still no error.
    fs::remove_file(&file).unwrap();
    fs::create_dir(&file).unwrap();
    assert!(store.get(&sid).unwrap().is_none());
    fs::remove_dir(&file).unwrap();

    // The corrupt record can be replaced by a good one.
    store.save(&sid, &SessionData::default_session()).unwrap();
    assert!(store.get(&sid).unwrap().is_some());
}

/// Both kinds of store: watched through inotify (the tests' folder is on a local
/// filesystem), and checked with a `stat` per read (as on a network filesystem).
fn both_stores() -> [(tempfile::TempDir, FilesystemSessionStore); 2] {
    let (tmp, watched) = store();
    assert!(
        watched.is_watched(),
        "{} is on a local filesystem",
        tmp.path().display()
    );
    let tmp2 = tempfile::tempdir().unwrap();
    let unwatched = FilesystemSessionStore::unwatched(tmp2.path().join("sessions")).unwrap();
    assert!(!unwatched.is_watched());
    [(tmp, watched), (tmp2, unwatched)]
}

#[test]
fn cached_reads_follow_the_file() {
    for (_tmp, store) in both_stores() {
        let sid = generate_sid();
        let mut data = SessionData::default_session();
        data.insert("uid".into(), 1.into());
        store.save(&sid, &data).unwrap();
        let first = store.get(&sid).unwrap().unwrap();
        // Unchanged file: the cached value itself.
        let again = store.get(&sid).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first.data, &again.data));
        assert_eq!(&*again.json, serde_json::to_string(&data.0).unwrap());
        // Another host sharing the folder replaces the file.
        let other = FilesystemSessionStore::new(store.dir()).unwrap();
        data.insert("uid".into(), 2.into());
        other.save(&sid, &data).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 2);
        // Rewritten in place, same size.
        std::thread::sleep(Duration::from_millis(5));
        let path = store.dir().join(&sid[..2]).join(&sid);
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace("\"uid\":2", "\"uid\":3");
        fs::write(&path, text).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 3);
        // Removed by another host: gone here too.
        other.delete(&sid).unwrap();
        assert!(store.get(&sid).unwrap().is_none());
        // Its whole folder removed, then the session written again.
        data.insert("uid".into(), 3.into());
        store.save(&sid, &data).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 3);
        fs::remove_dir_all(store.dir().join(&sid[..2])).unwrap();
        assert!(store.get(&sid).unwrap().is_none());
        data.insert("uid".into(), 4.into());
        other.save(&sid, &data).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 4);
        data.insert("uid".into(), 5.into());
        other.save(&sid, &data).unwrap();
        assert_eq!(store.get(&sid).unwrap().unwrap().data["uid"], 5);
    }
}

#[test]
fn a_watched_folder_serves_cached_sessions_without_a_stat() {
    let [(_t1, watched), (_t2, unwatched)] = both_stores();
    for store in [&watched, &unwatched] {
        let sid = generate_sid();
        store.save(&sid, &SessionData::default_session()).unwrap();
        store.get(&sid).unwrap().unwrap();
        let before = store.stats();
        for _ in 0..100 {
            store.get(&sid).unwrap().unwrap();
        }
        let stats = store.stats() - before;
        if store.is_watched() {
            assert_eq!(stats, 0, "cached reads in a watched folder");
        } else {
            assert_eq!(stats, 100, "one stat per cached read");
        }
    }
    // A change touching neither size nor inode, its mtime put back: no stat would see it,
    // the watch does.
    let sid = generate_sid();
    let mut data = SessionData::default_session();
    data.insert("uid".into(), 1.into());
    watched.save(&sid, &data).unwrap();
    assert_eq!(watched.get(&sid).unwrap().unwrap().data["uid"], 1);
    let path = watched.dir().join(&sid[..2]).join(&sid);
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"uid\":1", "\"uid\":7");
    fs::write(&path, text).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(watched.get(&sid).unwrap().unwrap().data["uid"], 7);
}

#[test]
fn delete_and_rotate() {
    let (_tmp, store) = store();
    let old = generate_sid();
    store.save(&old, &SessionData::default_session()).unwrap();
    let new = store.rotate(&old).unwrap();
    assert!(is_valid_sid(&new));
    assert_ne!(new, old);
    assert!(store.get(&old).unwrap().is_none());
    assert!(!store.dir().join(&old[..2]).join(&old).exists());
    assert!(store.get(&new).unwrap().is_none(), "rotate saves nothing");
    // Unknown and invalid ids are fine.
    store.delete(&old).unwrap();
    assert!(is_valid_sid(&store.rotate("garbage").unwrap()));
}

#[test]
fn vacuum_removes_only_old_session_files() {
    let (_tmp, store) = store();
    let (old, fresh) = (generate_sid(), generate_sid());
    store.save(&old, &SessionData::default_session()).unwrap();
    store.save(&fresh, &SessionData::default_session()).unwrap();
    let old_path = store.dir().join(&old[..2]).join(&old);
    set_mtime(&old_path, SESSION_LIFETIME + Duration::from_secs(60));

    // Old files that are not sessions are left alone, in a shard and at the top.
    let shard = old_path.parent().unwrap();
    let stranger = shard.join("notes.txt");
    fs::write(&stranger, b"keep").unwrap();
    set_mtime(&stranger, SESSION_LIFETIME * 2);
    let top_level = store.dir().join(&old);
    fs::write(&top_level, b"{}").unwrap();
    set_mtime(&top_level, SESSION_LIFETIME * 2);
    // A stale temporary file is collected.
    let stale_tmp = shard.join(format!(".{old}.abcdefgh.tmp"));
    fs::write(&stale_tmp, b"{").unwrap();
    set_mtime(&stale_tmp, SESSION_LIFETIME * 2);

    assert_eq!(sweep(&store, SESSION_LIFETIME), 2);
    assert!(!old_path.exists() && !stale_tmp.exists());
    assert!(store.get(&fresh).unwrap().is_some());
    assert!(stranger.exists() && top_level.exists());
    assert_eq!(store.vacuum(SESSION_LIFETIME).unwrap(), 0);

    // A store whose folder has gone has nothing to sweep.
    let (_tmp2, gone) = self::store();
    fs::remove_dir(gone.dir()).unwrap();
    assert_eq!(gone.vacuum(SESSION_LIFETIME).unwrap(), 0);
}

#[test]
fn temporaries_left_by_a_cut_write_go_after_a_minute() {
    let (_tmp, store) = store();
    let sid = generate_sid();
    store.save(&sid, &SessionData::default_session()).unwrap();
    let path = store.dir().join(&sid[..2]).join(&sid);
    set_mtime(&path, TMP_MAX_AGE * 3);
    let shard = path.parent().unwrap();
    let stale = shard.join(format!(".{sid}.abcdefgh.tmp"));
    fs::write(&stale, b"").unwrap();
    set_mtime(&stale, TMP_MAX_AGE * 2);
    let fresh = shard.join(format!(".{sid}.ijklmnop.tmp"));
    fs::write(&fresh, b"").unwrap();

    assert_eq!(store.remove_stale_temporaries().unwrap(), 1);
    assert!(!stale.exists(), "the stale temporary goes");
    assert!(fresh.exists(), "a write in progress stays");
    assert!(store.get(&sid).unwrap().is_some(), "sessions stay");

    // The sweep takes them too, at their own age, not the sessions'.
    set_mtime(&fresh, TMP_MAX_AGE * 2);
    assert_eq!(sweep(&store, SESSION_LIFETIME), 1);
    assert!(!fresh.exists() && path.exists());
}

#[test]
fn sweep_reports_zero_on_error() {
    let (_tmp, store) = store_over_a_file();
    assert!(store.vacuum(SESSION_LIFETIME).is_err());
    assert_eq!(sweep(&store, SESSION_LIFETIME), 0);
}

#[test]
fn cookies() {
    let sid = "A".repeat(84);
    assert_eq!(
        session_cookie(&sid, false),
        format!("session_id={sid}; Max-Age=604800; HttpOnly; Path=/; SameSite=Lax")
    );
    assert_eq!(
        session_cookie(&sid, true),
        format!("session_id={sid}; Max-Age=604800; Secure; HttpOnly; Path=/; SameSite=Lax")
    );
    assert_eq!(
        session_cookie_with_max_age("x", 60, false),
        "session_id=x; Max-Age=60; HttpOnly; Path=/; SameSite=Lax"
    );
}

#[test]
fn cookie_parsing() {
    assert_eq!(cookie_value("session_id=abc", "session_id"), Some("abc"));
    assert_eq!(
        cookie_value("frontend_lang=en_US; session_id=abc; tz=UTC", "session_id"),
        Some("abc")
    );
    assert_eq!(
        cookie_value("a=1;session_id = \"q\" ", "session_id"),
        Some("q")
    );
    assert_eq!(
        cookie_value("session_id=1; session_id=2", "session_id"),
        Some("1")
    );
    assert_eq!(
        cookie_value("xsession_id=1; session_idx=2", "session_id"),
        None
    );
    assert_eq!(cookie_value("session_id", "session_id"), None);
    assert_eq!(cookie_value("", "session_id"), None);
    assert_eq!(cookie_value("session_id=", "session_id"), Some(""));
    assert_eq!(cookie_value("k=a=b", "k"), Some("a=b"));
}

#[test]
fn changes_beyond_one_read_of_events_are_all_seen() {
    let (_tmp, store) = store();
    let other = FilesystemSessionStore::new(store.dir()).unwrap();
    let mut data = SessionData::default_session();
    let sids: Vec<String> = (0..64).map(|_| generate_sid()).collect();
    for (i, sid) in sids.iter().enumerate() {
        data.insert("uid".into(), (i as i64).into());
        store.save(sid, &data).unwrap();
        assert_eq!(store.get(sid).unwrap().unwrap().data["uid"], i as i64);
    }
    // Another host rewrites each of them: several hundred events (each write makes a
    // temporary file, writes, closes and renames it), far more than one read of 4 KiB.
    for (i, sid) in sids.iter().enumerate() {
        data.insert("uid".into(), (1000 + i as i64).into());
        other.save(sid, &data).unwrap();
    }
    for (i, sid) in sids.iter().enumerate() {
        assert_eq!(
            store.get(sid).unwrap().unwrap().data["uid"],
            1000 + i as i64
        );
    }
}

#[test]
fn a_value_is_found_as_the_map_would_in_small_and_large_sessions() {
    for size in [0usize, 1, 7, 16, 17, 40] {
        let mut data = SessionData::from_map(serde_json::Map::new());
        for i in 0..size {
            data.insert(format!("k{i}"), i.into());
        }
        for i in 0..size + 2 {
            let key = format!("k{i}");
            assert_eq!(data.value(&key), data.get(&key), "{size} keys, {key}");
        }
        assert_eq!(data.value(""), None);
    }
    let data = SessionData::default_session();
    assert_eq!(data.value("uid"), Some(&Value::Null));
    assert_eq!(data.value("debug"), Some(&Value::String(String::new())));
}
