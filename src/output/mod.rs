pub mod csv;
pub mod digest;
pub mod files;
pub mod job_progress;
pub mod lines;
pub mod log_axis;
pub mod report;
pub mod svg;
