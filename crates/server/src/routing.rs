//! The routing service: runs the store's assignment ([`Store::assign_queued`]) for departments
//! with `round_robin` or `load_balancing` routing when their queue or their agents change, and
//! publishes `conversation_taken` for each conversation it gives out.
//!
//! It runs a department's assignment when nudged ([`Routing::nudge`]: a department's routing
//! or agents changed, an agent left it), when this node's bus carries a conversation entering
//! a queue (new, reopened, returned) or leaving an agent's open count (closed), or an agent
//! becoming available, and on a sweep every [`SWEEP`] (which also catches work of other nodes
//! and anything missed). The sweep also turns `offline` the users whose last session ended
//! (expired, or ended on another node). The decision itself is the database's, so several
//! nodes running this at once never assign a conversation twice.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postdesk_core::event::Event;
use postdesk_core::ids::DepartmentId;
use postdesk_core::model::Availability;
use postdesk_store::{Requeued, Store, StoreError};
use tokio::sync::{Notify, watch};

use crate::bus::Bus;

/// How often every routed department is checked, whatever happened.
pub const SWEEP: Duration = Duration::from_secs(3);

/// What is waiting to be routed.
#[derive(Debug, Default)]
struct Pending {
    /// Every department with work (`departments_to_route`).
    all: bool,
    /// These departments.
    departments: BTreeSet<DepartmentId>,
}

/// The handle other code nudges the routing service with. Cheap to clone; nudges made while a
/// run is under way are gathered into the next run.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    pending: Arc<Mutex<Pending>>,
    wake: Arc<Notify>,
}

impl Routing {
    /// A handle; nothing runs until [`Routing::run_until_stopped`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for `department`'s queue to be routed (now, in the background).
    pub fn nudge(&self, department: DepartmentId) {
        self.lock().departments.insert(department);
        self.wake.notify_one();
    }

    /// Asks for every department with work to be routed.
    pub fn nudge_all(&self) {
        self.lock().all = true;
        self.wake.notify_one();
    }

    /// Publishes that `requeued` went back to their queues, and routes those queues.
    pub fn returned(&self, bus: &Bus, requeued: &[Requeued]) {
        for r in requeued {
            bus.publish(Event::ConversationQueued {
                conversation_id: r.conversation_id,
                inbox_id: r.inbox_id,
            });
            if let Some(department) = r.department_id {
                self.nudge(department);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Routes what it is nudged to, what the bus says changed, and every [`SWEEP`], until
    /// `stop` turns true.
    pub async fn run_until_stopped(self, store: Store, bus: Bus, mut stop: watch::Receiver<bool>) {
        let (_, mut events) = bus.subscribe(None);
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                _ = sweep.tick() => {
                    settle_offline(&store, &bus).await;
                    self.lock().all = true;
                }
                got = events.recv() => match got {
                    Ok(envelope) => {
                        if !wants_routing(&envelope.event) {
                            continue;
                        }
                        self.lock().all = true;
                    }
                    // Missed some: route everything.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.lock().all = true;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            }
            // Events that came meanwhile are served by this run too.
            while let Ok(envelope) = events.try_recv() {
                if wants_routing(&envelope.event) {
                    self.lock().all = true;
                }
            }
            let pending = std::mem::take(&mut *self.lock());
            if let Err(e) = run_once(&store, &bus, pending).await {
                if e.is_transient() {
                    tracing::debug!("Routing: {e}; trying again at the next sweep");
                } else {
                    tracing::warn!("Routing: {e}; trying again at the next sweep");
                }
            }
        }
    }
}

/// Whether an event may give routing work: a conversation entered a queue or left an agent's
/// open count (closed, on hold, snoozed, transferred, merged), or an agent became available.
fn wants_routing(event: &Event) -> bool {
    matches!(
        event,
        Event::ConversationQueued { .. }
            | Event::ConversationClosed { .. }
            | Event::ConversationOnHold { .. }
            | Event::ConversationSnoozed { .. }
            | Event::ConversationTransferred { .. }
            | Event::ConversationMerged { .. }
            | Event::UserAvailability {
                availability: Availability::Available,
                ..
            }
    )
}

/// Routes the departments `pending` names (all with work, when it says so).
async fn run_once(store: &Store, bus: &Bus, pending: Pending) -> Result<(), StoreError> {
    let mut departments = pending.departments;
    if pending.all {
        departments.extend(store.departments_to_route().await?);
    }
    for department in departments {
        route_department(store, bus, department).await?;
    }
    Ok(())
}

/// Runs `department`'s assignment until it gives out no more, publishing each.
///
/// # Errors
/// A store failure (the department's next run tries again).
pub async fn route_department(
    store: &Store,
    bus: &Bus,
    department: DepartmentId,
) -> Result<usize, StoreError> {
    let mut total = 0;
    loop {
        let assigned = match store.assign_queued(department).await {
            Ok(assigned) => assigned,
            // Deleted meanwhile: nothing to route.
            Err(StoreError::NotFound(_)) => return Ok(total),
            Err(e) => return Err(e),
        };
        for a in &assigned {
            bus.publish(Event::ConversationTaken {
                conversation_id: a.conversation_id,
                assignee_id: a.assignee_id,
            });
        }
        total += assigned.len();
        if assigned.len() < postdesk_store::ROUTING_BATCH {
            return Ok(total);
        }
    }
}

/// Turns `offline` the users whose last session has ended, and publishes it.
pub async fn settle_offline(store: &Store, bus: &Bus) {
    match store.offline_without_sessions().await {
        Ok(users) => {
            for user_id in users {
                bus.publish(Event::UserAvailability {
                    user_id,
                    availability: Availability::Offline,
                });
            }
        }
        Err(e) => tracing::warn!("Marking signed-out users offline failed: {e}"),
    }
}
