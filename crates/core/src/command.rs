//! Slash commands typed into a conversation's composer.

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/invite @username`: add a fellow agent as a member of the conversation.
    Invite {
        /// The username, without the `@`.
        username: String,
    },
}

/// Why a composer text is not a command postdesk knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The text does not start with `/`.
    #[error("commands start with \"/\", e.g. /invite @username")]
    NotACommand,
    /// A command name postdesk does not have.
    #[error("unknown command /{0}; available: /invite @username")]
    Unknown(String),
    /// `/invite` without exactly one `@username`.
    #[error("usage: /invite @username")]
    InviteUsage,
}

impl Command {
    /// Parses `/name args`.
    ///
    /// # Errors
    /// [`CommandError`] naming what is wrong and what would be right.
    pub fn parse(text: &str) -> Result<Self, CommandError> {
        let text = text.trim();
        let rest = text.strip_prefix('/').ok_or(CommandError::NotACommand)?;
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap_or_default();
        match name {
            "invite" => {
                let target = words.next().ok_or(CommandError::InviteUsage)?;
                if words.next().is_some() {
                    return Err(CommandError::InviteUsage);
                }
                let username = target.strip_prefix('@').unwrap_or(target);
                if username.is_empty() || username.contains(|c: char| c == '@' || c.is_control()) {
                    return Err(CommandError::InviteUsage);
                }
                Ok(Command::Invite {
                    username: username.to_owned(),
                })
            }
            other => Err(CommandError::Unknown(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_takes_one_username_with_or_without_at() {
        assert_eq!(
            Command::parse("/invite @bob"),
            Ok(Command::Invite {
                username: "bob".into()
            })
        );
        assert_eq!(
            Command::parse("  /invite bob "),
            Ok(Command::Invite {
                username: "bob".into()
            })
        );
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        assert_eq!(Command::parse("hello"), Err(CommandError::NotACommand));
        assert_eq!(
            Command::parse("/kick @bob"),
            Err(CommandError::Unknown("kick".into()))
        );
        assert_eq!(Command::parse("/invite"), Err(CommandError::InviteUsage));
        assert_eq!(Command::parse("/invite @"), Err(CommandError::InviteUsage));
        assert_eq!(
            Command::parse("/invite @a @b"),
            Err(CommandError::InviteUsage)
        );
    }
}
