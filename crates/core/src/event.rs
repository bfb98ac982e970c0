//! Realtime events. Each names what changed by id; the event stream adds the conversation and
//! the message themselves (looked up once per event), so clients patch what they show. They
//! are published after the change is committed, so what is looked up includes it.

use serde::Serialize;

use crate::ids::{ConversationId, InboxId, MessageId, UserId};

/// A change somebody's screen may need to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
            } => Some(*conversation_id),
            Event::InboxStatus { .. } | Event::Resync { .. } => None,
        }
    }
}
