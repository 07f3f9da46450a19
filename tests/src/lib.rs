/// Paths of the test guest components, built by build.rs.
pub mod guests;
