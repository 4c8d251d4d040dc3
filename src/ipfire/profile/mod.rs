//! Connection profiles: `/var/ipfire/ppp/settings-NAME`, typed (DESIGN.md section 2).
//!
//! NAME is `1`..`5` (the WUI's numbered slots) or `[A-Za-z0-9_-]{1,32}`; a [`ProfileName`]
//! is checked before any path is built from it, so `../x` never reaches the filesystem.
//! `TYPE` decides how RED comes up: dial types (RED_TYPE=PPPOE in `ethernet/settings`) or
//! the ethernet types DHCP and STATIC. The WUI rewrites a profile in place (truncate, then
//! write), so an empty profile is reported as [`LoadError::Empty`]: "being written", never a
//! configuration to act on.
//!
//! Beyond loading: [`list`], [`create`] (from a [`NewProfile`], checked by
//! [`NewProfile::validate`] before any path is built or byte written), [`delete`], and
//! [`resolve_chain`] (the failover chain, a missing profile or a loop reported by name).
//!
//! Passwords: IPFire's shell readhash drops a line whose value has `'`, `"`, `\`, `$`, ...,
//! so such a password cannot live in the profile's `PASSWORD` key without being lost (or,
//! with IPFire's `eval`, run). It is not refused either, since pppd can take it: [`create`]
//! keeps it in [`password_file`] (`/var/ipfire/connectd/secret-NAME`, 0600) and leaves
//! `PASSWORD` out of the profile; [`Profile::load`] reads it back from there when the profile
//! has no `PASSWORD`; activation writes it to `ppp/secrets` quoted as pppd reads it
//! ([`crate::uplink::switch::secrets_line`]). A password the readhash can carry (spaces and `#`
//! included) stays in the profile, where the WUI keeps it. Every other value (USERNAME, APN,
//! PROFILENAME, DEVICE) must pass [`crate::ipfire::readhash::check_value`] and is refused, naming the
//!
//! The files: `name` (the name, checked first; below the policy, which names profiles),
//! `load` (a profile typed), `secret` (passwords and their side files), `store` (list,
//! create, delete) and `chain` (the failover chain, which reads the policy). This file only
//! declares and re-exports them: none of them imports it, so no import loop goes through it.

pub(crate) mod chain;
pub(crate) mod load;
pub(crate) mod name;
pub(crate) mod secret;
pub(crate) mod store;

pub use self::chain::resolve_chain;
pub use self::load::{Kind, LoadError, Profile, Reconnection, StaticCfg};
pub use self::name::{ProfileName, valid_device};
pub use self::secret::{
    MAX_PASSWORD_BYTES, Secret, check_password, password_file, password_fits_profile,
};
pub use self::store::{NewProfile, ProfileInfo, create, delete, list};
