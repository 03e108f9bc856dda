//! Browser tests: Debian's Chromium, driven through chromedriver (both
//! installed by scripts/test), against the real server. Each step writes a
//! screenshot to target/screenshots/ (not committed) for people to look at.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{TestApp, PASSWORD};

fn program(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "the browser tests need {} (run scripts/test, which installs Debian's chromium and chromium-driver)",
        path.display()
    );
    path
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_sized(1280, 900).await
    }

    /// A browser with this window size (a tablet: 820 × 1180).
    pub async fn start_sized(width: u32, height: u32) -> Browser {
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let port = crate::smtp::free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"), "--lang=fr-FR",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "intl.accept_languages": "fr-FR,fr" }
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("chromedriver starts a headless Chromium");
        let shots = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots"));
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            driver,
            _profile: profile,
            shots,
        }
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// The element, once the page that has it has loaded (up to 10 s).
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// Waits (up to 10 s) until the element's text contains `needle`: the
    /// page a click led to has loaded.
    pub async fn wait_text(&self, css: &str, needle: &str) {
        for _ in 0..500 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if element.text().await.is_ok_and(|t| t.contains(needle)) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{css} never showed {needle:?}");
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.element(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.element(css).await.click().await.unwrap();
    }

    pub async fn sign_in(&self, app: &TestApp, email: &str) {
        self.client.goto(&app.url("/sign-in")).await.unwrap();
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", PASSWORD).await;
        self.click("#sign-in").await;
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[tokio::test]
async fn an_admin_signs_in_makes_a_key_sees_it_once_revokes_it_and_switches_language() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let browser = Browser::start().await;

    browser.client.goto(&app.url("/")).await.unwrap();
    assert!(browser
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/sign-in"));
    browser.screenshot("sign-in").await;
    browser.sign_in(&app, &admin.email).await;
    browser.wait_text("#seats", "Licences").await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/");
    assert!(browser.text("h1").await.contains("Acme"));
    assert!(browser.text("#seats").await.contains("Licences"));
    browser.screenshot("overview").await;

    // A key, shown once with its copy button (the script reveals it).
    browser.click("a[href='/api-keys']").await;
    browser.wait_text("h1", "Clés").await;
    browser.fill("input[name=name]", "ERP nightly").await;
    browser.click("input[value='users:write']").await;
    browser.click("#generate").await;
    let key = browser.text("#new-key-value").await;
    assert!(key.starts_with("ent_"), "{key}");
    let copy = browser.element("button[data-copy]").await;
    assert!(
        copy.is_displayed().await.unwrap(),
        "the script shows the copy button"
    );
    browser.screenshot("api-key-generated").await;
    browser.client.goto(&app.url("/api-keys")).await.unwrap();
    let source = browser.client.source().await.unwrap();
    assert!(!source.contains(&key), "the key is shown once");
    assert!(browser.text("#keys").await.contains("ERP nightly"));

    // Revoke, confirmed on a page of its own.
    browser.click("#keys a.button").await;
    browser.wait_text("h1", "Révoquer").await;
    browser.screenshot("api-key-revoke").await;
    browser.click("#confirm-revoke").await;
    browser.wait_text("#keys .state-revoked", "révoquée").await;
    let listed = app
        .get(
            "/api/enterprise/api-keys",
            &crate::support::Auth::Bearer(&admin.access_token),
        )
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["state"], "revoked");

    // English, and it stays so.
    browser.click("#switch-language").await;
    browser.wait_text("h1", "API keys").await;
    assert_eq!(
        browser
            .element("html")
            .await
            .attr("lang")
            .await
            .unwrap()
            .as_deref(),
        Some("en")
    );
    browser.client.goto(&app.url("/")).await.unwrap();
    browser.wait_text("h1", "Overview").await;
    browser.screenshot("overview-en").await;

    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_reads_a_failed_runs_errors_and_another_enterprise_cannot_open_it() {
    let app = TestApp::start().await;
    let acme = app.admin("Acme").await;
    let globex = app.admin("Globex").await;
    let (_, key) = app.key(&acme, &["users:write"]).await;
    let report: serde_json::Value = app
        .call(
            reqwest::Method::POST,
            "/api/enterprise/users/bulk-import",
            &crate::support::Auth::Key(&key),
            Some(json!({ "users": [
                { "email": "a@acme.example", "name": "Ann", "role": "seller", "store_id": "NOPE", "external_id": "E-1" },
                { "email": "b@acme.example", "name": "Bob", "role": "seller", "store_id": "NOPE", "external_id": "E-2" },
            ]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let run = report["sync_log_id"].as_str().unwrap().to_string();

    let browser = Browser::start().await;
    browser.sign_in(&app, &acme.email).await;
    browser.wait_text("#seats", "Licences").await;
    browser.click("a[href='/runs']").await;
    browser.wait_text("#runs", "en échec").await;
    browser.screenshot("runs").await;
    browser.click(&format!("a[href='/runs/{run}']")).await;
    browser.wait_text("#errors", "E-2").await;
    assert!(browser.text("#errors").await.contains("E-1"));
    assert!(browser.text("#run").await.contains("2 of 2 rows failed"));
    browser.screenshot("run-errors").await;
    browser.close().await;

    let browser = Browser::start().await;
    browser.sign_in(&app, &globex.email).await;
    browser.wait_text("#seats", "Licences").await;
    browser
        .client
        .goto(&app.url(&format!("/runs/{run}")))
        .await
        .unwrap();
    browser.wait_text("main", "n'existe pas").await;
    assert!(!browser.client.source().await.unwrap().contains("E-1"));
    browser.screenshot("run-other-enterprise").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_approves_a_held_full_export_after_seeing_who_it_deactivates() {
    use crate::dropdir::{active_count, setup, staff_csv, with_drop_dir};
    use enterprise_sync::config::CompletionPolicy;
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    std::fs::write(
        drop.incoming().join("users_full_1.csv"),
        staff_csv(0..20, None),
    )
    .unwrap();
    app.drop_dir().scan_now().await;
    // Five leavers of twenty: beyond the guard, held.
    std::fs::write(
        drop.incoming().join("users_full_2.csv"),
        staff_csv(0..15, None),
    )
    .unwrap();
    app.drop_dir().scan_now().await;
    assert_eq!(active_count(&app, &drop).await, 20);

    let browser = Browser::start().await;
    browser.sign_in(&app, &drop.admin.email).await;
    browser.wait_text("#held-files", "1").await;
    browser.click("a[href='/files']").await;
    browser
        .wait_text("#files", "en attente d'approbation")
        .await;
    browser.screenshot("files").await;
    browser.click("#files tr:first-child a").await;
    browser.wait_text("h1", "users_full_2").await;
    browser.wait_text("#would-deactivate", "5").await;
    browser.screenshot("file-held").await;
    browser.click("#approve").await;
    // The page follows the run (refreshing by itself) until the file is applied.
    browser.wait_text("#file", "appliqué").await;
    browser.screenshot("file-approved").await;
    assert_eq!(active_count(&app, &drop).await, 15);
    assert!(app
        .audit_actions()
        .contains(&("drop_file.approve".into(), "success".into())));
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn every_page_renders_in_chromium_with_its_screenshot() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let store = app.seed_store(&admin.enterprise_id, "Lyon").await;
    app.seed_user(
        &admin.enterprise_id,
        "seller@acme.example",
        enterprise_sync::domain::Role::Seller,
        Some(&store),
    )
    .await;
    let browser = Browser::start().await;
    browser.sign_in(&app, &admin.email).await;
    browser.wait_text("#seats", "Licences").await;
    for (path, name, heading) in [
        ("/", "page-overview", "Vue d'ensemble"),
        ("/runs", "page-runs", "Synchronisations"),
        ("/files", "page-files", "Fichiers"),
        ("/api-keys", "page-api-keys", "Clés d'API"),
        ("/scim", "page-scim", "SCIM"),
        ("/webhooks", "page-webhooks", "Webhooks et alertes"),
        ("/users", "page-users", "Collaborateurs"),
        ("/stores", "page-stores", "Magasins"),
        ("/audit", "page-audit", "Journal d'audit"),
    ] {
        browser.client.goto(&app.url(path)).await.unwrap();
        browser.wait_text("h1", heading).await;
        let source = browser.client.source().await.unwrap();
        for needle in ["None", "value=\"none\"", ">none<"] {
            if let Some(at) = source.find(needle) {
                panic!(
                    "{path} shows an empty value as none: {}",
                    &source[at.saturating_sub(200)..at + 20]
                );
            }
        }
        browser.screenshot(name).await;
    }
    browser.click("#switch-language").await;
    browser.wait_text("h1", "Audit trail").await;
    browser.screenshot("page-audit-en").await;
    browser.close().await;

    // A seller sees their profile only.
    let browser = Browser::start().await;
    browser.sign_in(&app, "seller@acme.example").await;
    browser.wait_text("h1", "Mon profil").await;
    browser.screenshot("page-profile").await;
    browser.client.goto(&app.url("/runs")).await.unwrap();
    browser
        .wait_text("main", "réservée aux administrateurs")
        .await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_file_uploaded_through_the_page_is_imported_with_its_progress_shown() {
    use crate::dropdir::{active_count, setup, staff_csv, with_drop_dir};
    use enterprise_sync::config::CompletionPolicy;
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    let dir = tempfile::tempdir().unwrap();
    // Its name says nothing of its kind: the page's choice names it.
    let path = dir.path().join("export nuit.csv");
    std::fs::write(&path, staff_csv(0..7, None)).unwrap();

    let browser = Browser::start().await;
    browser.sign_in(&app, &drop.admin.email).await;
    browser.wait_text("#seats", "Licences").await;
    browser.client.goto(&app.url("/files")).await.unwrap();
    browser.wait_text("h1", "Fichiers").await;
    browser
        .element("input[type=file]")
        .await
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    browser.click("#upload").await;
    browser
        .wait_text("#uploaded", "users_export_nuit.csv")
        .await;
    browser.screenshot("file-uploaded").await;
    // The drop directory picks it up; the page refreshes itself until it is done.
    app.drop_dir().scan_now().await;
    browser.wait_text("#files", "appliqué").await;
    browser.screenshot("file-upload-applied").await;
    assert_eq!(active_count(&app, &drop).await, 7);
    assert!(app
        .audit_actions()
        .contains(&("drop_file.upload".into(), "success".into())));
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn an_admin_tries_a_mapping_profile_on_a_sample_then_saves_it() {
    use crate::dropdir::{setup, with_drop_dir};
    use enterprise_sync::config::CompletionPolicy;
    let app = TestApp::start_with(with_drop_dir(CompletionPolicy::Rename)).await;
    let drop = setup(&app, "Acme").await;
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("hr.csv");
    std::fs::write(
        &sample,
        "PERNR;NOM;MAIL;MAG\n0042;Zoé Martin;zoe@acme.example;S1\n0043;Paul;not-an-email;S1\n",
    )
    .unwrap();
    let profile = json!({
        "delimiter": ";",
        "users": { "columns": {
            "external_id": {"column": "PERNR", "strip_leading_zeros": true},
            "name": "NOM", "email": "MAIL", "store_id": "MAG"
        }}
    });

    let browser = Browser::start().await;
    browser.sign_in(&app, &drop.admin.email).await;
    browser.wait_text("#seats", "Licences").await;
    browser
        .client
        .goto(&app.url("/files/profile"))
        .await
        .unwrap();
    browser.wait_text("h1", "Profil").await;
    browser.fill("#profile", &profile.to_string()).await;
    browser
        .element("input[type=file]")
        .await
        .send_keys(&sample.display().to_string())
        .await
        .unwrap();
    browser.click("#preview").await;
    browser.wait_text("#preview-facts", "2 lignes").await;
    assert!(browser.text("#preview-rows").await.contains("Zoé Martin"));
    assert!(browser.text("#preview-rows").await.contains("42"));
    let errors = browser.text("#preview-errors").await;
    assert!(
        errors.contains("not-an-email") || errors.contains("email"),
        "{errors}"
    );
    browser.screenshot("profile-preview").await;
    // Nothing was imported by the preview; saving stores the profile.
    let users: serde_json::Value = app
        .get(
            "/api/enterprise/users",
            &crate::support::Auth::Key(&drop.key),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["data"], json!([]));
    browser.click("#save-profile").await;
    browser.wait_text("main", "Enregistré").await;
    let config: serde_json::Value = app
        .get(
            "/api/enterprise/drop-config",
            &crate::support::Auth::Bearer(&drop.admin.access_token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(config["profile"]["delimiter"], ";");
    assert_eq!(config["source"], "api");
    // A profile that is not JSON is refused with the reason, nothing saved.
    browser.fill("#profile", "{ not json").await;
    browser.click("#save-profile").await;
    browser.wait_text("#profile-problem", "JSON").await;
    browser.close().await;
    app.stop().await;
}

#[tokio::test]
async fn pages_fit_a_tablet_without_sideways_scrolling() {
    let app = TestApp::start().await;
    let admin = app.admin("Acme").await;
    let store = app.seed_store(&admin.enterprise_id, "Lyon Part-Dieu").await;
    app.seed_user(
        &admin.enterprise_id,
        "a.very.long.address.for.a.seller@acme.example",
        enterprise_sync::domain::Role::Seller,
        Some(&store),
    )
    .await;
    let browser = Browser::start_sized(820, 1180).await;
    browser.sign_in(&app, &admin.email).await;
    browser.wait_text("#seats", "Licences").await;
    for (path, heading) in [
        ("/", "Vue d'ensemble"),
        ("/users", "Collaborateurs"),
        ("/api-keys", "Clés d'API"),
        ("/webhooks", "Webhooks"),
    ] {
        browser.client.goto(&app.url(path)).await.unwrap();
        browser.wait_text("h1", heading).await;
        let overflow = browser
            .client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{path} scrolls sideways by {overflow}px on a tablet"
        );
        browser
            .screenshot(&format!("tablet{}", path.replace('/', "-")))
            .await;
    }
    browser.close().await;
    app.stop().await;
}
