//! The real binary, run as a child process: start-up, probes, shutdown, CLI.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::PASSWORD;

const BIN: &str = env!("CARGO_BIN_EXE_enterprise-sync");

struct Process {
    child: Child,
    log: PathBuf,
    addr: String,
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .env("ENTERPRISE_SYNC_LOG_FORMAT", "json");
    command
}

/// Starts `serve` on a free port and waits for its "listening" line. The child
/// is handed to the caller, whose `terminate` waits for it.
fn spawn(data_dir: &Path, rust_log: &str) -> Process {
    spawn_with(data_dir, rust_log, &[])
}

#[allow(clippy::zombie_processes)]
fn spawn_with(data_dir: &Path, rust_log: &str, env: &[(&str, &str)]) -> Process {
    let log = data_dir.with_extension("log");
    let file = std::fs::File::create(&log).unwrap();
    let mut command = command(data_dir);
    // An empty filter leaves the choice to the configuration's log_level.
    if !rust_log.is_empty() {
        command.env("RUST_LOG", rust_log);
    }
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == "listening")
            .and_then(|l| l["addr"].as_str().map(str::to_string))
        {
            return Process { child, log, addr };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start: {text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// HTTP to a child-process server, with the walk every test starts with.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(process: &Process) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("http://{}", process.addr),
        }
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Asks to register `company` (lower case) with `admin@<company>.example`.
    async fn try_register(&self, company: &str, admin: &str) -> reqwest::Response {
        self.post(
            "/api/enterprise/register",
            json!({
                "company_name": company, "company_email": format!("it@{company}.example"), "sync_mode": "api",
                "it_admin_name": admin, "it_admin_email": format!("{}@{company}.example", admin.to_lowercase()),
                "it_admin_password": PASSWORD,
            }),
            None,
        )
        .await
    }

    /// Registers acme with alice@acme.example; returns the enterprise id.
    async fn register(&self) -> String {
        let response = self.try_register("acme", "Alice").await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["enterprise_account_id"].as_str().unwrap().to_string()
    }

    async fn login(&self, password: &str) -> reqwest::Response {
        self.post(
            "/api/auth/login",
            json!({ "email": "alice@acme.example", "password": password }),
            None,
        )
        .await
    }

    async fn key(&self, access_token: &str) -> String {
        self.generate_key(access_token, &["users:read"]).await
    }

    /// Generates an API key with `scopes` with the session `access_token`.
    async fn generate_key(&self, access_token: &str, scopes: &[&str]) -> String {
        let body: Value = self
            .post(
                "/api/enterprise/api-keys/generate",
                json!({ "name": "ERP", "scopes": scopes }),
                Some(access_token),
            )
            .await
            .json()
            .await
            .unwrap();
        body["key"].as_str().unwrap().to_string()
    }

    /// Registers acme (alice@acme.example) with room for 100,000 people;
    /// returns the enterprise id.
    async fn register_with_room(&self, sync_mode: &str) -> String {
        let response = self
            .post(
                "/api/enterprise/register",
                json!({
                    "company_name": "Acme", "company_email": "it@acme.example", "sync_mode": sync_mode,
                    "it_admin_name": "Alice", "it_admin_email": "alice@acme.example",
                    "it_admin_password": PASSWORD, "seats_purchased": 100000,
                }),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["enterprise_account_id"].as_str().unwrap().to_string()
    }

    /// Signs alice in and generates an API key with `scopes`.
    async fn key_with_scopes(&self, scopes: &[&str]) -> String {
        let login: Value = self.login(PASSWORD).await.json().await.unwrap();
        self.generate_key(login["access_token"].as_str().unwrap(), scopes)
            .await
    }

    async fn list_users(&self, key: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/enterprise/users", self.base))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
    }
}

fn terminate(mut process: Process) -> String {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(process.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = process.child.wait().unwrap();
    assert!(exit.success(), "clean exit after SIGTERM, got {exit:?}");
    let mut text = String::new();
    std::fs::File::open(&process.log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn read_all(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_database_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "debug,tower_http=trace,hyper=info");
    let api = Api::new(&process);
    let enterprise = api.register().await;
    let wrong = api.login("my other secret phrase").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let login: Value = api.login(PASSWORD).await.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    let key = api.key(token).await;
    let used = api.list_users(&key).await;
    assert_eq!(used.status(), StatusCode::OK);
    let request_id = used.headers()["x-request-id"].to_str().unwrap().to_string();
    let log = terminate(process);

    // One JSON line per request, naming who called and how it went.
    let requests: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 5, "{log}");
    let listed = requests
        .iter()
        .find(|l| l["request_id"] == request_id.as_str())
        .expect("the listing's line");
    assert_eq!(listed["route"], "/api/enterprise/users");
    assert_eq!(listed["method"], "GET");
    assert_eq!(listed["status"], 200);
    assert_eq!(listed["principal"], "api_key");
    assert_eq!(listed["enterprise_id"], enterprise.as_str());
    assert!(listed["latency_ms"].as_f64().unwrap() > 0.0);
    let refused = requests
        .iter()
        .find(|l| l["status"] == 401)
        .expect("the failed login's line");
    assert_eq!(refused["route"], "/api/auth/login");
    assert_eq!(refused["principal"], "anonymous");
    let generated = requests
        .iter()
        .find(|l| l["route"] == "/api/enterprise/api-keys/generate")
        .expect("the key generation's line");
    assert_eq!(generated["principal"], "user");

    let mut stored = read_all(&data);
    stored.extend(log.as_bytes());
    for secret in [
        PASSWORD,
        "my other secret phrase",
        key.as_str(),
        &key[12..44],
        token,
        refresh.as_str(),
    ] {
        assert!(
            !contains(&stored, secret),
            "a secret was found in the database files or logs"
        );
    }
    // The key was used and its usage flushed at shutdown.
    let conn = rusqlite::Connection::open(data.join("enterprise-sync.db")).unwrap();
    let count: i64 = conn
        .query_row("SELECT request_count FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    // Closed cleanly: the WAL was checkpointed and truncated.
    let wal = data.join("enterprise-sync.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    assert!(log.contains("stopped; database closed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_follows_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let probe = |addr: &str| {
        command(&data)
            .args(["healthcheck", "--listen", addr])
            .output()
            .unwrap()
    };
    assert!(probe(&process.addr).status.success());
    let addr = process.addr.clone();
    terminate(process);
    let after = probe(&addr);
    assert!(!after.status.success());
}

#[test]
fn the_data_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = command(&data).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(data.join("enterprise-sync.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn migrate_is_idempotent_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for _ in 0..2 {
        let out = command(&data).arg("migrate").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let latest = enterprise_sync::store::migrations::latest_known_version();
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("schema version {latest}")));
    }
    let conn = rusqlite::Connection::open(data.join("enterprise-sync.db")).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (99, 'future', '2030-01-01', '0')",
        [],
    )
    .unwrap();
    drop(conn);
    let out = command(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("newer than this binary"), "{stderr}");
}

#[test]
fn the_shipped_example_configuration_checks_out() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/config.example.toml");
    let out = command(&dir.path().join("data"))
        .arg("--config")
        .arg(&example)
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    let typo = command(&dir.path().join("data"))
        .env("ENTERPRISE_SYNC_RATE_LIMIT__PER_KEY_PER_MINITE", "5")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&typo.stdout)
        .contains("PER_KEY_PER_MINITE is not a configuration variable"));

    let env = command(&dir.path().join("data"))
        .env("ENTERPRISE_SYNC_RATE_LIMIT__PER_KEY_PER_MINUTE", "0")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(
        !env.status.success(),
        "environment variables are applied and validated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_sets_an_enterprise_rate_limit_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let api = Api::new(&process);
    let enterprise = api.register().await;
    let set = command(&data)
        .args([
            "set-rate-limit",
            "--enterprise",
            &enterprise,
            "--per-key",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );

    let login: Value = api.login(PASSWORD).await.json().await.unwrap();
    let key = api.key(login["access_token"].as_str().unwrap()).await;
    let get = || api.list_users(&key);
    assert_eq!(
        get().await.headers()["ratelimit-policy"],
        "\"per-key\";q=2;w=60"
    );
    assert_eq!(get().await.status(), StatusCode::OK);
    assert_eq!(get().await.status(), StatusCode::TOO_MANY_REQUESTS);

    let bad = command(&data)
        .args([
            "set-rate-limit",
            "--enterprise",
            &enterprise,
            "--per-key",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    // The SCIM bucket is the operator's too; the per-key limit stays.
    let scim = command(&data)
        .args([
            "set-rate-limit",
            "--enterprise",
            &enterprise,
            "--scim",
            "3000",
        ])
        .output()
        .unwrap();
    assert!(scim.status.success(), "{scim:?}");
    let log = terminate(process);
    assert!(!log.is_empty());
    let conn = rusqlite::Connection::open(data.join("enterprise-sync.db")).unwrap();
    let audited: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'enterprise.rate_limits.update'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 2);
    let limits: (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT rate_limit_per_key_per_minute, rate_limit_scim_per_minute FROM enterprise_accounts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(limits, (Some(2), Some(3000)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_body_file_imports_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let enterprise = Api::new(&process).register().await;
    let file = dir.path().join("stores.json");
    std::fs::write(
        &file,
        json!({ "stores": [{ "name": "Paris", "external_id": "S1" }, { "name": "Lyon", "external_id": "S2" }] }).to_string(),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        command(&data)
            .arg("import")
            .arg(&file)
            .args(["--enterprise", &enterprise])
            .args(extra)
            .output()
            .unwrap()
    };
    let dry = run(&["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["created"], 2);
    let conn = rusqlite::Connection::open(data.join("enterprise-sync.db")).unwrap();
    let count = || -> i64 {
        conn.query_row("SELECT COUNT(*) FROM stores", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(), 0);
    let real = run(&[]);
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert_eq!(count(), 2);
    let (sync_type, initiated_by, sync_mode): (String, String, String) = conn
        .query_row(
            "SELECT l.sync_type, l.initiated_by, s.sync_mode FROM sync_logs l, stores s WHERE l.run_id IS NULL LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (
            sync_type.as_str(),
            initiated_by.as_str(),
            sync_mode.as_str()
        ),
        ("file", "file:stores.json", "file_sync")
    );
    let failing = run(&["--mode", "create_only"]);
    assert!(
        !failing.status.success(),
        "rows that fail give a non-zero exit"
    );
    let report: Value = serde_json::from_slice(&failing.stdout).unwrap();
    assert_eq!(report["failed"], 2);

    // A Windows-1252 CSV with semicolons reads as the drop directory reads it.
    let (csv, _, _) =
        encoding_rs::WINDOWS_1252.encode("external_id;name;location\r\nS3;Besançon;Doubs\r\n");
    let export = dir.path().join("export-2026.csv");
    std::fs::write(&export, &*csv).unwrap();
    let output = command(&data)
        .arg("import")
        .arg(&export)
        .args(["--kind", "stores", "--enterprise", &enterprise])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name: String = conn
        .query_row(
            "SELECT name FROM stores WHERE external_id = 'S3'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Besançon");
    let unnamed = command(&data)
        .arg("import")
        .arg(&export)
        .args(["--enterprise", &enterprise])
        .output()
        .unwrap();
    assert!(
        !unnamed.status.success(),
        "no kind in the name and no --kind"
    );

    // The enterprise's drop profile applies: the ERP's own column names.
    conn.execute(
        "INSERT INTO drop_profiles (enterprise_account_id, profile, updated_by, updated_at)
         VALUES (?1, ?2, 'test', '2026-11-27T00:00:00.000Z')",
        rusqlite::params![
            enterprise,
            json!({"stores": {"columns": {"external_id": {"column": "Code", "pad_leading_zeros_to": 4}, "name": "Libellé"}}}).to_string()
        ],
    )
    .unwrap();
    let mapped = dir.path().join("stores_sap.csv");
    std::fs::write(&mapped, "Code;Libellé\n7;Dijon\n").unwrap();
    let output = command(&data)
        .arg("import")
        .arg(&mapped)
        .args(["--enterprise", &enterprise])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name: String = conn
        .query_row(
            "SELECT name FROM stores WHERE external_id = '0007'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(name, "Dijon");
    terminate(process);
}

/// The operator's `import` reads a file the drop directory's way: a large
/// users file streams past the row limit of a request read whole.
#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_streams_a_large_users_file_as_the_drop_directory_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let enterprise = Api::new(&process).register().await;
    let stores = dir.path().join("stores.csv");
    std::fs::write(&stores, "external_id,name\nS1,Paris\n").unwrap();
    let made = command(&data)
        .arg("import")
        .arg(&stores)
        .args(["--enterprise", &enterprise])
        .output()
        .unwrap();
    assert!(made.status.success());
    let mut csv = String::from("external_id,email,name,role,store_id\n");
    for n in 0..150 {
        csv.push_str(&format!(
            "E{n},person{n}@acme.example,Person {n},seller,S1\n"
        ));
    }
    let file = dir.path().join("users_hr.csv");
    std::fs::write(&file, csv).unwrap();
    let run = |extra: &[&str]| {
        command(&data)
            .env("ENTERPRISE_SYNC_IMPORTS__MAX_ROWS", "100")
            .env("ENTERPRISE_SYNC_DROPDIR__STREAM_FROM_BYTES", "1024")
            .arg("import")
            .arg(&file)
            .args(["--enterprise", &enterprise])
            .args(extra)
            .output()
            .unwrap()
    };
    let conn = rusqlite::Connection::open(data.join("enterprise-sync.db")).unwrap();
    let sellers = || -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM users WHERE role = 'seller'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    // A dry run streams too: the whole plan, nothing written.
    let dry = run(&["--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        (report["created"].clone(), report["dry_run"].clone()),
        (json!(150), json!(true))
    );
    assert_eq!(sellers(), 0);
    let user_runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sync_logs WHERE resource_type = 'user'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(user_runs, 0, "a dry run records no run");

    let real = run(&[]);
    assert!(
        real.status.success(),
        "{}",
        String::from_utf8_lossy(&real.stderr)
    );
    let report: Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(report["created"], 150, "{report}");
    let (people, details): (i64, String) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM users WHERE role = 'seller'), details FROM sync_logs
              WHERE operation = 'file_import' AND run_id IS NULL ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(people, 150);
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["streamed"], true, "{details}");
    assert_eq!(details["file"], "users_hr.csv");
    terminate(process);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_interrupted_by_kill_9_is_applied_exactly_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Streamed into the staged import (a TEMP table in a temp file): the
    // path large files take, and the one with the most to leave behind.
    let env = [
        ("ENTERPRISE_SYNC_DROPDIR__COMPLETION", "rename"),
        ("ENTERPRISE_SYNC_DROPDIR__STREAM_FROM_BYTES", "0"),
    ];
    let process = spawn_with(&data, "info", &env);
    let api = Api::new(&process);
    let enterprise = api.register_with_room("file").await;
    let key = api.key_with_scopes(&["stores:write", "sync:read"]).await;
    let stores = api
        .http
        .post(format!("{}/api/enterprise/stores/bulk-import", api.base))
        .header("x-api-key", &key)
        .json(&json!({ "stores": [{ "name": "Paris", "external_id": "S1" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(stores.status(), StatusCode::OK);

    // Big enough that the import takes a while; staged beside, then renamed in.
    let rows = 40_000;
    let mut csv = String::from("external_id,email,name,role,store_id\n");
    for i in 0..rows {
        csv.push_str(&format!("E{i},u{i}@acme.example,User {i},seller,S1\n"));
    }
    let staged = dir.path().join("users.csv");
    std::fs::write(&staged, csv).unwrap();
    let incoming = data.join("drop").join(&enterprise).join("incoming");
    let processing = data.join("drop-work").join(&enterprise).join("processing");
    std::fs::rename(&staged, incoming.join("users.csv")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&processing).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "the file was never claimed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut child = process.child;
    child.kill().unwrap(); // SIGKILL, mid-import
    child.wait().unwrap();
    // Killed before the import's transaction committed: nothing of it is stored,
    // and the file waits in processing/.
    let staff: i64 = rusqlite::Connection::open(data.join("enterprise-sync.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM users WHERE role <> 'it_admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(staff, 0);
    assert!(std::fs::read_dir(&processing).unwrap().next().is_some());

    let process = spawn_with(&data, "info", &env);
    let api = Api::new(&process);
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let files: Value = api
            .http
            .get(format!("{}/api/enterprise/files", api.base))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let data = files["data"].as_array().unwrap().clone();
        // The row is finished first, then the file leaves processing/.
        let moved = std::fs::read_dir(&processing).unwrap().next().is_none();
        if data.iter().all(|f| f["state"] != "processing") && !data.is_empty() && moved {
            break data;
        }
        assert!(
            Instant::now() < deadline,
            "not applied and moved after the restart: {files}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "applied");
    let status: Value = api
        .http
        .get(format!("{}/api/enterprise/sync-status", api.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["total_users"], rows, "every row, once");
    let runs: Value = api
        .http
        .get(format!(
            "{}/api/enterprise/sync-logs?operation=file_import",
            api.base
        ))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs["data"].as_array().unwrap().len(), 1, "one run: {runs}");
    terminate(process);

    // Now a crash just after the import committed, before the file moved on
    // and its report was written: the file back in processing/, no report.
    let results = data.join("drop").join(&enterprise).join("results");
    for entry in std::fs::read_dir(&results).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let mut archived = Vec::new();
    let mut folders = vec![data.join("drop-work").join(&enterprise).join("archive")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                archived.push(path);
            }
        }
    }
    assert_eq!(archived.len(), 1, "{archived:?}");
    std::fs::rename(
        &archived[0],
        processing.join(archived[0].file_name().unwrap()),
    )
    .unwrap();
    let process = spawn_with(&data, "info", &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let written = std::fs::read_dir(&results)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".result.json"));
        if let Some(written) = written {
            break std::fs::read_to_string(written.path()).unwrap();
        }
        assert!(Instant::now() < deadline, "no report after the restart");
        std::thread::sleep(Duration::from_millis(20));
    };
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["state"], "applied", "{report}");
    assert_eq!(report["created"], rows, "{report}");
    assert_eq!(report["kind"], "users", "{report}");
    let log = terminate(process);
    assert!(std::fs::read_dir(&processing).unwrap().next().is_none());
    assert!(
        log.contains("result report written after a restart"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_during_imports_is_consistent_and_restores() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let api = Api::new(&process);
    api.register().await;
    let key = api.key_with_scopes(&["stores:write"]).await;

    // Imports of 100 stores each keep committing while the backup runs.
    let (http, base) = (api.http.clone(), api.base.clone());
    let importing = tokio::spawn(async move {
        for batch in 0..40 {
            let stores: Vec<Value> = (0..100)
                .map(|i| json!({ "name": format!("Store {batch}-{i}"), "external_id": format!("S{batch}-{i}") }))
                .collect();
            let response = http
                .post(format!("{base}/api/enterprise/stores/bulk-import"))
                .header("x-api-key", &key)
                .json(&json!({ "stores": stores }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let backup = dir.path().join("backup.db");
    let (backup_path, data_dir) = (backup.clone(), data.clone());
    let output = tokio::task::spawn_blocking(move || {
        command(&data_dir)
            .arg("backup")
            .arg(&backup_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stores = summary["stores"].as_i64().unwrap();
    assert_eq!(
        stores % 100,
        0,
        "whole imports only, never half of one: {summary}"
    );
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    importing.await.unwrap();
    let again = command(&data).arg("backup").arg(&backup).output().unwrap();
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );

    let restore = |extra: &[&str]| {
        command(&data)
            .arg("restore")
            .arg(&backup)
            .args(extra)
            .output()
            .unwrap()
    };
    let while_running = restore(&["--replace-database"]);
    assert!(!while_running.status.success());
    assert!(
        String::from_utf8_lossy(&while_running.stderr).contains("another enterprise-sync service")
    );
    terminate(process);
    let unconfirmed = restore(&[]);
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--replace-database"));
    let restored = restore(&["--replace-database"]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    let process = spawn(&data, "info");
    let count: i64 = rusqlite::Connection::open(data.join("enterprise-sync.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM stores", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, stores, "the restored database is the backup's");
    assert!(
        std::fs::read_dir(&data).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("before-restore")),
        "the replaced database is kept"
    );
    terminate(process);
}

/// Waits (by reading the log as it grows, not by sleeping a set time) for a
/// log line with this message after the first `skip` such lines.
fn wait_for_message(process: &Process, message: &str, skip: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&process.log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"] == message)
            .nth(skip)
        {
            return line;
        }
        assert!(Instant::now() < deadline, "no {message:?} in {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hang_up(process: &Process) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(process.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_what_can_change_and_names_what_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("config.toml");
    // Quiet but for the start-up line the test waits for.
    std::fs::write(
        &file,
        "allow_registration = true\nlog_level = \"warn,enterprise_sync::server=info\"\n",
    )
    .unwrap();
    let process = spawn_with(
        &data,
        "",
        &[("ENTERPRISE_SYNC_CONFIG", file.to_str().unwrap())],
    );
    let api = Api::new(&process);
    api.register().await;

    std::fs::write(
        &file,
        "allow_registration = false\nlog_level = \"info\"\n[rate_limit]\nper_key_per_minute = 7\n[backup]\nkeep = 3\n",
    )
    .unwrap();
    hang_up(&process);
    let reloaded = wait_for_message(&process, "configuration reloaded", 0);
    assert_eq!(
        reloaded["applied"],
        "[\"allow_registration\", \"log_level\", \"rate_limit.per_key_per_minute\"]"
    );
    assert_eq!(reloaded["need_restart"], "[\"backup.keep\"]");
    let closed = api.try_register("other", "Bob").await;
    assert_eq!(closed.status(), StatusCode::FORBIDDEN);
    // The request lines (info) appear from the reload on, not before.
    let refused = wait_for_message(&process, "request", 0);
    assert_eq!(refused["route"], "/api/enterprise/register");
    assert_eq!(refused["status"], 403);

    // A file that no longer loads changes nothing; the service carries on.
    std::fs::write(&file, "allow_registration = \"maybe\"\n").unwrap();
    hang_up(&process);
    wait_for_message(
        &process,
        "configuration not reloaded: the file does not load; nothing changed",
        0,
    );
    assert_eq!(api.login(PASSWORD).await.status(), StatusCode::OK);
    let log = terminate(process);
    assert!(log.contains("these changed keys take effect at the next restart"));
}

#[tokio::test]
async fn send_test_email_says_whether_the_smtp_server_took_it() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = crate::smtp::SmtpServer::start().await;
    let run = |port: u16| {
        command(&dir.path().join("data"))
            .args(["send-test-email", "ops@acme.example"])
            .env("ENTERPRISE_SYNC_EMAIL__SMTP_HOST", "127.0.0.1")
            .env("ENTERPRISE_SYNC_EMAIL__SMTP_PORT", port.to_string())
            .env("ENTERPRISE_SYNC_EMAIL__SMTP_SECURITY", "none")
            .env("ENTERPRISE_SYNC_EMAIL__FROM", "IT <it@acme.example>")
            .output()
            .unwrap()
    };
    let sent = run(smtp.port);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(String::from_utf8_lossy(&sent.stdout).contains("accepted by the SMTP server"));
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].header("To"), "ops@acme.example");
    assert!(mails[0].text().contains("email delivery works"));

    let nobody = crate::smtp::free_port();
    let refused = run(nobody);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains(&format!("127.0.0.1:{nobody}")), "{error}");

    let off = command(&dir.path().join("data"))
        .args(["send-test-email", "ops@acme.example"])
        .output()
        .unwrap();
    assert!(!off.status.success());
    assert!(String::from_utf8_lossy(&off.stderr).contains("email.smtp_host"));
}

#[tokio::test]
async fn starttls_checks_the_server_certificate_against_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = crate::smtp::certificates(dir.path());
    let smtp = crate::smtp::SmtpServer::start_tls(certificate, key).await;
    let send = |ca: Option<&Path>| {
        let mut command = command(&dir.path().join("data"));
        command
            .args(["send-test-email", "ops@acme.example"])
            .env("ENTERPRISE_SYNC_EMAIL__SMTP_HOST", "127.0.0.1")
            .env("ENTERPRISE_SYNC_EMAIL__SMTP_PORT", smtp.port.to_string())
            .env("ENTERPRISE_SYNC_EMAIL__SMTP_SECURITY", "starttls");
        if let Some(ca) = ca {
            command.env("ENTERPRISE_SYNC_EMAIL__SMTP_CA_FILE", ca);
        }
        command.output().unwrap()
    };
    // The server's certificate comes from a CA the system does not know.
    let untrusted = send(None);
    assert!(!untrusted.status.success());
    let error = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(error.contains("certificate"), "{error}");
    assert!(smtp.messages().is_empty());
    let trusted = send(Some(&ca));
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    smtp.wait_for(1).await;
}

/// Clock ticks of CPU (user + system) the process has used.
fn cpu_ticks(process: &Process) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", process.child.id())).unwrap();
    // The command name is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_idle_service_with_twenty_enterprises_stays_idle() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn_with(
        &data,
        "info",
        &[
            (
                "ENTERPRISE_SYNC_RATE_LIMIT__REGISTER_PER_IP_PER_HOUR",
                "1000",
            ),
            // The operator's switch, as the environment spells it.
            ("ENTERPRISE_SYNC_ALLOW_REGISTRATION", "true"),
        ],
    );
    let api = Api::new(&process);
    for n in 0..20 {
        let response = api
            .post(
                "/api/enterprise/register",
                json!({
                    "company_name": format!("Shop {n}"), "company_email": format!("it@shop{n}.example"),
                    "sync_mode": "file", "it_admin_name": "Alice",
                    "it_admin_email": format!("alice@shop{n}.example"),
                    "it_admin_password": PASSWORD, "seats_purchased": 10,
                }),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // A fresh connection per scrape: a pooled one idle for the whole window
    // is closed by the server's keep-alive timeout as it is reused.
    let scrape = || async {
        reqwest::Client::new()
            .get(format!("{}/metrics", api.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    let ticks_before = cpu_ticks(&process);
    // Watching an idle service is the test: nothing happens, and nothing must.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = scrape().await;
    let ticks = cpu_ticks(&process) - ticks_before;
    let scans = metric(&after, "enterprise_sync_dropdir_scans_total")
        - metric(&before, "enterprise_sync_dropdir_scans_total");
    let woken = metric(
        &after,
        "enterprise_sync_dropdir_fs_events_total{effect=\"wake\"}",
    ) - metric(
        &before,
        "enterprise_sync_dropdir_fs_events_total{effect=\"wake\"}",
    );
    let log = terminate(process);
    // The registrations' own wake-up may land in the window; a loop would be thousands.
    assert!(scans <= 3.0, "{scans} scans in 10 idle seconds\n{after}");
    assert_eq!(woken, 0.0, "file-system events woke the scanner\n{after}");
    // 10 s at 100 ticks/s: 1,000 ticks would be a full core; allow 2 %.
    assert!(
        ticks <= 20,
        "{ticks} clock ticks of CPU in 10 idle seconds\n{log}"
    );
    // Its own scrapes listed incoming/: seen, and ignored.
    assert!(
        metric(&after, "enterprise_sync_dropdir_scans_total") >= 1.0,
        "{after}"
    );
}

#[tokio::test]
async fn the_operator_issues_a_registration_token_once_registration_closes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The default: open for the first enterprise only.
    let process = spawn(&data, "info");
    let api = Api::new(&process);
    assert_eq!(
        api.try_register("acme", "Alice").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        api.try_register("beta", "Bob").await.status(),
        StatusCode::FORBIDDEN
    );
    let output = command(&data)
        .args(["registration-token", "--valid-hours", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("reg_"), "{token}");
    let response = api
        .http
        .post(format!("{}/api/enterprise/register", api.base))
        .header("x-registration-token", &token)
        .json(&json!({
            "company_name": "Beta", "company_email": "it@beta.example", "sync_mode": "api",
            "it_admin_name": "Bob", "it_admin_email": "bob@beta.example",
            "it_admin_password": PASSWORD, "seats_purchased": 10,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    terminate(process);
    // The database keeps only the token's hash.
    assert!(!contains(&read_all(&data), &token));
}

#[tokio::test]
async fn a_drop_folder_that_cannot_be_made_is_logged_once_not_at_every_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("ENTERPRISE_SYNC_DROPDIR__SCAN_INTERVAL_SECS", "1")];
    let process = spawn_with(&data, "info", &env);
    let enterprise = Api::new(&process).register().await;
    terminate(process);
    let folder = data.join("drop").join(&enterprise);
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, "in the way").unwrap();
    let process = spawn_with(&data, "info", &env);
    // Scans every second: a few of them meet the same problem.
    std::thread::sleep(Duration::from_millis(3500));
    let log = terminate(process);
    let warnings = log
        .lines()
        .filter(|line| line.contains("creating the enterprise's drop folders failed"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[tokio::test]
async fn the_operator_sets_seats_and_lists_the_enterprises() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let api = Api::new(&process);
    let enterprise = api.register().await;
    let output = command(&data)
        .args(["set-seats", "--enterprise", &enterprise, "7"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // The running service reads the new count at once.
    let login: Value = api.login(PASSWORD).await.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap();
    let status: Value = api
        .http
        .get(format!("{}/api/enterprise/sync-status", api.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["seats_purchased"], 7, "{status}");
    let listed = command(&data)
        .args(["enterprises", "--json"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let line: Value = serde_json::from_str(
        String::from_utf8(listed.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["id"], enterprise);
    assert_eq!(line["seats_purchased"], 7);
    assert_eq!(line["company_name"], "acme");
    let refused = command(&data)
        .args(["set-seats", "--enterprise", &enterprise, "-3"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    terminate(process);
}

#[tokio::test]
async fn the_operator_creates_an_enterprise_whose_admin_is_invited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn(&data, "info");
    let api = Api::new(&process);
    api.register().await;
    // Registration is closed now (the default); the operator creates one anyway.
    let output = command(&data)
        .args([
            "create-enterprise",
            "--company-name",
            "Beta Retail",
            "--company-email",
            "it@beta.example",
            "--admin-name",
            "Bob Martin",
            "--admin-email",
            "bob@beta.example",
            "--seats",
            "50",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    let link = printed
        .lines()
        .find_map(|line| {
            line.split("invitation link (send it to the admin): ")
                .nth(1)
        })
        .unwrap_or_else(|| panic!("{printed}"));
    let token = link.split("token=").nth(1).unwrap();
    // The admin cannot sign in before setting a password through the link.
    let refused = api
        .post(
            "/api/auth/login",
            json!({ "email": "bob@beta.example", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let accepted = api
        .post(
            "/api/auth/accept-invitation",
            json!({ "token": token, "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let login = api
        .post(
            "/api/auth/login",
            json!({ "email": "bob@beta.example", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["user"]["role"], "it_admin");

    // Bob forgets his password: the operator prints a reset link.
    let output = command(&data)
        .args(["reset-password", "BOB@beta.example"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let link = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(link.contains("/password-reset?token="), "{link}");
    let token = link.split("token=").nth(1).unwrap();
    let new_password = "a brand new passphrase for bob";
    let reset = api
        .http
        .post(format!("{}/password-reset", api.base))
        .form(&[
            ("token", token),
            ("password", new_password),
            ("password_confirmation", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let login = api
        .post(
            "/api/auth/login",
            json!({ "email": "bob@beta.example", "password": new_password }),
            None,
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    // An email nobody has: said plainly, exit status 1.
    let unknown = command(&data)
        .args(["reset-password", "nobody@beta.example"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    terminate(process);
}

/// A large import's temporary files (the staging table, index sorts: people's
/// names and emails) go to the configured folder, made private, on the disk
/// the operator sized and the service watches — not the system's /var/tmp.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_import_keeps_its_temporary_files_in_the_configured_folder() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let temp = dir.path().join("sqlite-temp");
    let temp_text = temp.to_str().unwrap();
    let process = spawn_with(
        &data,
        "info",
        &[("ENTERPRISE_SYNC_DATABASE__TEMP_DIR", temp_text)],
    );
    let mode = std::fs::metadata(&temp).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "the folder is the service's alone");
    let api = Api::new(&process);
    api.register_with_room("api").await;
    let key = api.key_with_scopes(&["stores:write", "users:write"]).await;
    let import = |kind: &str, body: Value| {
        api.http
            .post(format!("{}/api/enterprise/{kind}/bulk-import", api.base))
            .header("x-api-key", &key)
            .json(&body)
            .send()
    };
    let stores = import(
        "stores",
        json!({ "stores": [{ "name": "Paris", "external_id": "S1" }] }),
    );
    assert_eq!(stores.await.unwrap().status(), StatusCode::OK);
    // Enough rows that the staging table outgrows its page cache and SQLite
    // gives it a file (it keeps it open, unlinked, for the next import).
    let users: Vec<Value> = (0..100_000)
        .map(|i| {
            json!({ "external_id": format!("E{i}"), "email": format!("u{i}@acme.example"),
                         "name": format!("User {i}"), "role": "seller", "store_id": "S1" })
        })
        .collect();
    let response = import("users", json!({ "users": users })).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["created"], 100_000);
    let open_files: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{}/fd", process.child.id()))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .collect();
    assert!(
        open_files.iter().any(|target| target.starts_with(&temp)),
        "an open temporary file in {temp_text}: {open_files:?}"
    );
    terminate(process);
    let checked = command(&data)
        .arg("check-config")
        .env("ENTERPRISE_SYNC_DATABASE__TEMP_DIR", temp_text)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains(&format!("temporary files: {temp_text}"))
    );

    // A folder that cannot be made stops the service before it starts.
    let refused = command(&data)
        .arg("migrate")
        .env(
            "ENTERPRISE_SYNC_DATABASE__TEMP_DIR",
            "/proc/enterprise-sync-temp",
        )
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("database.temp_dir"), "{stderr}");
}

#[test]
fn systemd_gives_the_start_time_for_migrations_then_hears_ready_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let process = spawn_with(
        &dir.path().join("data"),
        "info",
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap())],
    );
    let mut buffer = [0u8; 512];
    let mut next = || {
        let read = socket.recv(&mut buffer).expect("a notification");
        String::from_utf8_lossy(&buffer[..read]).to_string()
    };
    // Before the database opens (and its migrations run): half an hour.
    assert_eq!(next(), "EXTEND_TIMEOUT_USEC=1800000000");
    assert_eq!(next(), "READY=1");
    terminate(process);
    assert_eq!(next(), "STOPPING=1");
}
