//! The service's own backups: each one a checked, private copy named by its
//! time, the oldest removed past the retention count. The schedule's timer is
//! not waited for: the test runs the scheduled job at chosen clock times.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use enterprise_sync::service::backups;

use crate::support::TestApp;

#[tokio::test]
async fn scheduled_backups_are_private_checked_copies_and_only_the_newest_are_kept() {
    let app = TestApp::start_with(|config| {
        config.backup.keep = 2;
    })
    .await;
    app.admin("Acme").await;
    let mut written = Vec::new();
    for _ in 0..3 {
        let summary = backups::run_scheduled(app.services()).await.unwrap();
        assert_eq!(summary.enterprises, 1);
        assert_eq!(summary.users, 1, "the IT admin");
        written.push(summary.file);
        app.advance(Duration::from_secs(3600));
    }
    let dir = app.services().config.backup_dir();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let mut kept: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    kept.sort();
    assert_eq!(kept, written[1..], "the oldest is removed past backup.keep");
    for file in &kept {
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
        let count: i64 = rusqlite::Connection::open(file)
            .unwrap()
            .query_row("SELECT count(*) FROM enterprise_accounts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }
    app.stop().await;
}
