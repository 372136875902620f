//! smflow: Monte Carlo weak-order studies of SGD and its continuous-time models
//! (gradient flow, SME, SMF) on the GPU, with a CPU reference backend.
//!
//! Data flow: `config` (parse, validate) → `experiment` (plan runs) → `backend`
//! (cpu | gpu: advance paths, reduce) → `stats` (exact mergeable sums, weak errors,
//! order fits) → `output` (JSON, CSV, SVG). See ../shared/ARCHITECTURE.md.

pub mod backend;
pub mod cli;
pub mod config;
pub mod data;
pub mod dynamics;
pub mod experiment;
pub mod lanes;
pub mod math;
pub mod meanfield;
pub mod model;
pub mod observables;
pub mod output;
pub mod rng;
pub mod solver;
pub mod stats;
pub mod theory;
pub mod train;
