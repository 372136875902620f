pub mod csv;
pub mod files;
pub mod report;
pub mod svg;
