//! Semtech UDP packet-forwarder listener. (Being built: issue 4.)
