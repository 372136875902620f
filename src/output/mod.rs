pub mod csv;
pub mod report;
pub mod svg;
pub mod files;
