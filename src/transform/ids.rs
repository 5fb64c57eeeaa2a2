//! Who an event is about. RudderStack's generic `userIdOnly` lookup (userId, then
//! traits.userId / traits.id / context.traits.userId / context.traits.id) and anonymousId.
//! Only strings and numbers can identify a CleverTap profile.

use super::event::{Event, Raw, RawPairs};
use super::{Rejection, codes};
use crate::js::value::{Kind, kind, present};

/// The ids of an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ids<'a> {
    /// userId, or the first of the trait ids RudderStack falls back to.
    pub user: Option<Raw<'a>>,
    /// anonymousId.
    pub anonymous: Option<Raw<'a>>,
}

fn usable(raw: Option<Raw<'_>>) -> Option<Raw<'_>> {
    present(raw).filter(|r| matches!(kind(*r), Kind::String | Kind::Number))
}

impl<'a> Ids<'a> {
    /// Reads the ids; a top-level id of another type (object, array, boolean) is rejected.
    pub fn of(ev: &Event<'a>) -> Result<Self, Rejection> {
        for (name, raw) in [
            ("userId", ev.user_id),
            ("anonymousId", ev.anonymous_id),
            ("previousId", ev.previous_id),
        ] {
            if present(raw).is_some() && usable(raw).is_none() {
                return Err(Rejection::new(
                    codes::INVALID_ID,
                    format!("{name} must be a string or a number"),
                ));
            }
        }
        let member = |src: Option<&RawPairs<'a>>, key: &str| src.and_then(|p| p.get(key)).copied();
        let traits = ev.traits.object();
        let ctx = ev.context.traits.object();
        let user = [
            ev.user_id,
            member(traits, "userId"),
            member(traits, "id"),
            member(ctx, "userId"),
            member(ctx, "id"),
        ]
        .into_iter()
        .find_map(usable);
        Ok(Ids {
            user,
            anonymous: usable(ev.anonymous_id),
        })
    }
}
