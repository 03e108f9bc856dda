//! The emails' words, in French and English, as plain text and HTML. Every
//! value from the database or an import is escaped in the HTML part.

use chrono::{DateTime, Utc};

use crate::domain::html::escape;
use crate::domain::notifications::{AlertFacts, FailureCause, Language};

/// An email ready for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Header fields cannot carry line breaks (no header injection through a
/// company or file name).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn page(language: Language, paragraphs: &[String], footer: &str) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>\n")).collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"></head>\n<body style=\"font-family: sans-serif; max-width: 40em\">\n{body}<hr>\n<p style=\"color: #666; font-size: small\">{}</p>\n</body></html>\n",
        language.as_str(),
        escape(footer)
    )
}

fn date(language: Language, at: DateTime<Utc>) -> String {
    match language {
        Language::Fr => at.format("%d/%m/%Y à %H:%M UTC").to_string(),
        Language::En => at.format("%Y-%m-%d at %H:%M UTC").to_string(),
    }
}

pub struct Invitation<'a> {
    pub company: &'a str,
    pub person: &'a str,
    pub link: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// What a one-time-link email says around the link, in its language.
struct LinkWords {
    subject: String,
    /// Why the email came (plain text).
    intro: String,
    /// "Choose … with this link".
    action: &'static str,
    button: &'static str,
    footer: &'static str,
}

/// An email carrying a one-time link (an invitation, a password reset).
fn link_email(language: Language, invitation: &Invitation<'_>, words: LinkWords) -> Rendered {
    let (person, link) = (invitation.person, invitation.link);
    let expires = date(language, invitation.expires_at);
    let LinkWords {
        subject,
        intro,
        action,
        button,
        footer,
    } = words;
    let (hello, once, copy) = match language {
        Language::Fr => (
            "Bonjour",
            format!("valable une seule fois, jusqu'au {expires}"),
            "Si le bouton ne marche pas, copiez ce lien :",
        ),
        Language::En => (
            "Hello",
            format!("it works once, until {expires}"),
            "If the link does not open, copy it:",
        ),
    };
    let colon = if language == Language::Fr { " :" } else { ":" };
    Rendered {
        subject: one_line(&subject),
        text: format!(
            "{hello} {person},\n\n{intro}\n\n{action} ({once}){colon}\n\n{link}\n\n{footer}\n"
        ),
        html: page(
            language,
            &[
                format!("{hello} {},", escape(person)),
                escape(&intro),
                format!(
                    "<a href=\"{}\">{button}</a><br>({})",
                    escape(link),
                    escape(&once)
                ),
                format!("{copy} {}", escape(link)),
            ],
            footer,
        ),
    }
}

pub fn invitation(language: Language, invitation: &Invitation<'_>) -> Rendered {
    let company = invitation.company;
    let words = match language {
        Language::Fr => LinkWords {
            subject: format!("{company} vous invite sur Retail Performer"),
            intro: format!("{company} vous a créé un compte Retail Performer."),
            action: "Choisissez votre mot de passe avec ce lien",
            button: "Choisir mon mot de passe",
            footer: "Si vous n'attendiez pas cette invitation, ignorez ce message.",
        },
        Language::En => LinkWords {
            subject: format!("{company} invites you to Retail Performer"),
            intro: format!("{company} created a Retail Performer account for you."),
            action: "Choose your password with this link",
            button: "Choose my password",
            footer: "If you did not expect this invitation, ignore this message.",
        },
    };
    link_email(language, invitation, words)
}

/// A password reset email: the link to choose a new password.
pub fn password_reset(language: Language, reset: &Invitation<'_>) -> Rendered {
    let company = reset.company;
    let words = match language {
        Language::Fr => LinkWords {
            subject: format!("{company} : choisir un nouveau mot de passe Retail Performer"),
            intro: format!(
                "Quelqu'un (vous, sans doute) a demandé à changer le mot de passe de votre compte Retail Performer chez {company}."
            ),
            action: "Choisissez-en un nouveau avec ce lien",
            button: "Choisir un nouveau mot de passe",
            footer: "Si vous n'avez rien demandé, ignorez ce message : votre mot de passe actuel reste valable.",
        },
        Language::En => LinkWords {
            subject: format!("{company}: choose a new Retail Performer password"),
            intro: format!(
                "Someone (you, most likely) asked to change the password of your Retail Performer account at {company}."
            ),
            action: "Choose a new one with this link",
            button: "Choose a new password",
            footer: "If you asked for nothing, ignore this message: your current password still works.",
        },
    };
    link_email(language, reset, words)
}

fn source_name(language: Language, source: &str, file: Option<&str>) -> String {
    match (language, source, file) {
        (Language::Fr, "file", Some(file)) => format!("le fichier « {file} »"),
        (Language::En, "file", Some(file)) => format!("the file \"{file}\""),
        (Language::Fr, "api", _) => "l'import par API".into(),
        (Language::En, "api", _) => "the API import".into(),
        (Language::Fr, "scim", _) => "la synchronisation SCIM".into(),
        (Language::En, "scim", _) => "the SCIM provisioning".into(),
        (Language::Fr, _, _) => "l'import par fichier".into(),
        (Language::En, _, _) => "the file import".into(),
    }
}

/// Why a run failed, in French (the run's own text is English).
fn french_cause(cause: &FailureCause) -> String {
    match cause {
        FailureCause::RowsFailed { failed, total, first_code } => {
            let why = match first_code.as_deref() {
                Some("seat_limit_reached") => " : toutes les licences achetées sont utilisées",
                Some("unknown_store") => " (magasin inconnu, par exemple)",
                Some("required") => " (champ obligatoire manquant, par exemple)",
                Some("invalid_email") => " (adresse email invalide, par exemple)",
                _ => "",
            };
            format!("{failed} ligne(s) sur {total} en erreur{why} ; le détail est dans le journal de la synchronisation")
        }
        FailureCause::NotApplied { code, failed } => match code.as_str() {
            "rows_rejected" => format!(
                "cette source applique tout ou rien, et {failed} ligne(s) sont en erreur"
            ),
            "full_export_rejected" => format!(
                "un export complet s'applique entièrement ou pas du tout, et {failed} ligne(s) sont en erreur"
            ),
            "full_export_held" => "l'export complet attend l'approbation d'un administrateur".into(),
            _ => format!("l'import n'a pas été appliqué ({code})"),
        },
    }
}

/// `base`: where the API answers, to name the run's sync log.
pub fn alert(language: Language, company: &str, facts: &AlertFacts, base: &str) -> Rendered {
    let run_link = |run_id: &Option<String>| {
        run_id
            .as_ref()
            .map(|id| format!("{base}/api/enterprise/sync-logs/{id}"))
    };
    let (subject, lines, link): (String, Vec<String>, Option<String>) = match (language, facts) {
        (Language::Fr, AlertFacts::SyncFailed { run_id, source, file, error, cause, at }) => (
            format!("[{company}] Échec de synchronisation"),
            vec![
                format!("{} a échoué le {} : rien n'a été appliqué.", capitalise(&source_name(language, source, file.as_deref())), date(language, *at)),
                format!("Cause : {}", cause.as_ref().map_or_else(|| error.clone(), french_cause)),
            ],
            run_link(run_id),
        ),
        (Language::En, AlertFacts::SyncFailed { run_id, source, file, error, at, .. }) => (
            format!("[{company}] Sync failed"),
            vec![
                format!("{} failed on {}: nothing was applied.", capitalise(&source_name(language, source, file.as_deref())), date(language, *at)),
                format!("Cause: {error}"),
            ],
            run_link(run_id),
        ),
        (Language::Fr, AlertFacts::SyncPartial { run_id, source, file, failed, total, at }) => (
            format!("[{company}] Synchronisation partielle : {failed} ligne(s) en erreur"),
            vec![format!(
                "{} du {} : {failed} ligne(s) sur {total} n'ont pas été appliquées ; les autres l'ont été.",
                capitalise(&source_name(language, source, file.as_deref())),
                date(language, *at)
            )],
            run_link(&Some(run_id.clone())),
        ),
        (Language::En, AlertFacts::SyncPartial { run_id, source, file, failed, total, at }) => (
            format!("[{company}] Partial sync: {failed} row(s) failed"),
            vec![format!(
                "{} on {}: {failed} of {total} row(s) were not applied; the others were.",
                capitalise(&source_name(language, source, file.as_deref())),
                date(language, *at)
            )],
            run_link(&Some(run_id.clone())),
        ),
        (Language::Fr, AlertFacts::FileHeld { file, file_id, reason, would_deactivate, at }) => (
            format!("[{company}] Fichier en attente d'approbation : {file}"),
            vec![
                format!("L'export complet « {file} » reçu le {} désactiverait {would_deactivate} personne(s) ; il attend l'approbation d'un administrateur.", date(language, *at)),
                format!("Motif : {reason}"),
                "Vérifiez le fichier, puis approuvez-le ou déposez un export corrigé.".into(),
            ],
            file_id.as_ref().map(|id| format!("{base}/api/enterprise/files/{id}")),
        ),
        (Language::En, AlertFacts::FileHeld { file, file_id, reason, would_deactivate, at }) => (
            format!("[{company}] File held for approval: {file}"),
            vec![
                format!("The full export \"{file}\" received on {} would deactivate {would_deactivate} people; it waits for an administrator's approval.", date(language, *at)),
                format!("Reason: {reason}"),
                "Check the file, then approve it or drop a corrected export.".into(),
            ],
            file_id.as_ref().map(|id| format!("{base}/api/enterprise/files/{id}")),
        ),
        (Language::Fr, AlertFacts::SyncStale { hours, last_success_at }) => (
            format!("[{company}] Aucune synchronisation réussie depuis {hours} h"),
            vec![format!(
                "La dernière synchronisation réussie date du {} : plus de {hours} heures sans données à jour. Vérifiez l'export du SIRH ou de l'ERP, le dépôt SFTP ou le fournisseur d'identité.",
                date(language, *last_success_at)
            )],
            None,
        ),
        (Language::Fr, AlertFacts::DiskLow { free_mib, min_free_mb, at }) => (
            format!("[{company}] Espace disque presque épuisé sur le serveur de synchronisation"),
            vec![
                format!("Le {}, il ne restait que {free_mib} Mio libres sur le serveur enterprise-sync (seuil : {min_free_mb} Mio).", date(language, *at)),
                "Quand le disque sera plein, les imports et les fichiers déposés attendront ; rien ne sera appliqué à moitié. Prévenez l'administrateur du serveur pour libérer de l'espace.".into(),
            ],
            None,
        ),
        (Language::En, AlertFacts::DiskLow { free_mib, min_free_mb, at }) => (
            format!("[{company}] Disk space running out on the sync server"),
            vec![
                format!("On {}, only {free_mib} MiB were free on the enterprise-sync server (threshold: {min_free_mb} MiB).", date(language, *at)),
                "When the disk is full, imports and dropped files wait; nothing is half-applied. Ask the server's administrator to free space.".into(),
            ],
            None,
        ),
        (Language::Fr, AlertFacts::Seats { used, purchased, full, at }) => (
            if *full {
                format!("[{company}] Toutes les licences sont utilisées ({used}/{purchased})")
            } else {
                format!("[{company}] 90 % des licences sont utilisées ({used}/{purchased})")
            },
            vec![
                format!("Le {}, {used} personnes actives occupaient {purchased} licences achetées.", date(language, *at)),
                if *full {
                    "Les créations et réactivations suivantes seront refusées (seat_limit_reached) : achetez des licences ou désactivez les départs.".to_string()
                } else {
                    "Au-delà du nombre de licences, les créations et réactivations seront refusées : prévoyez des licences supplémentaires.".to_string()
                },
            ],
            None,
        ),
        (Language::En, AlertFacts::Seats { used, purchased, full, at }) => (
            if *full {
                format!("[{company}] All seats are in use ({used}/{purchased})")
            } else {
                format!("[{company}] 90 % of the seats are in use ({used}/{purchased})")
            },
            vec![
                format!("On {}, {used} active people held {purchased} purchased seats.", date(language, *at)),
                if *full {
                    "Further creations and reactivations will be refused (seat_limit_reached): buy seats or deactivate leavers.".to_string()
                } else {
                    "Beyond the seats purchased, creations and reactivations will be refused: plan more seats.".to_string()
                },
            ],
            None,
        ),
        (Language::En, AlertFacts::SyncStale { hours, last_success_at }) => (
            format!("[{company}] No successful sync for {hours} hours"),
            vec![format!(
                "The last successful sync was on {}: more than {hours} hours without fresh data. Check the HR or ERP export, the SFTP drop or the identity provider.",
                date(language, *last_success_at)
            )],
            None,
        ),
    };
    let footer = match language {
        Language::Fr => "Alerte envoyée par enterprise-sync. Les destinataires se règlent dans les paramètres de notification de l'entreprise.",
        Language::En => "Alert sent by enterprise-sync. Recipients are set in the enterprise's notification settings.",
    };
    let details = match language {
        Language::Fr => "Détails",
        Language::En => "Details",
    };
    let mut text = lines.join("\n\n");
    let mut paragraphs: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    if let Some(link) = &link {
        text.push_str(&format!("\n\n{details} : {link}"));
        paragraphs.push(format!("{details} : {}", escape(link)));
    }
    text.push_str(&format!("\n\n-- \n{footer}\n"));
    Rendered {
        subject: one_line(&subject),
        text,
        html: page(language, &paragraphs, footer),
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `enterprise-sync send-test-email`: both languages, so one email checks both.
pub fn test_email(host: &str) -> Rendered {
    let fr = format!("Ce message de test a été envoyé par enterprise-sync ({host}) : l'envoi d'emails fonctionne.");
    let en =
        format!("This test message was sent by enterprise-sync ({host}): email delivery works.");
    Rendered {
        subject: "enterprise-sync: test email / email de test".into(),
        text: format!("{en}\n\n{fr}\n"),
        html: page(Language::En, &[escape(&en), escape(&fr)], "enterprise-sync"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    #[test]
    fn invitations_escape_names_in_html_and_keep_subjects_on_one_line() {
        let rendered = invitation(
            Language::En,
            &Invitation {
                company: "Acme <b>\r\nBcc: x@evil.example",
                person: "Zoë <script>",
                link: "https://sync.example.com/invitations/accept?token=abc&x=1",
                expires_at: at(),
            },
        );
        assert!(!rendered.subject.contains('\n') && !rendered.subject.contains('\r'));
        assert!(rendered.html.contains("Zoë &lt;script&gt;"));
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.html.contains("token=abc&amp;x=1"));
        assert!(rendered
            .text
            .contains("https://sync.example.com/invitations/accept?token=abc&x=1"));
        assert!(rendered.text.contains("2026-03-01"));
        let french = invitation(
            Language::Fr,
            &Invitation {
                company: "Acme",
                person: "Zoë",
                link: "https://x/",
                expires_at: at(),
            },
        );
        assert!(french.subject.contains("vous invite"));
        assert!(french.text.contains("01/03/2026"));
    }

    #[test]
    fn every_alert_renders_in_both_languages() {
        let facts = [
            AlertFacts::SyncFailed {
                run_id: Some("r1".into()),
                source: "api".into(),
                file: None,
                error: "2 of 2 rows failed".into(),
                cause: Some(FailureCause::RowsFailed {
                    failed: 2,
                    total: 2,
                    first_code: Some("seat_limit_reached".into()),
                }),
                at: at(),
            },
            AlertFacts::SyncPartial {
                run_id: "r2".into(),
                source: "file".into(),
                file: Some("users.csv".into()),
                failed: 1,
                total: 10,
                at: at(),
            },
            AlertFacts::FileHeld {
                file: "users_full.csv".into(),
                file_id: Some("f1".into()),
                reason: "would deactivate 40 %".into(),
                would_deactivate: 40,
                at: at(),
            },
            AlertFacts::SyncStale {
                hours: 26,
                last_success_at: at(),
            },
            AlertFacts::DiskLow {
                free_mib: 300,
                min_free_mb: 512,
                at: at(),
            },
            AlertFacts::Seats {
                used: 9,
                purchased: 10,
                full: false,
                at: at(),
            },
            AlertFacts::Seats {
                used: 10,
                purchased: 10,
                full: true,
                at: at(),
            },
        ];
        for fact in &facts {
            let json = serde_json::to_string(fact).unwrap();
            assert_eq!(&serde_json::from_str::<AlertFacts>(&json).unwrap(), fact);
            for language in [Language::Fr, Language::En] {
                let rendered = alert(language, "Acme", fact, "https://sync.example.com");
                assert!(
                    rendered.subject.starts_with("[Acme]"),
                    "{}",
                    rendered.subject
                );
                assert!(rendered.html.starts_with("<!DOCTYPE html>"));
                assert!(rendered.text.len() > 40);
            }
        }
        let failed = alert(Language::En, "Acme", &facts[0], "https://sync.example.com");
        assert!(failed
            .text
            .contains("https://sync.example.com/api/enterprise/sync-logs/r1"));
        // French throughout: the cause too, not the run's English text.
        let french = alert(Language::Fr, "Acme", &facts[0], "https://sync.example.com");
        assert!(
            french
                .text
                .contains("2 ligne(s) sur 2 en erreur : toutes les licences"),
            "{}",
            french.text
        );
        assert!(!french.text.contains("rows failed"));
        // An alert queued before causes were kept still reads (in English).
        let older = r#"{"kind":"sync_failed","run_id":null,"source":"api","file":null,"error":"1 of 1 rows failed","at":"2026-03-01T09:00:00Z"}"#;
        let older: AlertFacts = serde_json::from_str(older).unwrap();
        assert!(alert(Language::Fr, "Acme", &older, "x")
            .text
            .contains("1 of 1 rows failed"));
    }
}
