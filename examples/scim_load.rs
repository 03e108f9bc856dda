//! Load generator for `scripts/bench-scim`: POSTs `count` distinct SCIM users
//! to `<base>/Users` over `concurrency` keep-alive connections and prints
//! `POSTED <requests> <seconds> <failed>`.
//!
//! `cargo run --release --example scim_load -- BASE TOKEN COUNT CONCURRENCY`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

// One thread drives every connection: the load generator shares the machine
// with the server it measures, and a second runtime thread only added
// cross-thread wake-ups (CPU the server then lacks).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, token, count, concurrency, prefix) = match &args[..] {
        [_, base, token, count, concurrency] => (base, token, count, concurrency, "u"),
        [_, base, token, count, concurrency, prefix] => {
            (base, token, count, concurrency, prefix.as_str())
        }
        _ => {
            eprintln!("usage: scim_load BASE TOKEN COUNT CONCURRENCY [NAME_PREFIX]");
            std::process::exit(2);
        }
    };
    let count: usize = count.parse().expect("COUNT");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY");
    let url = format!("{}/Users", base.trim_end_matches('/'));
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (next, failed, url, token) = (next.clone(), failed.clone(), url.clone(), token.clone());
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let name = format!("{prefix}{n}@bench.example");
                let body = serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name,
                    "name": {"givenName": format!("Given{n}"), "familyName": format!("Family{n}")},
                    "emails": [{"primary": true, "value": name, "type": "work"}],
                    "externalId": format!("ext-{prefix}{n}"),
                    "password": "x",
                    "groups": [],
                    "active": true,
                });
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("{} {}", r.status(), r.text().await.unwrap_or_default());
                        }
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("{e}");
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "POSTED {count} {:.3} {}",
        started.elapsed().as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
}
