//! alias -> a profile record that ties the new userId to the previous identity, as the
//! reference's `mapAliasPayload`: `identity` = previousId, `profileData.identity` = userId.

use super::event::{Event, Raw, RawPairs};
use super::event_ts;
use super::record::{Members, RecordBuf, RecordWriter, Val};
use super::{Rejection, codes};
use crate::js::ts::ts;
use crate::js::value::{present, truthy};
use crate::settings::MappingOptions;
use std::borrow::Cow;

pub fn alias<'a>(
    ev: &Event<'a>,
    opts: MappingOptions,
    buf: &mut RecordBuf,
) -> Result<(), Rejection> {
    let Some(user) = present(ev.user_id) else {
        return Err(Rejection::new(
            codes::MISSING_USER_ID,
            "an alias event needs the new userId",
        ));
    };
    let Some(previous) = present(ev.previous_id) else {
        return Err(Rejection::new(
            codes::MISSING_PREVIOUS_ID,
            "an alias event needs the previousId it replaces",
        ));
    };
    fn member<'a>(src: Option<&RawPairs<'a>>) -> Option<Raw<'a>> {
        src.and_then(|p| p.get("ts")).copied()
    }
    let stamp = ts([
        member(ev.traits.object()),
        member(ev.context.traits.object()),
    ]
    .into_iter()
    .find(|r| truthy(*r))
    .flatten())
    .or_else(|| event_ts(opts, ev));

    let mut profile = Members::with_capacity(1);
    profile.insert(Cow::Borrowed("identity"), Val::Flat(user));
    let mut w = RecordWriter::new(buf);
    w.text("type", "profile");
    w.members("profileData", &profile, true)
        .map_err(Rejection::from_write)?;
    w.ts(stamp);
    w.id("identity", previous).map_err(Rejection::from_write)?;
    w.finish();
    Ok(())
}
