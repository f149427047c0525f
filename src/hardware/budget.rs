//! The KV budget of one replica.
