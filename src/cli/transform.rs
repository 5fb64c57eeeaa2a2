//! `rudder-clevertap transform --destination DEST.json [FILE|-]` (docs/contracts.md §1): the requests a
//! file of events would become, and a result per event, with no network. A result is `ok`,
//! `filtered` (dropped on purpose: consent, a message type CleverTap does not take, the event
//! filter; with its code and message, not an error) or `rejected` (with its code and message).
//!
//! Streams: NDJSON is read line by line and each request is written as soon as it is full
//! (at most 1000 records, CleverTap's limit), so memory stays flat however long the file; only
//! the compact per-item results are held until the end (BENCHMARKS.md, "Transform").
//!
//! A regulation (docs/contracts.md §6) given as the whole input becomes delete requests (at most 100
//! identities each, CleverTap's limit), `events` holding the regulation's index behind each
//! identity. Its `destinationIds` are not resolved: this command has one destination, and the
//! requests show what would be sent to it. As in the handler, a regulation inside an array, a
//! batch or NDJSON is rejected (`regulation_in_batch`).

use crate::batch::chunk_by_size;
use crate::clevertap::request::{
    self, Call, MAX_IDENTITIES_PER_DELETE, MAX_RECORDS_PER_UPLOAD, quoted_identity,
};
use crate::input::{Body, split_body};
use crate::json::writer::write_str;
use crate::outcome::Reason;
use crate::regulation::{Regulation, explain_rejection};
use crate::settings::{Account, DestinationSettings, SettingsError};
use crate::transform::{
    Mapped, Record, TransformOptions, Transformed, codes, transform_event, upload_body,
};
use clap::Args;
use serde::de::IgnoredAny;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `transform`.
#[derive(Debug, Args)]
pub struct TransformArgs {
    /// Destination settings JSON (accountId, passcode, region, trackAnonymous,
    /// enableObjectIdMapping, consent and event filter settings), as in the destination's secret.
    #[arg(long, value_name = "DEST.json")]
    pub destination: PathBuf,
    /// Events: one event, a JSON array, {"batch": [...]}, or NDJSON; or one regulation
    /// (user deletion). `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Why `transform` could not run (exit status 2). Messages never carry the passcode.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("cannot read destination settings {path}: {source}")]
    ReadDestination { path: PathBuf, source: io::Error },
    #[error("invalid destination settings in {path}: {source}")]
    Settings {
        path: PathBuf,
        source: SettingsError,
    },
    #[error("cannot read {path}: {source}")]
    ReadInput { path: PathBuf, source: io::Error },
    #[error("cannot write the output: {0}")]
    Write(io::Error),
}

/// What the items came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub ok: usize,
    /// Dropped on purpose (consent, message type, event filter): not errors.
    pub filtered: usize,
    pub rejected: usize,
}

/// Runs the command: exit 0 when no item is rejected (every item ok or filtered, or none), 1
/// when some item is rejected, 2 when it cannot run.
pub fn run(args: &TransformArgs) -> ExitCode {
    match execute(args) {
        Ok(summary) if summary.rejected == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rudder-clevertap transform: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(args: &TransformArgs) -> Result<Summary, TransformError> {
    let settings = load_settings(&args.destination)?;
    let stdout = io::stdout().lock();
    let out = BufWriter::with_capacity(1 << 16, stdout);
    match args.input.as_deref() {
        None => transform_stream(&settings, io::stdin().lock(), out, Path::new("-")),
        Some(p) if p == Path::new("-") => transform_stream(&settings, io::stdin().lock(), out, p),
        Some(path) => {
            let file = File::open(path).map_err(|source| TransformError::ReadInput {
                path: path.to_owned(),
                source,
            })?;
            transform_stream(
                &settings,
                BufReader::with_capacity(1 << 16, file),
                out,
                path,
            )
        }
    }
}

/// Reads and checks the destination settings file.
pub fn load_settings(path: &Path) -> Result<DestinationSettings, TransformError> {
    let text = std::fs::read_to_string(path).map_err(|source| TransformError::ReadDestination {
        path: path.to_owned(),
        source,
    })?;
    DestinationSettings::from_json(&text).map_err(|source| TransformError::Settings {
        path: path.to_owned(),
        source,
    })
}

/// Transforms everything `input` holds and writes the output object to `out`.
pub fn transform_stream<R: BufRead, W: Write>(
    settings: &DestinationSettings,
    mut input: R,
    out: W,
    input_name: &Path,
) -> Result<Summary, TransformError> {
    let read_err = |source| TransformError::ReadInput {
        path: input_name.to_owned(),
        source,
    };
    let mut emit = Emitter::new(settings, out).map_err(TransformError::Write)?;
    let mut first = Vec::new();
    if read_nonblank_line(&mut input, &mut first).map_err(read_err)? {
        let first_is_value = std::str::from_utf8(&first)
            .is_ok_and(|s| serde_json::from_str::<IgnoredAny>(s).is_ok());
        let mut second = Vec::new();
        if first_is_value && read_nonblank_line(&mut input, &mut second).map_err(read_err)? {
            // NDJSON: one event per line, streamed.
            emit.line(&first).map_err(TransformError::Write)?;
            emit.line(&second).map_err(TransformError::Write)?;
            let mut line = Vec::new();
            while read_nonblank_line(&mut input, &mut line).map_err(read_err)? {
                emit.line(&line).map_err(TransformError::Write)?;
            }
        } else {
            // One JSON value (possibly over many lines), or lines that must be read whole.
            let mut all = first;
            all.push(b'\n');
            input.read_to_end(&mut all).map_err(read_err)?;
            match String::from_utf8(all) {
                Ok(text) => emit.body(&text).map_err(TransformError::Write)?,
                Err(e) => {
                    for line in e.as_bytes().split(|b| *b == b'\n') {
                        if !line.trim_ascii().is_empty() {
                            emit.line(line).map_err(TransformError::Write)?;
                        }
                    }
                }
            }
        }
    }
    emit.finish().map_err(TransformError::Write)
}

/// Reads the next line that is not blank into `buf`; false at the end of the input.
fn read_nonblank_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    loop {
        buf.clear();
        if input.read_until(b'\n', buf)? == 0 {
            return Ok(false);
        }
        if !buf.trim_ascii().is_empty() {
            return Ok(true);
        }
    }
}

/// Writes the output object as items come: requests as they fill, results at the end.
struct Emitter<W: Write> {
    out: W,
    url: String,
    /// Where profiles are deleted (`/1/delete/profiles.json`).
    delete_url: String,
    account_id: String,
    settings: DestinationSettings,
    /// Transformed events not yet written, with their input index.
    pending: Vec<(usize, Vec<Record>)>,
    pending_records: usize,
    requests_written: usize,
    /// The `results` array's entries, already as JSON text.
    results: Vec<u8>,
    next_index: usize,
    summary: Summary,
}

impl<W: Write> Emitter<W> {
    fn new(settings: &DestinationSettings, mut out: W) -> io::Result<Self> {
        out.write_all(b"{\"requests\":[")?;
        Ok(Emitter {
            out,
            url: format!("{}{}", settings.region.base_url(), Call::Upload.path()),
            delete_url: format!("{}{}", settings.region.base_url(), Call::Delete.path()),
            account_id: settings.account_id.clone(),
            settings: settings.clone(),
            pending: Vec::new(),
            pending_records: 0,
            requests_written: 0,
            results: Vec::with_capacity(1 << 16),
            next_index: 0,
            summary: Summary::default(),
        })
    }

    /// Transforms one event; a rejected item that is a regulation says so.
    fn transform(&self, text: &str) -> Transformed {
        let mut t = transform_event(text, TransformOptions::from(&self.settings));
        if let Mapped::Rejected(reason) = t.result {
            t.result = Mapped::Rejected(explain_rejection(text, reason));
        }
        t
    }

    /// One NDJSON line.
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        match std::str::from_utf8(line) {
            Ok(text) => {
                let t = self.transform(text.trim());
                self.item(t)
            }
            Err(e) => self.rejected(
                None,
                Reason::new(
                    codes::INVALID_UTF8,
                    format!("the line is not valid UTF-8 (at byte {})", e.valid_up_to()),
                ),
            ),
        }
    }

    /// A whole body: one event, an array, a batch, or NDJSON held in memory.
    fn body(&mut self, text: &str) -> io::Result<()> {
        match split_body(text) {
            Ok(Body::Events(items)) => {
                for item in items {
                    match item.error {
                        Some(reason) => self.rejected(None, reason)?,
                        None => {
                            let t = self.transform(item.raw);
                            self.item(t)?;
                        }
                    }
                }
                Ok(())
            }
            Ok(Body::Regulation(regulation)) => self.regulation(&regulation),
            Err(reason) if reason.code == crate::codes::EMPTY_BODY => Ok(()),
            Err(reason) => self.rejected(None, reason),
        }
    }

    fn item(&mut self, t: Transformed) -> io::Result<()> {
        match t.result {
            Mapped::Records(records) => {
                let index = self.result_entry(t.message_id.as_deref(), None);
                self.summary.ok += 1;
                self.pending_records += records.len();
                self.pending.push((index, records));
                if self.pending_records > MAX_RECORDS_PER_UPLOAD {
                    self.flush(false)?;
                }
                Ok(())
            }
            Mapped::Filtered(reason) => {
                self.result_entry(t.message_id.as_deref(), Some((FILTERED, &reason)));
                self.summary.filtered += 1;
                Ok(())
            }
            Mapped::Rejected(reason) => self.rejected(t.message_id.as_deref(), reason),
        }
    }

    /// A regulation: one result (ok when every user has a userId, else rejected with the first
    /// bad user's reason), and the delete requests of its valid users, written at once.
    fn regulation(&mut self, regulation: &Regulation<'_>) -> io::Result<()> {
        let bad: Vec<&Reason> = regulation
            .users
            .iter()
            .filter_map(|u| u.user_id.as_ref().err())
            .collect();
        let index = match bad.first() {
            None => {
                self.summary.ok += 1;
                self.result_entry(None, None)
            }
            Some(first) => {
                self.summary.rejected += 1;
                let reason = Reason::first_of((*first).clone(), bad.len(), "users");
                self.result_entry(None, Some((REJECTED, &reason)))
            }
        };
        // Requests stay in input order: uploads of earlier items first.
        self.flush(true)?;
        let identities: Vec<&str> = regulation.identities().map(|(_, id)| id).collect();
        for chunk in identities.chunks(MAX_IDENTITIES_PER_DELETE) {
            write_delete_request(
                &mut self.out,
                &self.delete_url,
                &self.account_id,
                index,
                chunk,
                self.requests_written,
            )?;
            self.requests_written += 1;
        }
        Ok(())
    }

    fn rejected(&mut self, message_id: Option<&str>, reason: Reason) -> io::Result<()> {
        self.result_entry(message_id, Some((REJECTED, &reason)));
        self.summary.rejected += 1;
        Ok(())
    }

    /// Appends a `results` entry: `ok`, or a status (`filtered`, `rejected`) with its reason.
    /// Returns the item's index.
    fn result_entry(
        &mut self,
        message_id: Option<&str>,
        reason: Option<(&'static str, &Reason)>,
    ) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        let mut s = String::with_capacity(96);
        if index > 0 {
            s.push_str(",\n");
        }
        s.push_str("{\"index\":");
        s.push_str(&index.to_string());
        s.push_str(",\"messageId\":");
        match message_id {
            Some(id) => write_str(&mut s, id),
            None => s.push_str("null"),
        }
        match reason {
            None => s.push_str(",\"status\":\"ok\"}"),
            Some((status, r)) => {
                s.push_str(",\"status\":\"");
                s.push_str(status);
                s.push_str("\",\"code\":");
                write_str(&mut s, &r.code);
                s.push_str(",\"message\":");
                write_str(&mut s, &r.message);
                s.push('}');
            }
        }
        self.results.extend_from_slice(s.as_bytes());
        index
    }

    /// Writes the full requests; all of them when `all`, else all but the last of each account
    /// (still filling). Events go in one request only with events of the same account (dynamic
    /// config may send them to several), accounts in order of first appearance.
    fn flush(&mut self, all: bool) -> io::Result<()> {
        let mut groups: Vec<(Option<&Account>, Vec<usize>)> = Vec::new();
        for (i, (_, records)) in self.pending.iter().enumerate() {
            let account = records.first().and_then(Record::account);
            match groups.iter_mut().find(|(a, _)| *a == account) {
                Some((_, members)) => members.push(i),
                None => groups.push((account, vec![i])),
            }
        }
        let mut kept = vec![false; self.pending.len()];
        for (account, members) in &groups {
            let chunks = chunk_by_size(
                members.iter().map(|&i| self.pending[i].1.len()),
                MAX_RECORDS_PER_UPLOAD,
            );
            let (url, account_id) = match account {
                Some(a) => (
                    format!("{}{}", a.region.base_url(), Call::Upload.path()),
                    a.account_id.as_str(),
                ),
                None => (self.url.clone(), self.account_id.as_str()),
            };
            for (n, chunk) in chunks.iter().enumerate() {
                let events = members.get(chunk.clone()).unwrap_or_default();
                if !all && n + 1 == chunks.len() {
                    for &i in events {
                        kept[i] = true;
                    }
                    continue;
                }
                write_request(
                    &mut self.out,
                    &url,
                    account_id,
                    events.iter().map(|&i| &self.pending[i]),
                    self.requests_written,
                )?;
                self.requests_written += 1;
            }
        }
        let mut keep = kept.into_iter();
        self.pending.retain(|_| keep.next().unwrap_or(false));
        self.pending_records = self.pending.iter().map(|(_, r)| r.len()).sum();
        // Many accounts each below a full request: write them rather than hold them all.
        if !all && self.pending_records > 4 * MAX_RECORDS_PER_UPLOAD {
            return self.flush(true);
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<Summary> {
        self.flush(true)?;
        self.out.write_all(b"\n],\n\"results\":[\n")?;
        self.out.write_all(&self.results)?;
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()?;
        Ok(self.summary)
    }
}

/// The `status` of a filtered item: dropped on purpose, nothing sent, not an error.
const FILTERED: &str = "filtered";
/// The `status` of a rejected item.
const REJECTED: &str = "rejected";

/// One request of the output: method, url, headers (passcode redacted), body, events.
fn write_request<'e, W: Write>(
    out: &mut W,
    url: &str,
    account_id: &str,
    events: impl Iterator<Item = &'e (usize, Vec<Record>)> + Clone,
    written_before: usize,
) -> io::Result<()> {
    out.write_all(request_head(url, account_id, written_before).as_bytes())?;
    out.write_all(&upload_body(events.clone().flat_map(|(_, r)| r.iter())))?;
    let mut tail = String::with_capacity(64);
    tail.push_str(",\"events\":[");
    let mut first = true;
    for (index, records) in events {
        for _ in records {
            if !first {
                tail.push(',');
            }
            first = false;
            tail.push_str(&index.to_string());
        }
    }
    tail.push_str("]}");
    out.write_all(tail.as_bytes())
}

/// The start of one request of the output, up to its `"body":`.
fn request_head(url: &str, account_id: &str, written_before: usize) -> String {
    let mut head = String::with_capacity(256);
    if written_before > 0 {
        head.push(',');
    }
    head.push('\n');
    request::write_view_head(&mut head, url, account_id);
    head
}

/// One delete request of the output: `{"identity": [...]}`, and the regulation's index behind
/// each identity in `events`.
fn write_delete_request<W: Write>(
    out: &mut W,
    url: &str,
    account_id: &str,
    index: usize,
    identities: &[&str],
    written_before: usize,
) -> io::Result<()> {
    out.write_all(request_head(url, account_id, written_before).as_bytes())?;
    let quoted: Vec<String> = identities.iter().map(|id| quoted_identity(id)).collect();
    let mut body = Vec::with_capacity(quoted.iter().map(|q| q.len() + 1).sum::<usize>() + 16);
    request::write_body(Call::Delete, quoted.iter().map(String::as_str), &mut body);
    out.write_all(&body)?;
    let mut s = String::from(",\"events\":[");
    let index = index.to_string();
    for n in 0..identities.len() {
        if n > 0 {
            s.push(',');
        }
        s.push_str(&index);
    }
    s.push_str("]}");
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtered_items_are_counted_apart_from_rejected_ones() {
        let settings = DestinationSettings::from_json(
            r#"{"accountId":"A","passcode":"p","trackAnonymous":true,
            "eventFilteringOption":"whitelistedEvents","whitelistedEvents":[{"eventName":"Kept"}]}"#,
        )
        .unwrap();
        let input = [
            r#"{"type":"track","userId":"u","event":"Kept"}"#,
            r#"{"type":"track","userId":"u","event":"Dropped"}"#,
            r#"{"type":"group","userId":"u"}"#,
            r#"{"type":"identify"}"#,
        ]
        .join("\n");
        let mut out = Vec::new();
        let summary =
            transform_stream(&settings, input.as_bytes(), &mut out, Path::new("-")).unwrap();
        assert_eq!(
            summary,
            Summary {
                ok: 1,
                filtered: 2,
                rejected: 1
            }
        );
        let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["results"][1]["status"], "filtered");
        assert_eq!(out["results"][1]["code"], "event_not_allowed");
        assert_eq!(out["results"][3]["status"], "rejected");
    }
}
