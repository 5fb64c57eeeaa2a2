//! Who an event is about. RudderStack's generic `userIdOnly` lookup (userId, then
//! traits.userId / traits.id / context.traits.userId / context.traits.id) and anonymousId.
//! Top-level ids must be strings or numbers; a trait id is taken as the reference takes it.

use super::event::{Event, Raw, RawPairs};
use super::{Rejection, codes};
use crate::js::value::{Kind, kind, present, truthy};

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
    /// Reads the ids. A top-level id of another type (object, array, boolean) is rejected. The
    /// user is the first present one of userId and the trait ids, whatever its type, as the
    /// reference's `getFieldValueFromMessage` takes it: a boolean trait id is the identity as
    /// it is; an object or array one is rejected.
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
            ("userId", ev.user_id),
            ("traits.userId", member(traits, "userId")),
            ("traits.id", member(traits, "id")),
            ("context.traits.userId", member(ctx, "userId")),
            ("context.traits.id", member(ctx, "id")),
        ]
        .into_iter()
        .find_map(|(name, raw)| present(raw).map(|r| (name, r)));
        if let Some((name, raw)) = user
            && matches!(kind(raw), Kind::Object | Kind::Array)
        {
            return Err(Rejection::new(
                codes::INVALID_ID,
                format!("{name} must be a string, a number or a boolean"),
            ));
        }
        Ok(Ids {
            user: user.map(|(_, r)| r),
            anonymous: usable(ev.anonymous_id),
        })
    }

    /// The anonymousId objectId mapping uses: only a truthy one (`if (anonymousId)`).
    pub fn object_id(&self) -> Option<Raw<'a>> {
        self.anonymous.filter(|r| truthy(Some(*r)))
    }

    /// The user id as objectId mapping tests it (`if (userId)`): only a truthy one.
    pub fn truthy_user(&self) -> Option<Raw<'a>> {
        self.user.filter(|r| truthy(Some(*r)))
    }
}
