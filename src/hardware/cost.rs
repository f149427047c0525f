//! Step cost models.
