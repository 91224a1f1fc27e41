//! The key a session's tokens are bound to (DPoP), as kept with them.

use crate::error::Error;
use crate::provider::dpop::DpopKey;
use crate::secret::Secret;

/// The DPoP key kept as `stored`, if any. A stored key that does not open
/// is Keyway's own fault (it wrote it, encrypted): an internal error.
pub(crate) fn key_of(stored: Option<&Secret>) -> Result<Option<DpopKey>, Error> {
    stored
        .map(DpopKey::from_stored)
        .transpose()
        .map_err(|_| Error::Internal("the stored DPoP key does not open".into()))
}
