pub mod csv;
pub mod files;
pub mod hist_svg;
pub mod log_axis;
pub mod report;
pub mod svg;
