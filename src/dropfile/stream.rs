//! Reading a large users file without holding it: one pass hashes it and finds
//! its encoding, a second decodes and parses it record by record into the
//! engine's staged mode. Memory stays at a few buffers, whatever the size.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use encoding_rs::{CoderResult, Decoder, Encoding};

use super::formats::{detect_delimiter, CsvRecords, FileProblem, ReadRecord};
use super::settings::DropSettings;
use super::Refusal;
use crate::domain::import::UserRecord;
use crate::domain::import::{RowProblem, RowStream, SourceRow};

const CHUNK: usize = 1024 * 1024;

/// What the first pass learnt of a file.
#[derive(Debug, Clone)]
pub struct Survey {
    pub sha256: String,
    pub encoding: &'static Encoding,
    /// Bytes of the byte-order mark the text starts after.
    pub bom_length: usize,
}

/// Hashes the file and picks its encoding as the whole-file reader does: a BOM
/// wins, else UTF-8 if every byte is valid UTF-8, else the fallback.
pub fn survey(file: &mut File, limit: u64, fallback: &'static Encoding) -> Result<Survey, Refusal> {
    let unreadable = |e: std::io::Error| Refusal::Unreadable(e.to_string());
    file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; CHUNK];
    let mut carried = 0usize;
    let mut total = 0u64;
    let mut first = true;
    let mut bom: Option<(&'static Encoding, usize)> = None;
    let mut utf8 = true;
    loop {
        let read = file.read(&mut buffer[carried..]).map_err(unreadable)?;
        if read == 0 {
            break;
        }
        total += read as u64;
        if total > limit {
            return Err(Refusal::TooLarge { size: total, limit });
        }
        digest.update(&buffer[carried..carried + read]);
        let filled = carried + read;
        if first {
            bom = Encoding::for_bom(&buffer[..filled]);
            first = false;
        }
        carried = 0;
        if utf8 && bom.is_none() {
            match std::str::from_utf8(&buffer[..filled]) {
                Ok(_) => {}
                // A sequence cut by the chunk's end: check it with the next chunk.
                Err(e) if e.error_len().is_none() => {
                    let valid = e.valid_up_to();
                    buffer.copy_within(valid..filled, 0);
                    carried = filled - valid;
                }
                Err(_) => utf8 = false,
            }
        }
    }
    if carried > 0 {
        utf8 = false;
    }
    let sha256 = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (encoding, bom_length) = match bom {
        Some((encoding, length)) => (encoding, length),
        None if utf8 => (encoding_rs::UTF_8, 0),
        None => (fallback, 0),
    };
    Ok(Survey {
        sha256,
        encoding,
        bom_length,
    })
}

/// UTF-8 out of any encoding, a chunk at a time.
struct Decoding<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.done {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.end = self.inner.read(&mut self.input)?;
                self.start = 0;
                self.eof = self.end == 0;
            }
            let (result, read, written, _) =
                self.decoder
                    .decode_to_utf8(&self.input[self.start..self.end], out, self.eof);
            self.start += read;
            if self.eof && result == CoderResult::InputEmpty {
                self.done = true;
            }
            if written > 0 {
                return Ok(written);
            }
            if result == CoderResult::OutputFull {
                return Err(std::io::Error::other("decoding buffer too small"));
            }
        }
    }
}

/// The file's rows, streamed, with what the header told.
pub struct Streamed {
    pub rows: RowStream,
    pub delimiter: char,
    pub warnings: Vec<String>,
}

/// Opens the rows of a surveyed users file for the staged import.
pub fn users(
    mut file: File,
    survey: &Survey,
    settings: &DropSettings,
) -> Result<Streamed, FileProblem> {
    let problem = |e: std::io::Error| FileProblem(format!("the file cannot be read: {e}"));
    file.seek(SeekFrom::Start(survey.bom_length as u64))
        .map_err(problem)?;
    let text: Box<dyn Read + Send> = if survey.encoding == encoding_rs::UTF_8 {
        Box::new(file)
    } else {
        Box::new(Decoding {
            inner: file,
            decoder: survey.encoding.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            done: false,
        })
    };
    let mut text = BufReader::with_capacity(256 * 1024, text);
    let profile = &settings.profile;
    let mut skipped = Vec::new();
    for _ in 0..profile.skip_top_lines {
        skipped.clear();
        if text.read_until(b'\n', &mut skipped).map_err(problem)? == 0 {
            break;
        }
    }
    let delimiter = match profile
        .delimiter
        .as_deref()
        .and_then(crate::domain::drop_profile::delimiter_byte)
    {
        Some(delimiter) => delimiter,
        None => {
            let head = text.fill_buf().map_err(problem)?;
            detect_delimiter(&String::from_utf8_lossy(head))
        }
    };
    let options = settings.read_options(chrono::NaiveDate::MIN);
    let records = CsvRecords::<_, UserRecord>::open(
        Box::new(text) as Box<dyn Read + Send>,
        delimiter,
        options.trim,
        options.users,
    )?;
    if records.dates_rows() {
        return Err(FileProblem(
            "dated rows are read by the whole-file reader, not the streaming one".into(),
        ));
    }
    let warnings = records.warnings.clone();
    let mut rows = Rows {
        records,
        held: VecDeque::new(),
        skip_bottom: profile.skip_bottom_lines,
    }
    .peekable();
    // Applying no rows would read as success (and a full export of none
    // would deactivate everyone): a file with a header only fails.
    if rows.peek().is_none() {
        return Err(FileProblem("the file has a header line and no rows".into()));
    }
    Ok(Streamed {
        rows: Box::new(rows),
        delimiter: char::from(delimiter),
        warnings,
    })
}

/// Records as rows, holding back the last `skip_bottom` (a trailer).
struct Rows {
    records: CsvRecords<Box<dyn Read + Send>, UserRecord>,
    held: VecDeque<ReadRecord<UserRecord>>,
    skip_bottom: usize,
}

impl Iterator for Rows {
    type Item = Result<SourceRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.records.next_record() {
                Err(problem) => return Some(Err(problem.0)),
                Ok(None) => return None,
                Ok(Some(read)) => self.held.push_back(read),
            }
            if self.held.len() > self.skip_bottom {
                let read = self.held.pop_front()?;
                return Some(Ok(SourceRow {
                    record: read.row,
                    problems: read
                        .problems
                        .into_iter()
                        .map(|(field, code, message)| RowProblem {
                            field,
                            code,
                            message,
                        })
                        .collect(),
                    problems_key: None,
                    ignored_fields: Vec::new(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn the_survey_hashes_and_finds_the_encoding_across_chunks() {
        // A two-byte UTF-8 sequence straddling the first chunk's end.
        let mut text = vec![b'a'; CHUNK - 1];
        text.extend("é\n".as_bytes());
        let surveyed = survey(&mut file_with(&text), u64::MAX, encoding_rs::WINDOWS_1252).unwrap();
        assert_eq!(surveyed.encoding, encoding_rs::UTF_8);
        let expected: String = ring::digest::digest(&ring::digest::SHA256, &text)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(surveyed.sha256, expected);
        let latin = survey(
            &mut file_with(b"name\nZo\xEB\n"),
            u64::MAX,
            encoding_rs::WINDOWS_1252,
        )
        .unwrap();
        assert_eq!(latin.encoding, encoding_rs::WINDOWS_1252);
        let bom = survey(
            &mut file_with(b"\xEF\xBB\xBFemail\n"),
            u64::MAX,
            encoding_rs::WINDOWS_1252,
        )
        .unwrap();
        assert_eq!((bom.encoding, bom.bom_length), (encoding_rs::UTF_8, 3));
        assert!(matches!(
            survey(&mut file_with(b"0123456789"), 5, encoding_rs::WINDOWS_1252),
            Err(Refusal::TooLarge { .. })
        ));
    }

    #[test]
    fn streamed_rows_match_the_whole_file_reader() {
        let settings = DropSettings::from_config(&crate::config::DropDirConfig::default(), "x");
        let text = "External ID;Email;Name;Role;Store_ID\r\nE1;a@x.example;Zo\u{eb};seller;S1\r\nE2;b@x.example;\"Multi\r\nline\";manager;\r\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(text);
        let mut file = file_with(&bytes);
        let surveyed = survey(&mut file, u64::MAX, encoding_rs::WINDOWS_1252).unwrap();
        let streamed = users(file, &surveyed, &settings).unwrap();
        assert_eq!(streamed.delimiter, ';');
        let rows: Vec<UserRecord> = streamed.rows.map(|r| r.unwrap().record).collect();
        let whole = super::super::formats::read_users(
            "users.csv",
            text,
            10,
            &super::super::formats::ReadOptions::plain(chrono::NaiveDate::MIN),
        )
        .unwrap();
        assert_eq!(rows, whole.rows);
        assert_eq!(rows[0].name.as_deref(), Some("Zoë"));
    }
}
