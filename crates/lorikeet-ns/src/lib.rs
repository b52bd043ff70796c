//! Pure network-server core. (Being built: issue 6.)
