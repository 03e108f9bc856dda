//! A real SMTP server on loopback for the email tests: aiosmtpd (installed by
//! scripts/test) writing every message it accepts into a maildir.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

fn python() -> PathBuf {
    let python = std::env::var_os("SMTP_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/venv-smtp/bin/python"
            ))
        });
    let usable = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        usable,
        "the email tests need aiosmtpd: run scripts/test, which installs it in target/venv-smtp \
         (or set SMTP_TEST_PYTHON to a Python that has it)"
    );
    python
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One received message, as raw RFC 5322 text, with its body parts decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> String {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut value = String::new();
        for line in self.raw.lines() {
            if line.is_empty() {
                break;
            }
            if line.to_ascii_lowercase().starts_with(&prefix) {
                value = line[prefix.len()..].trim().to_string();
            }
        }
        value
    }

    /// The message with quoted-printable soft breaks and escapes undone, and
    /// base64 parts decoded: enough to find a link in it.
    pub fn text(&self) -> String {
        use base64::Engine;
        let mut out = String::new();
        let mut in_base64 = false;
        let mut chunk = String::new();
        for line in self.raw.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-transfer-encoding: base64") {
                in_base64 = true;
                continue;
            }
            if in_base64 {
                if line.starts_with("--") {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(chunk.trim())
                        .unwrap_or_default();
                    out.push_str(&String::from_utf8_lossy(&decoded));
                    chunk.clear();
                    in_base64 = false;
                } else {
                    chunk.push_str(line.trim());
                }
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        let joined = out.replace("=\n", "");
        let mut decoded = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    decoded.push(byte);
                    i += 3;
                    continue;
                }
            }
            decoded.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&decoded).to_string()
    }

    /// The first `http` link that contains `needle`.
    pub fn link_containing(&self, needle: &str) -> String {
        let text = self.text();
        text.split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
            .find(|word| word.starts_with("http") && word.contains(needle))
            .unwrap_or_else(|| panic!("no link with {needle} in {text}"))
            .replace("&amp;", "&")
    }
}

pub struct SmtpServer {
    pub port: u16,
    maildir: TempDir,
    child: Option<Child>,
    /// With STARTTLS: the server's certificate and key.
    tls: Option<(PathBuf, PathBuf)>,
}

/// A test CA and a server certificate it signed for 127.0.0.1 (openssl).
/// Returns (the CA's PEM, the server's certificate, its key).
pub fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (scripts/test installs it)");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=enterprise-sync test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        SmtpServer::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> SmtpServer {
        let maildir = tempfile::tempdir().unwrap();
        let mut server = SmtpServer {
            port,
            maildir,
            child: None,
            tls: None,
        };
        server.restart().await;
        server
    }

    /// A server that requires STARTTLS, with this certificate and key.
    pub async fn start_tls(certificate: PathBuf, key: PathBuf) -> SmtpServer {
        let mut server = SmtpServer {
            port: free_port(),
            maildir: tempfile::tempdir().unwrap(),
            child: None,
            tls: Some((certificate, key)),
        };
        server.restart().await;
        server
    }

    /// Starts (again) on the same port, keeping the messages received.
    pub async fn restart(&mut self) {
        let mut command = Command::new(python());
        command
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port));
        if let Some((certificate, key)) = &self.tls {
            command
                .arg("--tlscert")
                .arg(certificate)
                .arg("--tlskey")
                .arg(key);
        }
        let child = command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("aiosmtpd did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn messages(&self) -> Vec<Mail> {
        let dir = self.maildir.path().join("mail").join("new");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).unwrap());
        files
            .into_iter()
            .map(|path| Mail {
                raw: std::fs::read_to_string(path).unwrap(),
            })
            .collect()
    }

    /// Waits (up to 20 s of real time) for `count` messages.
    pub async fn wait_for(&self, count: usize) -> Vec<Mail> {
        for _ in 0..2000 {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the SMTP server got {} messages, expected {count}",
            self.messages().len()
        );
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
