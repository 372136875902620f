pub mod csv;
pub mod files;
pub mod hist_svg;
pub mod lines;
pub mod log_axis;
pub mod report;
pub mod svg;
