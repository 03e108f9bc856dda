//! Boots the real server in-process on 127.0.0.1:0 with a temporary data folder
//! and a manual clock, and talks HTTP to it.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use enterprise_sync::clock::ManualClock;
use enterprise_sync::config::Config;
use enterprise_sync::domain::{EnterpriseId, RecordSyncMode, Role, StoreId, UserId};
use enterprise_sync::server::{self, Running};
use enterprise_sync::service::Services;
use enterprise_sync::store;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    /// Held so the data folder lives as long as the server.
    _dir: TempDir,
    running: Option<Running>,
}

pub struct Admin {
    pub enterprise_id: String,
    pub user_id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub fn test_config(dir: &TempDir) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    // Every test talks from 127.0.0.1; the throttling tests lower these again.
    config.rate_limit.login_per_ip_per_minute = 1000;
    config.rate_limit.register_per_ip_per_hour = 1000;
    // Tests register many enterprises; the registration tests close it again.
    config.allow_registration = enterprise_sync::config::RegistrationPolicy::Open;
    // ...and fire many requests at once; the slow-client tests lower these again.
    config.http.max_requests_per_client = 10_000;
    config.http.max_connections_per_client = 10_000;
    // The webhook tests' receivers listen on this host: the operator opens
    // exactly 127.0.0.1 (tenants still choose it themselves).
    config.webhooks.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    // The drop-directory task reads the database on its own; tests that use it
    // turn it on.
    config.dropdir.enabled = false;
    config
}

impl TestApp {
    pub async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start_in(tempfile::tempdir().unwrap(), adjust).await
    }

    /// Starts on an existing data folder (a restart).
    pub async fn start_in(dir: TempDir, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(&dir);
        adjust(&mut config);
        let clock = ManualClock::starting_at(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
        let running = server::start(config, clock.clone()).await.unwrap();
        TestApp {
            base: format!("http://{}", running.addr),
            client: reqwest::Client::new(),
            clock,
            _dir: dir,
            running: Some(running),
        }
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.running.as_ref().unwrap().services
    }

    pub fn drop_dir(&self) -> &enterprise_sync::service::drop_files::DropDirHandle {
        self.services()
            .drop_dir
            .get()
            .expect("the drop directory is on")
    }

    /// `/metrics` on its own listener, when `[metrics] listen` is set.
    pub fn metrics_url(&self) -> Option<String> {
        self.running
            .as_ref()
            .unwrap()
            .metrics_addr
            .map(|addr| format!("http://{addr}/metrics"))
    }

    pub fn db_path(&self) -> PathBuf {
        self.services().config.database_path()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
    }

    /// Stops the server but keeps its data folder, for inspecting the files.
    pub async fn stop_keeping_data(mut self) -> (TempDir, PathBuf) {
        let db = self.db_path();
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        let TestApp { _dir, .. } = self;
        (_dir, db)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth<'_>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Key(key) => request.header("x-api-key", *key),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, auth: &Auth<'_>) -> Response {
        self.call(Method::GET, path, auth, None).await
    }

    pub async fn register(&self, company: &str, email: &str) -> Value {
        let response = self
            .post(
                "/api/enterprise/register",
                json!({
                    "company_name": company,
                    "company_email": format!("it@{}.example", company.to_lowercase().replace(' ', "-")),
                    "sync_mode": "api",
                    "it_admin_name": "Admin Person",
                    "it_admin_email": email,
                    "it_admin_password": PASSWORD,
                    "seats_purchased": 100,
                }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn admin(&self, company: &str) -> Admin {
        let email = format!("admin@{}.example", company.to_lowercase());
        let registered = self.register(company, &email).await;
        let login = self.login(&email, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
        let tokens: Value = login.json().await.unwrap();
        Admin {
            enterprise_id: registered["enterprise_account_id"]
                .as_str()
                .unwrap()
                .to_string(),
            user_id: registered["it_admin_id"].as_str().unwrap().to_string(),
            email,
            access_token: tokens["access_token"].as_str().unwrap().to_string(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    /// Signs the admin in again (after the clock moved past their tokens).
    pub async fn login_admin(&self, admin: &Admin) -> Admin {
        let login = self.login(&admin.email, PASSWORD).await;
        assert_eq!(login.status(), StatusCode::OK);
        let tokens: Value = login.json().await.unwrap();
        Admin {
            enterprise_id: admin.enterprise_id.clone(),
            user_id: admin.user_id.clone(),
            email: admin.email.clone(),
            access_token: tokens["access_token"].as_str().unwrap().to_string(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    /// Generates a key; returns (id, key).
    pub async fn key(&self, admin: &Admin, scopes: &[&str]) -> (String, String) {
        let response = self
            .call(
                Method::POST,
                "/api/enterprise/api-keys/generate",
                &Auth::Bearer(&admin.access_token),
                Some(json!({ "name": "test key", "scopes": scopes, "expires_in_days": 30 })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_string(),
            body["key"].as_str().unwrap().to_string(),
        )
    }

    /// Adds a store straight through the store layer (imports arrive later).
    pub async fn seed_store(&self, enterprise: &str, name: &str) -> String {
        let id = StoreId::generate();
        let enterprise: EnterpriseId = enterprise.parse().unwrap();
        let name = name.to_string();
        let now = self.clock_now();
        self.services()
            .db
            .write(move |txn| {
                store::stores::insert(
                    txn,
                    &store::stores::NewStore {
                        id,
                        enterprise_account_id: enterprise,
                        name: &name,
                        location: Some("Lyon"),
                        address: None,
                        phone: None,
                        external_id: Some(&format!("EXT-{name}")),
                        sync_mode: RecordSyncMode::ApiSync,
                        now,
                    },
                )
                .map_err(store::StoreError::from)
            })
            .await
            .unwrap();
        id.to_string()
    }

    /// Adds a person with a password, as an accepted invitation would.
    pub async fn seed_user(
        &self,
        enterprise: &str,
        email: &str,
        role: Role,
        store: Option<&str>,
    ) -> String {
        let hash = self
            .services()
            .passwords
            .hash(PASSWORD.to_string(), email)
            .await
            .unwrap();
        let id = UserId::generate();
        let enterprise: EnterpriseId = enterprise.parse().unwrap();
        let store: Option<StoreId> = store.map(|s| s.parse().unwrap());
        let email = email.to_string();
        let now = self.clock_now();
        self.services()
            .db
            .write(move |txn| {
                store::users::insert(
                    txn,
                    &store::users::NewUser {
                        id,
                        enterprise_account_id: enterprise,
                        email: &email,
                        name: "Staff Member",
                        role,
                        store_id: store,
                        manager_id: None,
                        external_id: Some(&format!("EMP-{email}")),
                        sync_mode: RecordSyncMode::ApiSync,
                        password_hash: Some(&hash),
                        now,
                    },
                )
                .map_err(store::StoreError::from)
            })
            .await
            .unwrap();
        id.to_string()
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use enterprise_sync::clock::Clock;
        self.clock.now()
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(by);
    }

    /// A direct connection to the database file, for assertions on raw rows.
    pub fn raw_db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).unwrap()
    }

    pub fn audit_actions(&self) -> Vec<(String, String)> {
        let conn = self.raw_db();
        let mut statement = conn
            .prepare("SELECT action, outcome FROM audit_log ORDER BY seq")
            .unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Key(&'a str),
}

pub async fn error_code(response: Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
