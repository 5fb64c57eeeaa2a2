//! CleverTap hosts and paths. The region comes from a secret, and the passcode travels in a
//! header, so a host is only ever taken from this allowlist: a crafted region can never send
//! the passcode elsewhere (docs/clevertap-api.md, "Endpoints and regions").

use std::fmt;

/// Path of the upload call (profiles, events, device tokens).
pub const UPLOAD_PATH: &str = "/1/upload";
/// Path of the delete-profiles call.
pub const DELETE_PATH: &str = "/1/delete/profiles.json";

/// A CleverTap data-center region, from the allowlist only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Region {
    /// `eu1`, `none`, empty or absent: `api.clevertap.com`.
    #[default]
    Default,
    In1,
    Sg1,
    Us1,
    Sk1,
    Aps3,
    Mec1,
}

/// A region value outside the allowlist. Holds the offending value, truncated, for the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown CleverTap region {value:?}: expected one of in1, sg1, us1, sk1, aps3, mec1, eu1, none"
)]
pub struct UnknownRegion {
    pub value: String,
}

impl Region {
    /// Parses RudderStack's `region` setting; `None`, empty, `none` and `eu1` give the default host.
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownRegion> {
        Ok(match value.unwrap_or("") {
            "" | "none" | "eu1" => Region::Default,
            "in1" => Region::In1,
            "sg1" => Region::Sg1,
            "us1" => Region::Us1,
            "sk1" => Region::Sk1,
            "aps3" => Region::Aps3,
            "mec1" => Region::Mec1,
            other => {
                return Err(UnknownRegion {
                    value: other.chars().take(32).collect(),
                });
            }
        })
    }

    /// The API host of this region.
    pub const fn host(self) -> &'static str {
        match self {
            Region::Default => "api.clevertap.com",
            Region::In1 => "in1.api.clevertap.com",
            Region::Sg1 => "sg1.api.clevertap.com",
            Region::Us1 => "us1.api.clevertap.com",
            Region::Sk1 => "sk1.api.clevertap.com",
            Region::Aps3 => "aps3.api.clevertap.com",
            Region::Mec1 => "mec1.api.clevertap.com",
        }
    }

    /// `https://<host>`, the base URL that paths are appended to.
    pub fn base_url(self) -> String {
        format!("https://{}", self.host())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allowlisted_region_maps_to_its_host() {
        let cases = [
            (None, "api.clevertap.com"),
            (Some(""), "api.clevertap.com"),
            (Some("none"), "api.clevertap.com"),
            (Some("eu1"), "api.clevertap.com"),
            (Some("in1"), "in1.api.clevertap.com"),
            (Some("sg1"), "sg1.api.clevertap.com"),
            (Some("us1"), "us1.api.clevertap.com"),
            (Some("sk1"), "sk1.api.clevertap.com"),
            (Some("aps3"), "aps3.api.clevertap.com"),
            (Some("mec1"), "mec1.api.clevertap.com"),
        ];
        for (value, host) in cases {
            assert_eq!(
                Region::parse(value).map(Region::host),
                Ok(host),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_region_outside_the_allowlist_is_an_error_and_never_a_host() {
        for bad in ["evil.com/", "IN1", "in1.attacker.net#", "us2", " in1"] {
            let err = Region::parse(Some(bad)).unwrap_err();
            assert!(err.to_string().contains("unknown CleverTap region"));
        }
    }
}
