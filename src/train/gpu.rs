//! GPU trainer (WGSL): see shaders/train/.
