//! Importers from where users come from. Each converts its source into an export directory
//! (the format of [`crate::format`]), keeping what the source knows, and
//! [`crate::import::import`] takes it from there: one import path for every source.
