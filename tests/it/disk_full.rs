//! A full disk: a dropped file waits (nothing half-applied), readiness says
//! why, and the file applies by itself once space is back. The data folder is
//! a small tmpfs the test mounts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use enterprise_sync::config::CompletionPolicy;
use reqwest::StatusCode;
use serde_json::Value;

use crate::dropdir::{files, setup, with_drop_dir};
use crate::support::{Auth, TestApp};

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(at: &Path, size_mib: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| SmallDisk {
            mount: at.to_path_buf(),
        })
    }

    /// Writes a file until the disk refuses more, then gives back `leave` bytes.
    fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let filler = self.mount.join(name);
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.flush();
        let size = file.metadata().unwrap().len();
        file.set_len(size.saturating_sub(leave)).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

async fn total_users(app: &TestApp, key: &str) -> u64 {
    let status: Value = app
        .get("/api/enterprise/sync-status", &Auth::Key(key))
        .await
        .json()
        .await
        .unwrap();
    status["total_users"].as_u64().unwrap()
}

async fn readyz(app: &TestApp) -> (StatusCode, Value) {
    let response = app.get("/readyz", &Auth::None).await;
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_file_waits_out_a_full_disk_and_applies_when_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), 40) else {
        // Only where the test cannot mount (no privilege): said loudly.
        eprintln!(
            "\n*** SKIPPED a_file_waits_out_a_full_disk_and_applies_when_space_is_back: \
             mounting a tmpfs failed (run the tests as root, as scripts/test does in CI) ***\n"
        );
        return;
    };
    let data = disk.mount.join("data");
    let app = TestApp::start_in(tempfile::tempdir().unwrap(), move |config| {
        with_drop_dir(CompletionPolicy::Rename)(config);
        config.data_dir = data;
        config.database.min_free_mb = 4;
    })
    .await;
    let drop = setup(&app, "Acme").await;
    app.raw_db()
        .execute(
            "UPDATE enterprise_accounts SET seats_purchased = 100000 WHERE id = ?1",
            [&drop.admin.enterprise_id],
        )
        .unwrap();
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert!(ready["free_bytes"]["data"].as_u64().unwrap() > 4 * 1024 * 1024);

    // The file is written beside the drop folder first, then the disk fills up.
    let mut csv = String::from("external_id,email,name,role,store_id\n");
    for n in 0..5_000 {
        csv.push_str(&format!("E{n},p{n}@acme.example,Person {n},seller,S1\n"));
    }
    let staged = drop.folder.join("users.csv");
    std::fs::write(&staged, csv).unwrap();

    // Low, not yet full: readiness fails and every enterprise is alerted, once.
    let nearly = disk.fill("filler-1", 2 * 1024 * 1024);
    let (status, ready) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert!(enterprise_sync::service::disk_space::watch(app.services(), false).await);
    assert!(enterprise_sync::service::disk_space::watch(app.services(), true).await);
    let alerts: i64 = app
        .raw_db()
        .query_row(
            "SELECT COUNT(*) FROM alerts WHERE kind = 'disk_low'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(alerts, 1, "one alert for the one enterprise, once");

    // Then full.
    let full = disk.fill("filler-2", 0);
    std::fs::rename(&staged, drop.incoming().join("users.csv")).unwrap();

    let (status, ready) = readyz(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["checks"]["disk"], "low");
    let metrics = app.get("/metrics", &Auth::None).await.text().await.unwrap();
    assert!(
        metrics.contains("enterprise_sync_filesystem_low_space 1"),
        "{metrics}"
    );

    app.drop_dir().scan_now().await;
    // Nothing of it is applied, and it is not given up either.
    assert_eq!(total_users(&app, &drop.key).await, 0);
    let listed = files(&app, &drop).await;
    assert!(
        listed.iter().all(|f| f["state"] == "processing"),
        "{listed:?}"
    );

    // Space comes back: the next scan applies it, without anyone's help.
    std::fs::remove_file(full).unwrap();
    std::fs::remove_file(nearly).unwrap();
    assert!(!enterprise_sync::service::disk_space::watch(app.services(), true).await);
    app.drop_dir().scan_now().await;
    let listed = files(&app, &drop).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "applied", "{listed:?}");
    assert_eq!(total_users(&app, &drop.key).await, 5_000);
    let results = crate::dropdir::entries(&drop.folder.join("results"));
    assert!(
        results.iter().any(|name| name.ends_with(".result.json")),
        "{results:?}"
    );
    let (status, _) = readyz(&app).await;
    assert_eq!(status, StatusCode::OK);
    app.stop().await;
    std::mem::drop(disk);
}

#[tokio::test]
async fn a_file_that_cannot_be_claimed_is_listed_waiting_with_the_reason() {
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    let processing = app
        .services()
        .config
        .drop_work_root()
        .join(&drop.admin.enterprise_id)
        .join("processing");
    // processing/ read-only (a bind mount): the claim's rename fails.
    let run = |args: &[&str]| {
        Command::new("mount")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    let path = processing.to_str().unwrap();
    if !(run(&["--bind", path, path]) && run(&["-o", "remount,ro,bind", path])) {
        let _ = Command::new("umount").arg(path).status();
        eprintln!(
            "\n*** SKIPPED a_file_that_cannot_be_claimed_is_listed_waiting_with_the_reason: \
             a read-only bind mount failed (run the tests as root, as scripts/test does in CI) ***\n"
        );
        return;
    }
    std::fs::write(
        drop.incoming().join("users.csv"),
        "external_id,email,name,role\nE1,jean@acme.example,Jean,manager\n",
    )
    .unwrap();
    app.drop_dir().scan_now().await;
    let listed = files(&app, &drop).await;
    let _ = Command::new("umount").arg(path).status();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "waiting", "{listed:?}");
    assert_eq!(listed[0]["name"], "users.csv");
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot take the file from incoming/"),
        "{listed:?}"
    );
    // Once it can be taken, it is, and the waiting entry goes.
    app.drop_dir().scan_now().await;
    let listed = files(&app, &drop).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "applied", "{listed:?}");
    app.stop().await;
}
