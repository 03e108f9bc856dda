//! The dashboard's words in French and English, handed to templates as `t`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::domain::notifications::Language;

const WORDS: &[Word] = &[
    ("app", "Retail Performer · synchronisation", "Retail Performer · sync"),
    ("sign_in", "Connexion", "Sign in"),
    ("sign_out", "Déconnexion", "Sign out"),
    ("email", "Adresse email", "Email address"),
    ("password", "Mot de passe", "Password"),
    ("invalid_credentials", "Email ou mot de passe incorrect.", "Wrong email or password."),
    ("settings", "Paramètres", "Settings"),
    ("company_name", "Nom de l'entreprise", "Company name"),
    ("company_email", "Email de contact de l'entreprise", "Company contact email"),
    ("sync_mode", "Mode de synchronisation", "Sync mode"),
    ("sync_mode_api", "API REST", "REST API"),
    ("sync_mode_scim", "SCIM (fournisseur d'identité)", "SCIM (identity provider)"),
    ("sync_mode_file", "Fichiers (SFTP)", "Files (SFTP)"),
    ("seats_by_operator", "fixées par l'opérateur de l'appliance", "set by the appliance's operator"),
    ("administrators", "Administrateurs informatiques", "IT administrators"),
    ("admin_inactive", "désactivé", "deactivated"),
    ("admin_invited", "invité, mot de passe à définir", "invited, password not set yet"),
    ("admin_active", "actif", "active"),
    ("deactivate", "Désactiver", "Deactivate"),
    ("reactivate", "Réactiver", "Reactivate"),
    ("invite_admin", "Inviter un administrateur", "Invite an administrator"),
    ("invite", "Inviter", "Invite"),
    ("my_password", "Mot de passe", "Password"),
    ("current_password", "Mot de passe actuel", "Current password"),
    ("new_password", "Nouveau mot de passe", "New password"),
    ("confirm_password", "Confirmez le nouveau mot de passe", "Confirm the new password"),
    ("password_rules", "Au moins 15 caractères ; une phrase de plusieurs mots est idéale. Vos autres sessions seront fermées.", "At least 15 characters; a phrase of several words is ideal. Your other sessions will be ended."),
    ("password_changed", "Mot de passe changé ; vos autres sessions sont fermées.", "Password changed; your other sessions are ended."),
    ("passwords_differ", "Les deux nouveaux mots de passe ne sont pas identiques.", "The two new passwords differ."),
    ("wrong_current_password", "Le mot de passe actuel est incorrect.", "The current password is wrong."),
    ("forgot_password", "Mot de passe oublié ?", "Forgot your password?"),
    ("forgot_password_intro", "Indiquez votre adresse email : si un compte l'utilise, vous recevrez un lien pour choisir un nouveau mot de passe.", "Give your email address: if an account uses it, you will get a link to choose a new password."),
    ("send_reset_link", "Envoyer le lien", "Send the link"),
    ("reset_link_sent", "Si un compte utilise cette adresse, un email avec un lien pour choisir un nouveau mot de passe est en route.", "If an account uses this address, an email with a link to choose a new password is on its way."),
    ("op_bulk_user_import", "Import de collaborateurs", "Staff import"),
    ("op_bulk_store_import", "Import de magasins", "Store import"),
    ("op_file_import", "Import de fichier", "File import"),
    ("op_scim_user_create", "Création d'un collaborateur (SCIM)", "Person created (SCIM)"),
    ("op_scim_user_replace", "Remplacement d'un collaborateur (SCIM)", "Person replaced (SCIM)"),
    ("op_scim_user_patch", "Modification d'un collaborateur (SCIM)", "Person updated (SCIM)"),
    ("op_scim_user_delete", "Suppression d'un collaborateur (SCIM)", "Person deleted (SCIM)"),
    ("op_scim_group_create", "Création d'un magasin (SCIM)", "Store created (SCIM)"),
    ("op_scim_group_replace", "Remplacement d'un magasin (SCIM)", "Store replaced (SCIM)"),
    ("op_scim_group_patch", "Modification d'un magasin (SCIM)", "Store updated (SCIM)"),
    ("op_scim_group_delete", "Suppression d'un magasin (SCIM)", "Store deleted (SCIM)"),
    ("record_api_sync", "API", "API"),
    ("record_file_sync", "Fichier", "File"),
    ("record_scim_sync", "SCIM", "SCIM"),
    ("record_manual", "Manuel", "Manual"),
    ("time_zone", "Fuseau horaire", "Time zone"),
    ("choose_enterprise", "Cet email et ce mot de passe ouvrent plusieurs entreprises : choisissez-en une et saisissez à nouveau le mot de passe.", "This email and password open several enterprises: choose one and type the password again."),
    ("enterprise", "Entreprise", "Enterprise"),
    ("too_many_attempts", "Trop de tentatives : réessayez dans une minute.", "Too many attempts: try again in a minute."),
    ("form_expired", "Ce formulaire a expiré : rechargez la page et recommencez.", "This form has expired: reload the page and try again."),
    ("forbidden", "Cette page est réservée aux administrateurs informatiques.", "This page is for IT administrators."),
    ("not_found", "Cette page n'existe pas, ou plus.", "This page does not exist, or no longer does."),
    ("overview", "Vue d'ensemble", "Overview"),
    ("api_keys", "Clés d'API", "API keys"),
    ("language", "Langue", "Language"),
    ("seats", "Licences", "Seats"),
    ("seats_used_of", "utilisées sur", "used of"),
    ("users", "Collaborateurs", "Staff"),
    ("active", "actifs", "active"),
    ("stores", "Magasins", "Stores"),
    ("last_sync", "Dernière synchronisation", "Last sync"),
    ("never", "jamais", "never"),
    ("status_success", "réussie", "succeeded"),
    ("status_partial", "partielle", "partial"),
    ("status_failed", "en échec", "failed"),
    ("recent_runs", "Dernières synchronisations", "Recent runs"),
    ("when", "Quand", "When"),
    ("source", "Source", "Source"),
    ("operation", "Opération", "Operation"),
    ("status", "État", "Status"),
    ("created", "créés", "created"),
    ("updated", "modifiés", "updated"),
    ("deactivated", "désactivés", "deactivated"),
    ("failed_rows", "en erreur", "failed"),
    ("no_runs", "Aucune synchronisation pour l'instant.", "No sync yet."),
    ("scim", "SCIM", "SCIM"),
    ("scim_on", "activé", "on"),
    ("scim_off", "pas de jeton SCIM", "no SCIM token"),
    ("scim_last_call", "dernier appel", "last call"),
    ("profile", "Mon profil", "My profile"),
    ("name", "Nom", "Name"),
    ("role", "Rôle", "Role"),
    ("role_it_admin", "Administrateur informatique", "IT administrator"),
    ("role_manager", "Manager", "Manager"),
    ("role_seller", "Vendeur", "Seller"),
    ("generate_key", "Générer une clé", "Generate a key"),
    ("key_name", "Nom de la clé", "Key name"),
    ("scopes", "Droits", "Scopes"),
    ("expires_in_days", "Expire dans (jours)", "Expires in (days)"),
    ("generate", "Générer", "Generate"),
    ("key_once", "Copiez cette clé maintenant : elle ne sera plus jamais affichée.", "Copy this key now: it will never be shown again."),
    ("copy", "Copier", "Copy"),
    ("copied", "Copié", "Copied"),
    ("prefix", "Préfixe", "Prefix"),
    ("state", "État", "State"),
    ("state_active", "active", "active"),
    ("state_expired", "expirée", "expired"),
    ("state_revoked", "révoquée", "revoked"),
    ("last_used", "Dernière utilisation", "Last used"),
    ("expires", "Expire", "Expires"),
    ("revoke", "Révoquer", "Revoke"),
    ("revoke_confirm", "Révoquer cette clé ? Les systèmes qui l'utilisent seront refusés dans les secondes qui suivent.", "Revoke this key? Systems that use it are refused within seconds."),
    ("cancel", "Annuler", "Cancel"),
    ("no_keys", "Aucune clé pour l'instant.", "No key yet."),
    ("invalid_form", "Vérifiez le formulaire", "Check the form"),
    ("runs", "Synchronisations", "Sync runs"),
    ("run", "Synchronisation", "Sync run"),
    ("any", "toutes", "any"),
    ("since", "Depuis le", "Since"),
    ("until", "Jusqu'au", "Until"),
    ("filter", "Filtrer", "Filter"),
    ("older", "Plus anciennes", "Older"),
    ("counts", "Lignes", "Rows"),
    ("source_api", "API", "API"),
    ("source_file", "Fichier", "File"),
    ("source_scim", "SCIM", "SCIM"),
    ("initiated_by", "Lancée par", "Started by"),
    ("file", "Fichier", "File"),
    ("unchanged", "inchangés", "unchanged"),
    ("problem", "Problème", "Problem"),
    ("row_errors", "Lignes en erreur", "Rows in error"),
    ("download_csv", "Télécharger (CSV)", "Download (CSV)"),
    ("errors_truncated", "Les 50 premières erreurs ; la réponse de l'import les liste toutes.", "The first 50 errors; the import's answer lists them all."),
    ("row", "Ligne", "Row"),
    ("key", "Clé", "Key"),
    ("field", "Champ", "Field"),
    ("code", "Code", "Code"),
    ("message", "Message", "Message"),
    ("warnings", "Avertissements", "Warnings"),
    ("invalid_date", "Date invalide", "Invalid date"),
    ("files", "Fichiers", "Files"),
    ("dropdir_off", "Le dépôt de fichiers est désactivé sur ce serveur.", "The drop directory is off on this server."),
    ("received", "Reçu", "Received"),
    ("finished", "Terminé", "Finished"),
    ("size", "Taille", "Size"),
    ("rows", "lignes", "rows"),
    ("full_export", "export complet", "full export"),
    ("approved_by", "Approuvé par", "Approved by"),
    ("no_files", "Aucun fichier reçu pour l'instant.", "No file received yet."),
    ("file_processing", "en cours", "processing"),
    ("file_applied", "appliqué", "applied"),
    ("file_held", "en attente d'approbation", "held for approval"),
    ("file_failed", "en échec", "failed"),
    ("file_duplicate", "doublon", "duplicate"),
    ("file_refused", "refusé", "refused"),
    ("approve", "Approbation", "Approval"),
    ("approve_button", "Approuver et appliquer", "Approve and apply"),
    ("would_deactivate_before", "Appliquer ce fichier désactivera", "Applying this file will deactivate"),
    ("would_deactivate_after", "personne(s).", "people."),
    ("retry", "Réessayer", "Retry"),
    ("in_progress", "Import en cours… cette page se met à jour toute seule.", "Importing… this page updates by itself."),
    ("held_files", "Fichiers en attente", "Files held"),
    ("search", "Rechercher", "Search"),
    ("mapping_profile", "Profil de lecture des fichiers", "File mapping profile"),
    ("profile_source", "En vigueur", "In force"),
    ("profile_json", "Profil (JSON)", "Profile (JSON)"),
    ("profile_hint", "Délimiteur, encodage, correspondance des colonnes, lignes datées, règles d'export complet : voir drop-directory.md. Essayez-le sur un fichier exemple avant de l'enregistrer ; rien n'est importé.", "Delimiter, encoding, column mapping, dated rows, full-export rules: see drop-directory.md. Try it on a sample file before saving; nothing is imported."),
    ("sample", "Fichier exemple", "Sample file"),
    ("preview", "Aperçu", "Preview"),
    ("effective_settings", "Réglages effectifs", "Effective settings"),
    ("upload", "Déposer un fichier", "Upload a file"),
    ("upload_kind", "Contenu", "Content"),
    ("upload_button", "Déposer et importer", "Upload and import"),
    ("upload_hint", "Le fichier est importé comme un fichier déposé par SFTP (mêmes formats, même profil, mêmes garde-fous).", "The file is imported as a file dropped over SFTP (same formats, profile and guards)."),
    ("uploaded", "Fichier déposé :", "File uploaded:"),
    ("webhooks", "Webhooks et alertes", "Webhooks and alerts"),
    ("webhook", "Webhook", "Webhook"),
    ("secret_once", "Copiez ce secret de signature maintenant : il ne sera plus jamais affiché.", "Copy this signing secret now: it will never be shown again."),
    ("saved", "Enregistré.", "Saved."),
    ("events", "Événements", "Events"),
    ("last_success", "Dernier succès", "Last success"),
    ("messages", "Messages", "Messages"),
    ("messages_legend", "Messages : livrés / en attente / abandonnés.", "Messages: delivered / pending / given up."),
    ("endpoint_active", "actif", "active"),
    ("endpoint_disabled", "désactivé", "disabled"),
    ("no_endpoints", "Aucun webhook pour l'instant.", "No webhook yet."),
    ("new_endpoint", "Nouveau webhook", "New webhook"),
    ("description", "Description", "Description"),
    ("register", "Enregistrer", "Register"),
    ("alerts_settings", "Alertes et emails", "Alerts and emails"),
    ("email_language", "Langue des emails", "Email language"),
    ("alert_recipients", "Destinataires des alertes (un par ligne)", "Alert recipients (one per line)"),
    ("recipients_default", "vide : les administrateurs informatiques", "empty: the IT administrators"),
    ("alert_on_partial", "Alerter aussi quand des lignes échouent", "Alert also when some rows fail"),
    ("stale_after_hours", "Alerter sans synchronisation réussie depuis (heures, vide : jamais)", "Alert with no successful sync for (hours, empty: never)"),
    ("allowed_networks", "Réseaux internes autorisés pour les webhooks (un CIDR par ligne)", "Internal networks webhooks may reach (one CIDR per line)"),
    ("save", "Enregistrer", "Save"),
    ("enable", "Réactiver", "Enable again"),
    ("delete_endpoint", "Supprimer ce webhook", "Delete this webhook"),
    ("delivery_log", "Journal de livraison", "Delivery log"),
    ("next_attempt", "Prochain essai", "Next attempt"),
    ("no_attempts", "Aucune livraison pour l'instant.", "No delivery yet."),
    ("scim_base_url", "URL de base SCIM", "SCIM base URL"),
    ("scim_paste", "À coller dans Okta ou Entra ID, avec un jeton ci-dessous.", "Paste it into Okta or Entra ID, with a token below."),
    ("scim_tokens", "Jetons SCIM", "SCIM tokens"),
    ("scim_new_token", "Nouveau jeton SCIM", "New SCIM token"),
    ("active_state", "actif", "active"),
    ("inactive_state", "désactivé", "deactivated"),
    ("external_id", "Identifiant externe", "External id"),
    ("location", "Lieu", "Location"),
    ("next_page", "Page suivante", "Next page"),
    ("nothing_found", "Rien ne correspond.", "Nothing matches."),
    ("audit", "Journal d'audit", "Audit trail"),
    ("action", "Action", "Action"),
    ("outcome", "Résultat", "Outcome"),
    ("outcome_success", "réussi", "success"),
    ("outcome_failure", "échoué", "failure"),
    ("outcome_denied", "refusé", "denied"),
    ("actor", "Qui", "Who"),
    ("target", "Sur", "On"),
    ("from_address", "Depuis", "From"),
    ("held_files_hint", "exports complets à approuver", "full exports to approve"),
    ("failed_7_days", "Échecs sur 7 jours", "Failed runs, 7 days"),
    ("last_by_source", "Dernière synchronisation par source", "Last sync per source"),
    ("rows_per_day", "Lignes traitées par jour (30 jours)", "Rows per day (30 days)"),
];

/// A word in its languages: (key, French, English).
type Word = (&'static str, &'static str, &'static str);

fn table(language: Language) -> &'static BTreeMap<&'static str, &'static str> {
    static FR: OnceLock<BTreeMap<&str, &str>> = OnceLock::new();
    static EN: OnceLock<BTreeMap<&str, &str>> = OnceLock::new();
    let (cell, pick): (_, fn(&Word) -> &'static str) = match language {
        Language::Fr => (&FR, |w| w.1),
        Language::En => (&EN, |w| w.2),
    };
    cell.get_or_init(|| WORDS.iter().map(|w| (w.0, pick(w))).collect())
}

/// Every word of a language, for templates.
pub fn words(language: Language) -> &'static BTreeMap<&'static str, &'static str> {
    table(language)
}

/// One word; the key itself when it has none (a test catches that).
pub fn word(language: Language, key: &str) -> &'static str {
    table(language).get(key).copied().unwrap_or("?")
}

/// A stored time (RFC 3339, UTC) as people read it: in `time_zone` (IANA; an
/// unknown one reads as UTC) and in `language`, with the zone's abbreviation.
/// Text that is not a time comes back as it is.
pub fn when(language: Language, time_zone: &str, text: &str) -> String {
    use chrono::{Datelike, Timelike};
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) else {
        return text.to_string();
    };
    let zone: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    let local = at.with_timezone(&zone);
    let month = local.month0() as usize;
    let abbreviation = local.format("%Z");
    match language {
        Language::Fr => {
            const MONTHS: [&str; 12] = [
                "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                "nov.", "déc.",
            ];
            format!(
                "{} {} {} à {:02}:{:02} {abbreviation}",
                local.day(),
                MONTHS[month],
                local.year(),
                local.hour(),
                local.minute()
            )
        }
        Language::En => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!(
                "{} {} {}, {:02}:{:02} {abbreviation}",
                local.day(),
                MONTHS[month],
                local.year(),
                local.hour(),
                local.minute()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_the_enterprise_zone_and_language() {
        let stored = "2026-12-02T12:00:54.064Z";
        assert_eq!(
            when(Language::Fr, "Europe/Paris", stored),
            "2 déc. 2026 à 13:00 CET"
        );
        assert_eq!(
            when(Language::En, "Europe/Paris", stored),
            "2 Dec 2026, 13:00 CET"
        );
        assert_eq!(
            when(Language::En, "America/Martinique", stored),
            "2 Dec 2026, 08:00 AST"
        );
        assert_eq!(
            when(Language::Fr, "Europe/Paris", "2026-07-14T08:30:00.000Z"),
            "14 juil. 2026 à 10:30 CEST"
        );
        assert_eq!(
            when(Language::En, "Not/AZone", stored),
            "2 Dec 2026, 12:00 UTC"
        );
        assert_eq!(when(Language::En, "UTC", "never"), "never");
    }

    #[test]
    fn keys_are_unique_and_every_word_is_translated() {
        let mut keys: Vec<&str> = WORDS.iter().map(|w| w.0).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), WORDS.len());
        assert!(WORDS.iter().all(|w| !w.1.is_empty() && !w.2.is_empty()));
    }

    #[test]
    fn every_key_a_template_uses_exists() {
        for source in super::super::TEMPLATES.iter().map(|t| t.1) {
            for (at, _) in source.match_indices("t.") {
                // `t.` starting a name, not the end of one (`layout.html`).
                let before = source[..at].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let key: String = source[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(words(Language::En).contains_key(key.as_str()), "t.{key}");
            }
        }
    }
}
