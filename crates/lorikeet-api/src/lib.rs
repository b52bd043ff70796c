//! The provisioning REST API. (Being built: issue 5.)
