//! Realtime events. Each names what changed by id; the event stream adds the conversation and
//! the message themselves (looked up once per event), so clients patch what they show. They
//! are published after the change is committed, so what is looked up includes it.

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, DepartmentId, InboxId, MessageId, UserId};

/// How long a presence holds without being repeated: clients repeat theirs well within it.
pub const PRESENCE_TTL_SECONDS: u64 = 30;

/// A change somebody's screen may need to show, or one the nodes tell each other about
/// ([`Event::is_internal`]). On PostgreSQL events travel between nodes as this JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A new conversation entered Queued Chats (or a closed one was reopened into it).
    ConversationQueued {
        /// The conversation.
        conversation_id: ConversationId,
        /// Its inbox.
        inbox_id: InboxId,
    },
    /// An agent took a queued conversation.
    ConversationTaken {
        /// The conversation.
        conversation_id: ConversationId,
        /// The agent who won.
        assignee_id: UserId,
    },
    /// A conversation was closed.
    ConversationClosed {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// An agent was invited into a conversation.
    MemberAdded {
        /// The conversation.
        conversation_id: ConversationId,
        /// The invited agent.
        user_id: UserId,
    },
    /// A message was added to a conversation.
    MessageCreated {
        /// The conversation.
        conversation_id: ConversationId,
        /// The new message.
        message_id: MessageId,
    },
    /// An outgoing email's delivery status changed.
    DeliveryUpdated {
        /// The conversation.
        conversation_id: ConversationId,
        /// The email_out message.
        message_id: MessageId,
        /// queued, sent or failed.
        status: crate::model::DeliveryStatus,
    },
    /// An inbox's reader changed state (connected, idle, error).
    InboxStatus {
        /// The inbox.
        inbox_id: InboxId,
        /// The new state.
        state: crate::model::InboxState,
    },
    /// A conversation was handed to another agent or to a department's queue.
    ConversationTransferred {
        /// The conversation.
        conversation_id: ConversationId,
        /// The agent who now has it (a transfer to an agent), else `None`.
        assignee_id: Option<UserId>,
        /// The department whose queue it is now in (a transfer to a department), else `None`.
        department_id: Option<DepartmentId>,
        /// Who had it before, if anyone (their lists drop it).
        previous_assignee_id: Option<UserId>,
    },
    /// A conversation was put On Hold.
    ConversationOnHold {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// A conversation was snoozed (or its snooze moved).
    ConversationSnoozed {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// A conversation on hold or snoozed is back in Chats in Progress: resumed by an agent,
    /// by the contact's email, or because its snooze ended.
    ConversationResumed {
        /// The conversation.
        conversation_id: ConversationId,
    },
    /// A conversation was merged into another. Published once for each of the two
    /// (`conversation_id` is the one a listener is judged by), with the same `merged_id` and
    /// `into_id`.
    ConversationMerged {
        /// The conversation this copy of the event is about: `merged_id` or `into_id`.
        conversation_id: ConversationId,
        /// The conversation that was merged (now closed).
        merged_id: ConversationId,
        /// The conversation its messages moved into.
        into_id: ConversationId,
    },
    /// A user's availability changed (they set it, or their last session ended).
    UserAvailability {
        /// The user.
        user_id: UserId,
        /// Their availability now.
        availability: crate::model::Availability,
    },
    /// An agent opened, writes in or left a conversation (repeated while it lasts; a client
    /// forgets a presence not repeated for [`PRESENCE_TTL_SECONDS`]).
    Presence {
        /// The conversation.
        conversation_id: ConversationId,
        /// The agent.
        user_id: UserId,
        /// What they do there.
        state: crate::model::Presence,
    },
    /// An inbox's settings changed (created, changed, turned off, reconnected): the node
    /// reading it makes its reader match them. Between nodes only, never sent to browsers.
    InboxChanged {
        /// The inbox.
        inbox_id: InboxId,
        /// The node that changed it (and already did what it had to).
        node_id: String,
    },
    /// The mail server pushed new mail for an inbox: its reader fetches now. Between nodes
    /// only, never sent to browsers.
    InboxWake {
        /// The inbox.
        inbox_id: InboxId,
    },
    /// This listener fell behind and missed events: refetch everything.
    Resync {
        /// How many events were missed.
        missed: u64,
    },
}

impl Event {
    /// The SSE event name: the `kind` of the JSON form.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ConversationQueued { .. } => "conversation_queued",
            Event::ConversationTaken { .. } => "conversation_taken",
            Event::ConversationClosed { .. } => "conversation_closed",
            Event::MemberAdded { .. } => "member_added",
            Event::MessageCreated { .. } => "message_created",
            Event::DeliveryUpdated { .. } => "delivery_updated",
            Event::InboxStatus { .. } => "inbox_status",
            Event::ConversationTransferred { .. } => "conversation_transferred",
            Event::ConversationOnHold { .. } => "conversation_on_hold",
            Event::ConversationSnoozed { .. } => "conversation_snoozed",
            Event::ConversationResumed { .. } => "conversation_resumed",
            Event::ConversationMerged { .. } => "conversation_merged",
            Event::UserAvailability { .. } => "user_availability",
            Event::Presence { .. } => "presence",
            Event::InboxChanged { .. } => "inbox_changed",
            Event::InboxWake { .. } => "inbox_wake",
            Event::Resync { .. } => "resync",
        }
    }

    /// The conversation the event is about, if any (to filter by membership).
    #[must_use]
    pub fn conversation_id(&self) -> Option<ConversationId> {
        match self {
            Event::ConversationQueued {
                conversation_id, ..
            }
            | Event::ConversationTaken {
                conversation_id, ..
            }
            | Event::ConversationClosed { conversation_id }
            | Event::MemberAdded {
                conversation_id, ..
            }
            | Event::MessageCreated {
                conversation_id, ..
            }
            | Event::DeliveryUpdated {
                conversation_id, ..
            }
            | Event::ConversationTransferred {
                conversation_id, ..
            }
            | Event::ConversationOnHold { conversation_id }
            | Event::ConversationSnoozed { conversation_id }
            | Event::ConversationResumed { conversation_id }
            | Event::ConversationMerged {
                conversation_id, ..
            }
            | Event::Presence {
                conversation_id, ..
            } => Some(*conversation_id),
            Event::InboxStatus { .. }
            | Event::UserAvailability { .. }
            | Event::InboxChanged { .. }
            | Event::InboxWake { .. }
            | Event::Resync { .. } => None,
        }
    }

    /// Whether the event is for the nodes alone (never sent to a browser).
    #[must_use]
    pub fn is_internal(&self) -> bool {
        matches!(self, Event::InboxChanged { .. } | Event::InboxWake { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeliveryStatus, InboxState};

    /// Events travel between nodes as their JSON: each reads back as itself.
    #[test]
    fn events_read_back_from_their_json() {
        let events = [
            Event::DeliveryUpdated {
                conversation_id: ConversationId(1),
                message_id: MessageId(2),
                status: DeliveryStatus::Failed,
            },
            Event::InboxStatus {
                inbox_id: InboxId(3),
                state: InboxState::NeedsReauth,
            },
            Event::ConversationTransferred {
                conversation_id: ConversationId(4),
                assignee_id: None,
                department_id: Some(DepartmentId(5)),
                previous_assignee_id: Some(UserId(6)),
            },
            Event::InboxChanged {
                inbox_id: InboxId(7),
                node_id: "a1b2".into(),
            },
        ];
        for event in events {
            let json = serde_json::to_string(&event).unwrap();
            assert!(
                json.contains(&format!("\"kind\":\"{}\"", event.kind())),
                "{json}"
            );
            assert_eq!(
                serde_json::from_str::<Event>(&json).unwrap(),
                event,
                "{json}"
            );
        }
        assert!(
            Event::InboxWake {
                inbox_id: InboxId(1)
            }
            .is_internal()
        );
        assert!(
            !Event::ConversationClosed {
                conversation_id: ConversationId(1)
            }
            .is_internal()
        );
    }
}
