//! Who may do what: the one authorization policy. Every HTTP route names a [`Rule`]; the web
//! layer authenticates, loads the facts the rule needs and asks [`decide`], before the
//! handler runs. Nothing else in postdesk decides access.
//!
//! The roles:
//! - **admin**: everything, including the system settings (users, inboxes, audit log,
//!   contacts' data).
//! - **manager**: sees and acts on every conversation of their departments (and of inboxes
//!   without a department); does not administer the system.
//! - **agent**: the queue of their departments (and of inboxes without a department), plus
//!   the conversations they are a member of.
//!
//! Members of a conversation are its assignee and the agents invited into it. A transfer or a
//! new Take it! after a reopen ends the previous assignee's membership, unless they were
//! invited. A closed conversation is read-only until it is reopened (by the contact's email
//! or an explicit Reopen).
//!
//! Canned responses have their own owners and rules ([`decide_canned`]): a global one is
//! everyone's and an admin's to change, a department's is its agents' and its managers' to
//! change, and a user's own is theirs alone (an admin may delete it).

use crate::ids::{DepartmentId, UserId};
use crate::model::{CannedScope, ConversationStatus, Role};

/// Who asks: a signed-in, active user with their roles and departments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user.
    pub id: UserId,
    /// Their roles.
    pub roles: Vec<Role>,
    /// The departments they belong to (as agent or as manager, by their role).
    pub departments: Vec<DepartmentId>,
}

impl Actor {
    /// Whether the actor has `role`.
    #[must_use]
    pub fn is(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether a conversation of `department` is within the actor's departments; a
    /// conversation of an inbox without a department is everyone's.
    #[must_use]
    pub fn covers(&self, department: Option<DepartmentId>) -> bool {
        department.is_none_or(|d| self.departments.contains(&d))
    }

    /// Whether the actor supervises conversations of `department`: admins everywhere,
    /// managers within their departments.
    #[must_use]
    pub fn supervises(&self, department: Option<DepartmentId>) -> bool {
        self.is(Role::Admin) || (self.is(Role::Manager) && self.covers(department))
    }
}

/// The facts about one conversation that access depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationScope {
    /// Where it stands.
    pub status: ConversationStatus,
    /// The department of its inbox, if any.
    pub department: Option<DepartmentId>,
    /// Its assignee, if taken.
    pub assignee: Option<UserId>,
    /// The agents invited into it (the assignee is a member without an invitation).
    pub invited: Vec<UserId>,
}

impl ConversationScope {
    /// Whether `user` is a member: the assignee or an invited agent.
    #[must_use]
    pub fn is_member(&self, user: UserId) -> bool {
        self.assignee == Some(user) || self.invited.contains(&user)
    }
}

/// What is done to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// See it, its messages and attachments, hear its events.
    Read,
    /// Take it! from Queued Chats.
    Take,
    /// Write in it: internal messages, uploads, slash commands, close, retry a failed email.
    Write,
    /// Send email from it: Reply via Email, Send via Email as attachment.
    Reply,
    /// Hand it to another agent or to a department's queue.
    Transfer,
    /// Reopen it after it was closed.
    Reopen,
}

/// What a route requires, before any handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// No sign-in (the login page and call, health, assets; a hook with its own secret).
    Public,
    /// Any signed-in, active user; what the handler answers is scoped by [`list_scope`].
    SignedIn,
    /// Admins and managers (departments).
    Staff,
    /// Admins only: the system settings.
    Admin,
    /// An action on the conversation named by the path (directly, or through one of its
    /// messages or attachments).
    Conversation(Action),
}

/// Why access was refused; the web layer turns each into its status and words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// Only an admin may do this.
    #[error("Only an admin can do this")]
    AdminOnly,
    /// Only an admin or a manager may do this.
    #[error("Only an admin or a manager can do this")]
    StaffOnly,
    /// The conversation is in another department's queue, or taken by someone else.
    #[error("You are not a member of this conversation; ask its agent to /invite you")]
    NotMember,
    /// The conversation is outside the actor's departments.
    #[error("This conversation belongs to a department you are not in")]
    OtherDepartment,
    /// Writing to a queued conversation needs Take it! first.
    #[error("Take it! first: this conversation is still in Queued Chats")]
    TakeFirst,
    /// Only queued conversations can be taken.
    #[error("Only a conversation in Queued Chats can be taken")]
    NotQueued,
    /// The conversation is closed, so read-only.
    #[error("This conversation is closed and read-only: Reopen it to write")]
    Closed,
    /// Only a closed conversation can be reopened.
    #[error("Only a closed conversation can be reopened")]
    NotClosed,
    /// Only the assignee (or a supervisor) may transfer.
    #[error("Only the conversation's agent, a manager or an admin can transfer it")]
    NotAssignee,
    /// Global canned responses are the admins' to add, change and delete.
    #[error("Only an admin can add, change or delete global canned responses")]
    CannedGlobal,
    /// A department's canned responses are its managers' (and the admins') to change.
    #[error(
        "Only an admin or a manager of this department can add, change or delete its canned responses"
    )]
    CannedDepartment,
    /// The canned response is of a department the actor is not in.
    #[error("This canned response belongs to a department you are not in")]
    CannedOtherDepartment,
    /// The canned response is another user's own.
    #[error("This canned response is another user's own: only they can use or change it")]
    CannedSomeoneElses,
}

impl Denial {
    /// Whether the refusal is about the conversation's state (a conflict the user can
    /// resolve) rather than about who is asking.
    #[must_use]
    pub fn is_state(&self) -> bool {
        matches!(
            self,
            Denial::Closed | Denial::NotQueued | Denial::NotClosed | Denial::TakeFirst
        )
    }
}

/// Decides a route-level rule that needs no conversation ([`Rule::Conversation`] needs
/// [`decide`]).
///
/// # Errors
/// The [`Denial`] when the actor may not.
pub fn decide_rule(actor: &Actor, rule: Rule) -> Result<(), Denial> {
    match rule {
        Rule::Public | Rule::SignedIn | Rule::Conversation(_) => Ok(()),
        Rule::Staff if actor.is(Role::Admin) || actor.is(Role::Manager) => Ok(()),
        Rule::Staff => Err(Denial::StaffOnly),
        Rule::Admin if actor.is(Role::Admin) => Ok(()),
        Rule::Admin => Err(Denial::AdminOnly),
    }
}

/// Decides `action` by `actor` on the conversation described by `scope`.
///
/// # Errors
/// The [`Denial`] when the actor may not.
pub fn decide(actor: &Actor, action: Action, scope: &ConversationScope) -> Result<(), Denial> {
    let supervisor = actor.supervises(scope.department);
    let member = scope.is_member(actor.id);
    let covered = actor.covers(scope.department);
    let queued = scope.status == ConversationStatus::Queued;
    let closed = scope.status == ConversationStatus::Closed;
    let outsider = || {
        if covered {
            Denial::NotMember
        } else {
            Denial::OtherDepartment
        }
    };
    match action {
        Action::Read if supervisor || member || (queued && covered) => Ok(()),
        Action::Read => Err(outsider()),
        Action::Take if !(supervisor || covered) => Err(Denial::OtherDepartment),
        Action::Take if !queued => Err(Denial::NotQueued),
        Action::Take => Ok(()),
        Action::Write | Action::Reply if !(supervisor || member) => Err(if queued && covered {
            Denial::TakeFirst
        } else {
            outsider()
        }),
        Action::Write | Action::Reply if closed => Err(Denial::Closed),
        Action::Write | Action::Reply if queued => Err(Denial::TakeFirst),
        Action::Write | Action::Reply => Ok(()),
        Action::Transfer if !(supervisor || scope.assignee == Some(actor.id)) => Err(if member {
            Denial::NotAssignee
        } else {
            outsider()
        }),
        Action::Transfer if closed => Err(Denial::Closed),
        Action::Transfer => Ok(()),
        Action::Reopen if !(supervisor || member) => Err(outsider()),
        Action::Reopen if !closed => Err(Denial::NotClosed),
        Action::Reopen => Ok(()),
    }
}

/// Which conversations a list shows an actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Every conversation (admins).
    All,
    /// Every conversation of the actor's departments and of inboxes without one, plus those
    /// the actor is a member of (managers).
    Departments(UserId),
    /// The queue of the actor's departments and of inboxes without one, plus the
    /// conversations the actor is a member of (agents).
    QueueAndMine(UserId),
}

/// The conversations an actor may list.
#[must_use]
pub fn list_scope(actor: &Actor) -> ListScope {
    if actor.is(Role::Admin) {
        ListScope::All
    } else if actor.is(Role::Manager) {
        ListScope::Departments(actor.id)
    } else {
        ListScope::QueueAndMine(actor.id)
    }
}

/// Whose a canned response is: what seeing and changing it depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CannedOwner {
    /// Every agent's (scope `global`).
    Global,
    /// The agents' of one department (scope `department`).
    Department(DepartmentId),
    /// One user's own (scope `user`).
    User(UserId),
}

impl CannedOwner {
    /// The scope, as the API and the database name it.
    #[must_use]
    pub fn scope(self) -> CannedScope {
        match self {
            CannedOwner::Global => CannedScope::Global,
            CannedOwner::Department(_) => CannedScope::Department,
            CannedOwner::User(_) => CannedScope::User,
        }
    }

    /// The department, for a department's canned response.
    #[must_use]
    pub fn department(self) -> Option<DepartmentId> {
        match self {
            CannedOwner::Department(d) => Some(d),
            _ => None,
        }
    }

    /// The owner, for a user's own canned response.
    #[must_use]
    pub fn user(self) -> Option<UserId> {
        match self {
            CannedOwner::User(u) => Some(u),
            _ => None,
        }
    }
}

/// What is done to a canned response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CannedAction {
    /// See it in the list and insert it with `!shortcut`.
    Use,
    /// Add it, or change it (a change of scope is decided for the old owner and the new).
    Manage,
    /// Delete it.
    Delete,
}

/// The canned responses an actor sees: global ones, those of `departments` (`None`: of every
/// department) and `user`'s own. [`decide_canned`] of [`CannedAction::Use`] is
/// [`CannedView::shows`], and the store's list filters by the same three conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedView {
    /// Whose own canned responses are shown (the actor's).
    pub user: UserId,
    /// Which departments' are shown; `None` for every department's (admins).
    pub departments: Option<Vec<DepartmentId>>,
}

impl CannedView {
    /// Whether a canned response of `owner` is in the view.
    #[must_use]
    pub fn shows(&self, owner: CannedOwner) -> bool {
        match owner {
            CannedOwner::Global => true,
            CannedOwner::Department(d) => {
                self.departments.as_ref().is_none_or(|ds| ds.contains(&d))
            }
            CannedOwner::User(u) => u == self.user,
        }
    }
}

/// The canned responses an actor sees: global ones, their departments' (an admin: every
/// department's) and their own. Another user's own are never shown, not even to an admin.
#[must_use]
pub fn canned_view(actor: &Actor) -> CannedView {
    CannedView {
        user: actor.id,
        departments: (!actor.is(Role::Admin)).then(|| actor.departments.clone()),
    }
}

/// Decides `action` by `actor` on a canned response of `owner`. Using follows
/// [`canned_view`]. Managing: global ones are the admins', a department's are the admins'
/// and its managers', and a user's own are theirs alone; an admin may also delete another
/// user's own (a colleague who left, words that must go).
///
/// # Errors
/// The [`Denial`] when the actor may not.
pub fn decide_canned(
    actor: &Actor,
    action: CannedAction,
    owner: CannedOwner,
) -> Result<(), Denial> {
    let foreign = || match owner {
        CannedOwner::Department(_) => Denial::CannedOtherDepartment,
        _ => Denial::CannedSomeoneElses,
    };
    match (action, owner) {
        (CannedAction::Use, _) if canned_view(actor).shows(owner) => Ok(()),
        (CannedAction::Use, _) => Err(foreign()),
        (CannedAction::Delete, CannedOwner::User(_)) if actor.is(Role::Admin) => Ok(()),
        (_, CannedOwner::Global) if actor.is(Role::Admin) => Ok(()),
        (_, CannedOwner::Global) => Err(Denial::CannedGlobal),
        (_, CannedOwner::Department(d)) if actor.supervises(Some(d)) => Ok(()),
        (_, CannedOwner::Department(_)) => Err(Denial::CannedDepartment),
        (_, CannedOwner::User(u)) if u == actor.id => Ok(()),
        (_, CannedOwner::User(_)) => Err(Denial::CannedSomeoneElses),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConversationStatus::{Closed, Open, Queued};

    const SALES: DepartmentId = DepartmentId(1);
    const BILLING: DepartmentId = DepartmentId(2);

    fn actor(id: i64, role: Role, departments: &[DepartmentId]) -> Actor {
        Actor {
            id: UserId(id),
            roles: vec![role],
            departments: departments.to_vec(),
        }
    }

    fn scope(
        status: ConversationStatus,
        assignee: Option<i64>,
        invited: &[i64],
    ) -> ConversationScope {
        ConversationScope {
            status,
            department: Some(SALES),
            assignee: assignee.map(UserId),
            invited: invited.iter().copied().map(UserId).collect(),
        }
    }

    #[test]
    fn agents_read_their_departments_queue_and_what_they_are_members_of() {
        let ana = actor(1, Role::Agent, &[SALES]);
        let bob = actor(2, Role::Agent, &[BILLING]);
        let cases = [
            (
                &ana,
                scope(Queued, None, &[]),
                Ok(()),
                "queued in her department",
            ),
            (
                &bob,
                scope(Queued, None, &[]),
                Err(Denial::OtherDepartment),
                "another department's queue",
            ),
            (&ana, scope(Open, Some(1), &[]), Ok(()), "assignee"),
            (
                &ana,
                scope(Open, Some(3), &[]),
                Err(Denial::NotMember),
                "taken by someone else",
            ),
            (
                &bob,
                scope(Open, Some(3), &[2]),
                Ok(()),
                "invited from another department",
            ),
            (
                &ana,
                scope(Closed, Some(1), &[]),
                Ok(()),
                "closed, still hers to read",
            ),
        ];
        for (who, s, expected, what) in cases {
            assert_eq!(decide(who, Action::Read, &s), expected, "{what}");
        }
    }

    #[test]
    fn a_previous_assignee_is_no_member_unless_invited() {
        // Reopened, then taken by agent 3: agent 1 had it before.
        let ana = actor(1, Role::Agent, &[SALES]);
        assert_eq!(
            decide(&ana, Action::Write, &scope(Open, Some(3), &[])),
            Err(Denial::NotMember)
        );
        assert_eq!(
            decide(&ana, Action::Write, &scope(Open, Some(3), &[1])),
            Ok(())
        );
    }

    #[test]
    fn closed_conversations_are_read_only_until_reopened() {
        let ana = actor(1, Role::Agent, &[SALES]);
        let admin = actor(9, Role::Admin, &[]);
        let closed = scope(Closed, Some(1), &[]);
        for who in [&ana, &admin] {
            assert_eq!(decide(who, Action::Write, &closed), Err(Denial::Closed));
            assert_eq!(decide(who, Action::Reply, &closed), Err(Denial::Closed));
            assert_eq!(decide(who, Action::Reopen, &closed), Ok(()));
        }
        assert_eq!(
            decide(&ana, Action::Reopen, &scope(Open, Some(1), &[])),
            Err(Denial::NotClosed)
        );
        let carl = actor(3, Role::Agent, &[SALES]);
        assert_eq!(
            decide(&carl, Action::Reopen, &closed),
            Err(Denial::NotMember)
        );
    }

    #[test]
    fn managers_act_within_their_departments_only() {
        let sales_manager = actor(5, Role::Manager, &[SALES]);
        let billing_manager = actor(6, Role::Manager, &[BILLING]);
        let open = scope(Open, Some(1), &[]);
        for action in [Action::Read, Action::Write, Action::Reply, Action::Transfer] {
            assert_eq!(decide(&sales_manager, action, &open), Ok(()), "{action:?}");
            assert_eq!(
                decide(&billing_manager, action, &open),
                Err(Denial::OtherDepartment),
                "{action:?}"
            );
        }
        assert_eq!(
            decide(&billing_manager, Action::Take, &scope(Queued, None, &[])),
            Err(Denial::OtherDepartment)
        );
        assert_eq!(
            decide_rule(&sales_manager, Rule::Admin),
            Err(Denial::AdminOnly)
        );
        assert_eq!(decide_rule(&sales_manager, Rule::Staff), Ok(()));
    }

    #[test]
    fn writing_and_taking_follow_the_status() {
        let ana = actor(1, Role::Agent, &[SALES]);
        assert_eq!(
            decide(&ana, Action::Take, &scope(Queued, None, &[])),
            Ok(())
        );
        assert_eq!(
            decide(&ana, Action::Take, &scope(Open, Some(3), &[])),
            Err(Denial::NotQueued)
        );
        assert_eq!(
            decide(&ana, Action::Write, &scope(Queued, None, &[])),
            Err(Denial::TakeFirst)
        );
        // Invited agents write, but only the assignee transfers.
        assert_eq!(
            decide(&ana, Action::Write, &scope(Open, Some(3), &[1])),
            Ok(())
        );
        assert_eq!(
            decide(&ana, Action::Transfer, &scope(Open, Some(3), &[1])),
            Err(Denial::NotAssignee)
        );
        assert_eq!(
            decide(&ana, Action::Transfer, &scope(Open, Some(1), &[])),
            Ok(())
        );
    }

    #[test]
    fn inboxes_without_a_department_are_everyones() {
        let bob = actor(2, Role::Agent, &[]);
        let mut s = scope(Queued, None, &[]);
        s.department = None;
        assert_eq!(decide(&bob, Action::Read, &s), Ok(()));
        assert_eq!(decide(&bob, Action::Take, &s), Ok(()));
        assert_eq!(decide_rule(&bob, Rule::Staff), Err(Denial::StaffOnly));
        assert_eq!(list_scope(&bob), ListScope::QueueAndMine(UserId(2)));
    }

    #[test]
    fn canned_responses_are_seen_by_their_departments_and_owner() {
        let ana = actor(1, Role::Agent, &[SALES]);
        let mona = actor(5, Role::Manager, &[SALES]);
        let admin = actor(9, Role::Admin, &[]);
        let owners = [
            CannedOwner::Global,
            CannedOwner::Department(SALES),
            CannedOwner::Department(BILLING),
            CannedOwner::User(UserId(1)),
            CannedOwner::User(UserId(5)),
        ];
        // What each sees, in the order of `owners`.
        let cases = [
            (&ana, [true, true, false, true, false], "agent of Sales"),
            (&mona, [true, true, false, false, true], "manager of Sales"),
            (
                &admin,
                [true, true, true, false, false],
                "admin: every department's, nobody else's own",
            ),
        ];
        for (who, seen, what) in cases {
            let view = canned_view(who);
            for (owner, expected) in owners.iter().zip(seen) {
                assert_eq!(view.shows(*owner), expected, "{what}: {owner:?}");
                assert_eq!(
                    decide_canned(who, CannedAction::Use, *owner).is_ok(),
                    expected,
                    "{what}: {owner:?}"
                );
            }
        }
        assert_eq!(
            decide_canned(&ana, CannedAction::Use, CannedOwner::Department(BILLING)),
            Err(Denial::CannedOtherDepartment)
        );
        assert_eq!(
            decide_canned(&ana, CannedAction::Use, CannedOwner::User(UserId(5))),
            Err(Denial::CannedSomeoneElses)
        );
    }

    #[test]
    fn canned_responses_are_managed_by_admins_their_departments_managers_and_their_owner() {
        let ana = actor(1, Role::Agent, &[SALES]);
        let mona = actor(5, Role::Manager, &[SALES]);
        let admin = actor(9, Role::Admin, &[]);
        let global = CannedOwner::Global;
        let sales = CannedOwner::Department(SALES);
        let billing = CannedOwner::Department(BILLING);
        let anas = CannedOwner::User(UserId(1));
        let cases = [
            (
                &ana,
                global,
                Err(Denial::CannedGlobal),
                "an agent, a global one",
            ),
            (
                &mona,
                global,
                Err(Denial::CannedGlobal),
                "a manager, a global one",
            ),
            (&admin, global, Ok(()), "an admin, a global one"),
            (
                &ana,
                sales,
                Err(Denial::CannedDepartment),
                "an agent, her department's",
            ),
            (&mona, sales, Ok(()), "a manager, his department's"),
            (
                &mona,
                billing,
                Err(Denial::CannedDepartment),
                "a manager, another department's",
            ),
            (&admin, billing, Ok(()), "an admin, any department's"),
            (&ana, anas, Ok(()), "her own"),
            (
                &mona,
                anas,
                Err(Denial::CannedSomeoneElses),
                "a manager, an agent's own",
            ),
            (
                &admin,
                anas,
                Err(Denial::CannedSomeoneElses),
                "an admin changing an agent's own",
            ),
        ];
        for (who, owner, expected, what) in cases {
            assert_eq!(
                decide_canned(who, CannedAction::Manage, owner),
                expected,
                "{what}"
            );
        }
        // Deleting is managing, except that an admin may delete anyone's own.
        assert_eq!(decide_canned(&admin, CannedAction::Delete, anas), Ok(()));
        assert_eq!(
            decide_canned(&mona, CannedAction::Delete, anas),
            Err(Denial::CannedSomeoneElses)
        );
        assert_eq!(decide_canned(&ana, CannedAction::Delete, anas), Ok(()));
        assert_eq!(
            decide_canned(&ana, CannedAction::Delete, global),
            Err(Denial::CannedGlobal)
        );
    }
}
