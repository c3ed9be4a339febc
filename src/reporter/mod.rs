//! The reporter: delivers the persistent outbox to the server, oldest first.
//! Status messages queued back to back travel in one `Status` document;
//! items leave the outbox only after the server answered 2xx, so a crash or
//! an outage at any moment loses nothing (the server drops duplicates by
//! each message's `ReportID`).

pub mod actor;

use crate::protocol::{Action, CivilTime, MessageId, Parameter, Status, StatusMessage};
use crate::store::{OutboxBody, OutboxItem};

/// Most status messages carried by one `Status` document (part B §8.4).
pub const MAX_BATCH: usize = 50;

/// The next delivery: a POST and the outbox items it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An XML document.
    Document {
        /// `X-Device-Action` (with the report type for reports).
        action: Action,
        /// The encoded body.
        body: Vec<u8>,
        /// Outbox sequence numbers removed after a 2xx.
        seqs: Vec<u64>,
    },
    /// A collected file, streamed from disk.
    File {
        /// The device path.
        path: String,
        /// Its outbox sequence number.
        seq: u64,
    },
}

/// The first delivery to make from `items` (oldest first).
pub fn next_delivery(items: &[OutboxItem]) -> Option<Delivery> {
    use crate::protocol::Document;
    let first = items.first()?;
    Some(match &first.body {
        OutboxBody::Status(_) => {
            // A message the server refused before travels alone: if it is
            // what the server cannot take, it holds up no other message.
            let batch: Vec<&OutboxItem> = if first.refused > 0 {
                vec![first]
            } else {
                items
                    .iter()
                    .take(MAX_BATCH)
                    .take_while(|i| matches!(i.body, OutboxBody::Status(_)) && i.refused == 0)
                    .collect()
            };
            let messages = batch
                .iter()
                .filter_map(|i| match &i.body {
                    OutboxBody::Status(m) => Some(m.clone()),
                    _ => None,
                })
                .collect();
            Delivery::Document {
                action: Action::Status,
                body: Status { messages }.encode(),
                seqs: batch.iter().map(|i| i.seq).collect(),
            }
        }
        OutboxBody::Report { report_type, xml } => Delivery::Document {
            action: Action::Report(*report_type),
            body: xml.clone(),
            seqs: vec![first.seq],
        },
        OutboxBody::CollectedFile { path } => Delivery::File {
            path: path.clone(),
            seq: first.seq,
        },
    })
}

/// A status message with its `ReportID` (X3), fixed now, when it is queued,
/// so every redelivery carries the same one.
pub fn status_message(
    package_id: &str,
    id: MessageId,
    at: CivilTime,
    parameters: &[(&str, String)],
) -> StatusMessage {
    let mut params: Vec<Parameter> = parameters
        .iter()
        .map(|(name, value)| Parameter {
            name: (*name).to_owned(),
            value: value.clone(),
        })
        .collect();
    params.push(Parameter {
        name: "ReportID".to_owned(),
        value: uuid::Uuid::new_v4().to_string(),
    });
    StatusMessage {
        package_id: package_id.to_owned(),
        message_id: id,
        timestamp: at,
        parameters: params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Document, ReportType};

    fn at() -> CivilTime {
        CivilTime::from_unix(1_700_000_000).expect("time")
    }

    fn item(seq: u64, body: OutboxBody) -> OutboxItem {
        OutboxItem {
            seq,
            queued_unix: 0,
            body,
            refused: 0,
        }
    }

    fn status(seq: u64) -> OutboxItem {
        item(
            seq,
            OutboxBody::Status(status_message("P", MessageId::DOWNLOAD_STARTED, at(), &[])),
        )
    }

    #[test]
    fn consecutive_status_messages_travel_together_in_order() {
        let items = [
            status(1),
            status(2),
            item(
                3,
                OutboxBody::Report {
                    report_type: ReportType::MachineInventory,
                    xml: b"<Inventory/>".to_vec(),
                },
            ),
            status(4),
        ];
        let Some(Delivery::Document { action, body, seqs }) = next_delivery(&items) else {
            panic!("a document");
        };
        assert_eq!(action, Action::Status);
        assert_eq!(seqs, [1, 2]);
        assert_eq!(
            Status::decode(&body).expect("valid Status").messages.len(),
            2
        );
        let Some(Delivery::Document { action, seqs, .. }) = next_delivery(&items[2..]) else {
            panic!("a document");
        };
        assert_eq!(action, Action::Report(ReportType::MachineInventory));
        assert_eq!(seqs, [3]);
        assert_eq!(next_delivery(&[]), None);
    }

    #[test]
    fn batches_are_capped() {
        let items: Vec<OutboxItem> = (0..120).map(status).collect();
        let Some(Delivery::Document { seqs, .. }) = next_delivery(&items) else {
            panic!("a document");
        };
        assert_eq!(seqs.len(), MAX_BATCH);
    }

    #[test]
    fn a_message_refused_before_travels_alone() {
        let refused = |seq| OutboxItem {
            refused: 1,
            ..status(seq)
        };
        let seqs_of = |items: &[OutboxItem]| match next_delivery(items) {
            Some(Delivery::Document { action, seqs, .. }) => {
                assert_eq!(action, Action::Status);
                seqs
            }
            other => panic!("a Status document, not {other:?}"),
        };
        // A batch ends before a refused message...
        assert_eq!(
            seqs_of(&[status(1), status(2), refused(3), status(4)]),
            [1, 2]
        );
        // ...and a refused message goes on its own.
        assert_eq!(seqs_of(&[refused(3), status(4), status(5)]), [3]);
        assert_eq!(seqs_of(&[refused(3), refused(4)]), [3]);
    }

    #[test]
    fn every_message_carries_a_report_id() {
        let m = status_message(
            "P",
            MessageId::DOWNLOAD_SUCCEEDED,
            at(),
            &[("BytesDownloaded", "42".into())],
        );
        assert_eq!(m.parameters[0].name, "BytesDownloaded");
        let id = m
            .parameters
            .iter()
            .find(|p| p.name == "ReportID")
            .expect("ReportID");
        assert_eq!(id.value.len(), 36);
    }
}
