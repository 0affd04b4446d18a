//! State that must be seen across instances: through Redis when it is configured and
//! reachable, through in-process structures otherwise.

pub mod cache_map;
pub mod invalidation;
pub mod ratelimit;
pub mod redis;
pub mod subscription;
